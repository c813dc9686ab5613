// tr_data: image stores loaded into memory, augmentation, normalisation and the counter-based
// epoch order of the training loops (tr.h).
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "common/stage.h"
#include "common/train/tr.h"

// --- loading ------------------------------------------------------------------------------

void tr_images_free(tr_images *d) {
    if (!d) return;
    free(d->img);
    free(d->label);
    memset(d, 0, sizeof *d);
}

static int tr_images_read(tr_images *d, ts_store *s, const char *path, int num_classes) {
    int rc = 0;
    uint64_t n = 0, nl = 0;
    ts_cursor *cur = NULL;
    ts_record_info info;
    ts_key k;
    ts_tensor t;
    rc = ts_count(s, "image", &n);
    if (rc == ERR_NOTFOUND) return err_set(ERR_INPUT, "%s: no table 'image' (not an image store)", path);
    ERR_TRY(rc);
    ERR_IF(n == 0, ERR_INPUT, "%s: table 'image' is empty", path);
    rc = ts_count(s, "label", &nl);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_INPUT, "%s: no table 'label': training needs labelled images", path);
    ERR_TRY(rc);
    ERR_IF(nl != n, ERR_INPUT, "%s: %llu images but %llu labels", path, (unsigned long long)n,
           (unsigned long long)nl);
    ts_key_u64(&k, 0);
    ERR_TRY(ts_get_info(s, "image", &k, &info));
    ERR_IF(info.dtype != TS_U8 || info.rank != 3 || info.shape[0] < 1 || info.shape[0] > 4, ERR_INPUT,
           "%s: record 0 of table image is not a u8 (C, H, W) image", path);
    d->n = (int64_t)n;
    d->c = (int)info.shape[0];
    d->h = (int)info.shape[1];
    d->w = (int)info.shape[2];
    size_t per = (size_t)d->c * d->h * d->w;
    d->img = malloc(per * n);
    d->label = malloc(sizeof(int32_t) * n);
    ERR_IF(!d->img || !d->label, ERR_NOMEM, "%s: out of memory for %llu images", path, (unsigned long long)n);
    ERR_TRY(ts_cursor_open(s, "image", &cur));
    for (uint64_t i = 0; i < n; i++) {
        int got = ts_cursor_next(cur, &k);
        ERR_GOTO(rc, got);
        uint64_t idx = UINT64_MAX;
        ERR_GOTO_IF(rc, !got || ts_key_get_u64(&k, &idx) < 0 || idx != i, ERR_INPUT,
                    "%s: table image: expected key %llu (keys must be 0..n-1)", path, (unsigned long long)i);
        ERR_GOTO(rc, ts_cursor_get(cur, &t, d->img + per * i, per));
        ERR_GOTO_IF(rc, t.dtype != TS_U8 || t.rank != 3 || t.shape[0] != d->c || t.shape[1] != d->h || t.shape[2] != d->w,
                    ERR_INPUT, "%s: record %llu of table image is not u8 (%d, %d, %d) like record 0", path,
                    (unsigned long long)i, d->c, d->h, d->w);
    }
    ts_cursor_close(cur);
    cur = NULL;
    ERR_TRY(ts_cursor_open(s, "label", &cur));
    for (uint64_t i = 0; i < n; i++) {
        int got = ts_cursor_next(cur, &k);
        ERR_GOTO(rc, got);
        uint64_t idx = UINT64_MAX;
        ERR_GOTO_IF(rc, !got || ts_key_get_u64(&k, &idx) < 0 || idx != i, ERR_INPUT,
                    "%s: table label: expected key %llu", path, (unsigned long long)i);
        ERR_GOTO(rc, ts_cursor_get(cur, &t, d->label + i, sizeof(int32_t)));
        ERR_GOTO_IF(rc, t.dtype != TS_I32, ERR_INPUT, "%s: record %llu of table label is not i32", path,
                    (unsigned long long)i);
        ERR_GOTO_IF(rc, d->label[i] < 0 || d->label[i] >= num_classes, ERR_INPUT,
                    "%s: record %llu of table label is %d, outside the %d classes 0..%d", path,
                    (unsigned long long)i, (int)d->label[i], num_classes, num_classes - 1);
    }
