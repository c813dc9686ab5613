// imgstats: image store dataset facts from exact histograms (imgstats.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/imgstats.h"

int imgstats_init(imgstats *st, int c) {
    memset(st, 0, sizeof *st);
    ERR_IF(c < 1 || c > 4, ERR_USAGE, "imgstats: %d channels (1..4)", c);
    st->c = c;
    st->hist = calloc((size_t)c, sizeof *st->hist);
    st->class_counts = calloc(IMGSTATS_MAX_CLASS, sizeof *st->class_counts);
    if (!st->hist || !st->class_counts) {
        imgstats_free(st);
        return err_set(ERR_NOMEM, "out of memory");
    }
    return 0;
}

void imgstats_free(imgstats *st) {
    free(st->hist);
    free(st->class_counts);
    memset(st, 0, sizeof *st);
}

void imgstats_add(imgstats *st, const uint8_t *img, size_t plane, int32_t label) {
    for (int ch = 0; ch < st->c; ch++) {
        const uint8_t *p = img + (size_t)ch * plane;
        uint64_t *h = st->hist[ch];
        for (size_t i = 0; i < plane; i++) h[p[i]]++;
    }
    st->count++;
    if (label < 0)
        st->ood++;
    else if (label < IMGSTATS_MAX_CLASS)
        st->class_counts[label]++;
}

int imgstats_scan(ts_store *s, imgstats *st) {
    ts_cursor *cur = NULL;
    ts_tensor t = {0}, l = {0};
    ts_key k;
    char kb[64];
    int rc = 0, r;
    ERR_GOTO(rc, ts_cursor_open(s, "image", &cur));
    while ((r = ts_cursor_next(cur, &k)) == 1) {
        ERR_GOTO(rc, ts_cursor_get(cur, &t, NULL, 0));
        ERR_GOTO_IF(rc, t.dtype != TS_U8 || t.rank != 3 || t.shape[0] != st->c, ERR_CORRUPT,
                    "%s: table image, record %s is not u8 (%d, H, W)", ts_path(s), ts_key_format(&k, kb, sizeof kb),
                    st->c);
        rc = ts_get(s, "label", &k, &l);
        if (rc == ERR_NOTFOUND)
            rc = err_set(ERR_CORRUPT, "%s: image %s has no label", ts_path(s), ts_key_format(&k, kb, sizeof kb));
        ERR_GOTO(rc, rc);
        ERR_GOTO_IF(rc, l.dtype != TS_I32 || ts_tensor_numel(&l) != 1, ERR_CORRUPT,
                    "%s: table label, record %s is not one i32", ts_path(s), ts_key_format(&k, kb, sizeof kb));
        imgstats_add(st, t.data, (size_t)(t.shape[1] * t.shape[2]), *(const int32_t *)l.data);
        ts_tensor_free(&t);
        ts_tensor_free(&l);
    }
    rc = r < 0 ? r : 0;
fail:
    ts_tensor_free(&t);
    ts_tensor_free(&l);
    ts_cursor_close(cur);
    return rc;
}

// Mean and population std of v/255 of channel ch.
static void imgstats_final(const imgstats *st, int ch, double *mean, double *std) {
    const uint64_t *h = st->hist[ch];
    double n = 0, s = 0;
    for (int v = 0; v < 256; v++) {
        n += (double)h[v];
        s += (double)h[v] * (v / 255.0);
    }
    double m = n > 0 ? s / n : 0, q = 0;
    for (int v = 0; v < 256; v++) {
        double d = v / 255.0 - m;
        q += (double)h[v] * d * d;
    }
    *mean = m;
    *std = n > 0 ? sqrt(q / n) : 0;
}

static int imgstats_put_doubles(ts_store *s, const char *key, const double *v, int n) {
    char t[4 * 32 + 8];
    size_t len = (size_t)snprintf(t, sizeof t, "[");
    for (int i = 0; i < n; i++) len += (size_t)snprintf(t + len, sizeof t - len, "%s%.17g", i ? "," : "", v[i]);
    snprintf(t + len, sizeof t - len, "]");
    return ts_meta_put(s, key, t);
}

int imgstats_meta_put(ts_store *s, const imgstats *st) {
    double mean[4] = {0}, std[4] = {0};
    char buf[32], *cls = NULL;
    int rc = 0;
    for (int ch = 0; ch < st->c; ch++) imgstats_final(st, ch, &mean[ch], &std[ch]);
    cJSON *cc = cJSON_CreateObject();
    ERR_GOTO_IF(rc, !cc, ERR_NOMEM, "out of memory");
    if (st->ood) cJSON_AddNumberToObject(cc, "-1", (double)st->ood);
    for (int k = 0; k < IMGSTATS_MAX_CLASS; k++)
        if (st->class_counts[k]) {
            snprintf(buf, sizeof buf, "%d", k);
            cJSON_AddNumberToObject(cc, buf, (double)st->class_counts[k]);
        }
    cls = cJSON_PrintUnformatted(cc);
    ERR_GOTO_IF(rc, !cls, ERR_NOMEM, "out of memory");
    snprintf(buf, sizeof buf, "%lld", (long long)st->count);
    ERR_GOTO(rc, ts_meta_put(s, "count", buf));
    ERR_GOTO(rc, ts_meta_put(s, "class_counts", cls));
    ERR_GOTO(rc, imgstats_put_doubles(s, "mean", mean, st->c));
    ERR_GOTO(rc, imgstats_put_doubles(s, "std", std, st->c));
fail:
    cJSON_Delete(cc);
    free(cls);
    return rc;
}