fail:
    ts_cursor_close(cur);
    return rc;
}

int tr_images_load(tr_images *d, const char *path, int num_classes) {
    memset(d, 0, sizeof *d);
    ts_store *s = NULL;
    int rc = stage_input_key(path, d->key);
    if (rc < 0) return rc;
    ERR_GOTO(rc, ts_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, tr_images_read(d, s, path, num_classes));
    rc = tr_meta_get_doubles(s, "mean", d->mean, d->c);
    if (rc >= 0) rc = tr_meta_get_doubles(s, "std", d->std, d->c);
    if (rc < 0) {
        rc = err_prefix(ERR_INPUT, "%s: meta mean/std per channel: ", path);
        goto fail;
    }
    for (int ch = 0; ch < d->c; ch++)
        ERR_GOTO_IF(rc, !(d->std[ch] > 0), ERR_INPUT, "%s: meta std of channel %d is %g (must be > 0)", path, ch,
                    d->std[ch]);
fail:
    ts_close(s);
    if (rc < 0) {
        char key[HASH_HEX_LEN + 1];
        memcpy(key, d->key, sizeof key);
        tr_images_free(d);
        memcpy(d->key, key, sizeof key);
    }
    return rc;
}

// --- pixels ---------------------------------------------------------------------------------

void tr_augment(uint8_t *dst, const uint8_t *src, int c, int h, int w, int flip, int pad, int dy, int dx) {
    // output pixel (y, x) reads padded (y + dy, x + dx) = source (y + dy - pad, x + dx - pad),
    // flipped horizontally first when asked
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            int sy = y + dy - pad;
            uint8_t *o = dst + ((size_t)ch * h + y) * w;
            if (sy < 0 || sy >= h) {
                memset(o, 0, (size_t)w);
                continue;
            }
            const uint8_t *row = src + ((size_t)ch * h + sy) * w;
            for (int x = 0; x < w; x++) {
                int sx = x + dx - pad;
                o[x] = (sx < 0 || sx >= w) ? 0 : row[flip ? w - 1 - sx : sx];
            }
        }
}

void tr_to_signed(float *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i] / 127.5f - 1.0f;
}

void tr_normalise(float *dst, const uint8_t *src, int c, int hw, const double *mean, const double *std) {
    for (int ch = 0; ch < c; ch++) {
        float m = (float)mean[ch], is = (float)(1.0 / std[ch]);
        for (int i = 0; i < hw; i++) dst[ch * hw + i] = ((float)src[ch * hw + i] / 255.0f - m) * is;
    }
}

// --- epoch order ----------------------------------------------------------------------------

int tr_order_init(tr_order *o, uint64_t seed, uint32_t n) {
    memset(o, 0, sizeof *o);
    ERR_IF(n == 0, ERR_INPUT, "no training images");
    o->perm = malloc(sizeof *o->perm * n);
    ERR_IF(!o->perm, ERR_NOMEM, "out of memory");
    o->seed = seed;
    o->n = n;
    o->epoch = -1;
    return 0;
}

void tr_order_free(tr_order *o) {
    if (!o) return;
    free(o->perm);
    memset(o, 0, sizeof *o);
}

uint32_t tr_order_at(tr_order *o, uint64_t pos) {
    int64_t e = (int64_t)(pos / o->n);
    if (e != o->epoch) {
        rng_permutation(rng_stream(o->seed, RNG_DATA_ORDER, (uint64_t)e, 0, 0), o->perm, o->n);
        o->epoch = e;
    }
    return o->perm[pos % o->n];
}
