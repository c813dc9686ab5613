// scores_load: reads a Features store (docs/FORMATS.md) whole into memory for the scores, and the
// classifier's fc from its checkpoint store (ReAct, ViM); see scores.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/ood/scores.h"
#include "common/stage.h"
#include "common/store.h"

void oscore_features_free(oscore_features *f) {
    if (!f) return;
    free(f->path);
    free(f->set);
    free(f->source);
    free(f->classifier_key);
    free(f->classifier);
    free(f->index);
    free(f->logit);
    free(f->feature);
    free(f->label);
    free(f->sample_logit);
    free(f->sample_feature);
    memset(f, 0, sizeof *f);
}

// meta[key] as a malloc'd string into *out; NULL when absent and optional.
static int oscore_meta_str(ts_store *s, const char *path, const char *key, int optional, char **out) {
    *out = NULL;
    int rc = ts_meta_get(s, key, out);
    if (rc == ERR_NOTFOUND && optional) return 0;
    if (rc == ERR_NOTFOUND) return err_set(ERR_INPUT, "%s: not a features store (no meta '%s')", path, key);
    return rc;
}

static int oscore_meta_int(ts_store *s, const char *path, const char *key, int *out) {
    char *t = NULL, *end = NULL;
    ERR_TRY(oscore_meta_str(s, path, key, 0, &t));
    long v = strtol(t, &end, 10);
    int bad = end == t || *end || v < 0 || v > 1 << 30;
    free(t);
    ERR_IF(bad, ERR_INPUT, "%s: meta '%s' is not a count", path, key);
    *out = (int)v;
    return 0;
}

static int oscore_check_finite(const float *x, int64_t count, const char *path, const char *table) {
    for (int64_t i = 0; i < count; i++)
        ERR_IF(!isfinite(x[i]), ERR_INPUT, "%s: table '%s' holds a non-finite value (NaN or Inf)", path, table);
    return 0;
}

// Reads table `table` of u64 keys: f32 vectors of `dim` (or i32 scalars when out_i is set) for
// exactly the keys f->index[0..n) (fill != 0: the keys found define f->index and f->n).
static int oscore_read_table(ts_store *s, oscore_features *f, const char *table, int dim, int fill, float *out_f,
                             int32_t *out_i) {
    ts_cursor *cur = NULL;
    ts_key k;
    ts_record_info info;
    int64_t j = 0;
    int rc = ts_cursor_open(s, table, &cur);
    if (rc == ERR_NOTFOUND) return err_set(ERR_INPUT, "%s: no table '%s'", f->path, table);
    ERR_TRY(rc);
    char kb[64];
    while ((rc = ts_cursor_next(cur, &k)) == 1) {
        uint64_t idx = 0;
        ERR_GOTO_IF(rc, ts_key_get_u64(&k, &idx) < 0 || idx > UINT32_MAX, ERR_INPUT,
                    "%s: table '%s': key %s is not an image index", f->path, table, ts_key_format(&k, kb, sizeof kb));
        ERR_GOTO_IF(rc, j >= f->n, ERR_INPUT, "%s: table '%s' holds more records than '%s' (%lld)", f->path, table,
                    "logit", (long long)f->n);
        if (fill)
            f->index[j] = (uint32_t)idx;
        else
            ERR_GOTO_IF(rc, f->index[j] != idx, ERR_INPUT, "%s: table '%s' lacks image %u or has an extra one",
                        f->path, table, f->index[j]);
        ERR_GOTO(rc, ts_cursor_info(cur, &info));
        ts_tensor t;
        if (out_i) {
            int ok = info.dtype == TS_I32 && (info.rank == 0 || (info.rank == 1 && info.shape[0] == 1));
            ERR_GOTO_IF(rc, !ok, ERR_INPUT, "%s: table '%s' record %u: expected an i32 scalar", f->path, table,
                        (unsigned)idx);
            ERR_GOTO(rc, ts_cursor_get(cur, &t, out_i + j, sizeof(int32_t)));
        } else {
            ERR_GOTO_IF(rc, info.dtype != TS_F32 || info.rank != 1 || info.shape[0] != dim, ERR_INPUT,
                        "%s: table '%s' record %u: expected f32 (%d)", f->path, table, (unsigned)idx, dim);
            ERR_GOTO(rc, ts_cursor_get(cur, &t, out_f + j * dim, sizeof(float) * (size_t)dim));
        }
        j++;
    }
    if (rc < 0) goto fail;
    rc = 0;
    ERR_GOTO_IF(rc, j != f->n, ERR_INPUT, "%s: table '%s' holds %lld records, '%s' %lld", f->path, table,
                (long long)j, "logit", (long long)f->n);
    if (out_f) ERR_GOTO(rc, oscore_check_finite(out_f, f->n * dim, f->path, table));
fail:
    ts_cursor_close(cur);
    return rc;
}

static int64_t oscore_find_index(const oscore_features *f, uint32_t idx) {
    int64_t lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (f->index[mid] == idx) return mid;
        if (f->index[mid] < idx) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

// Reads a sample table keyed (index, level, repeat) into out (n, L, R, dim).
static int oscore_read_samples(ts_store *s, oscore_features *f, const char *table, int dim, float *out) {
    int64_t total = f->n * f->L * f->R;
    uint8_t *seen = calloc((size_t)total, 1);
    ERR_IF(!seen, ERR_NOMEM, "out of memory");
    ts_cursor *cur = NULL;
    ts_key k;
    ts_record_info info;
    char kb[64];
    int rc = ts_cursor_open(s, table, &cur);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_INPUT, "%s: no table '%s' (a samples features store needs it)", f->path, table);
    if (rc < 0) goto fail;
    while ((rc = ts_cursor_next(cur, &k)) == 1) {
        uint32_t v[3];
        ERR_GOTO_IF(rc, ts_key_get_tuple(&k, v, 3) != 3, ERR_INPUT, "%s: table '%s': key %s is not (index, level, repeat)",
                    f->path, table, ts_key_format(&k, kb, sizeof kb));
        int64_t row = oscore_find_index(f, v[0]);
        int li = -1;
        for (int i = 0; i < f->L; i++)
            if ((uint32_t)f->levels[i] == v[1]) li = i;
        if (row < 0 || li < 0 || v[2] >= (uint32_t)f->R) continue; // not part of the request
        ERR_GOTO(rc, ts_cursor_info(cur, &info));
        ERR_GOTO_IF(rc, info.dtype != TS_F32 || info.rank != 1 || info.shape[0] != dim, ERR_INPUT,
                    "%s: table '%s' record %s: expected f32 (%d)", f->path, table, ts_key_format(&k, kb, sizeof kb), dim);
        int64_t pos = (row * f->L + li) * f->R + v[2];
        ts_tensor t;
        ERR_GOTO(rc, ts_cursor_get(cur, &t, out + pos * dim, sizeof(float) * (size_t)dim));
        seen[pos] = 1;
    }
    if (rc < 0) goto fail;
    rc = 0;
    for (int64_t p = 0; p < total; p++)
        ERR_GOTO_IF(rc, !seen[p], ERR_INPUT, "%s: table '%s' lacks record (%u, %d, %d)", f->path, table,
                    f->index[p / (f->L * f->R)], f->levels[(p / f->R) % f->L], (int)(p % f->R));
    ERR_GOTO(rc, oscore_check_finite(out, total * dim, f->path, table));
fail:
    ts_cursor_close(cur);
    free(seen);
    return rc;
}

static int oscore_read_levels(ts_store *s, oscore_features *f) {
    char *t = NULL;
    int rc = 0;
    ERR_TRY(oscore_meta_str(s, f->path, "levels", 0, &t));
    cJSON *j = cJSON_Parse(t);
    free(t);
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    ERR_GOTO_IF(rc, n < 1 || n > OSCORE_MAX_LEVELS, ERR_INPUT, "%s: meta 'levels' is not a list of 1..%d levels",
                f->path, OSCORE_MAX_LEVELS);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_GetArrayItem(j, i);
        ERR_GOTO_IF(rc, !cJSON_IsNumber(e) || e->valuedouble < 0, ERR_INPUT, "%s: meta 'levels' holds a bad level", f->path);
        f->levels[i] = e->valueint;
    }
    f->L = n;
    ERR_GOTO(rc, oscore_meta_int(s, f->path, "repeats", &f->R));
    ERR_GOTO_IF(rc, f->R < 1, ERR_INPUT, "%s: meta 'repeats' is 0", f->path);
fail:
    cJSON_Delete(j);
    return rc;
}

int oscore_features_load(oscore_features *f, const char *path, int want_samples) {
    memset(f, 0, sizeof *f);
    ts_store *s = NULL;
    uint64_t count = 0;
    int rc = 0;
    f->path = strdup(path);
    ERR_GOTO_IF(rc, !f->path, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, stage_input_key(path, f->key));
    ERR_GOTO(rc, ts_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, oscore_meta_str(s, path, "source", 0, &f->source));
    ERR_GOTO(rc, oscore_meta_str(s, path, "set", 1, &f->set));
    if (!f->set) f->set = strdup("");
    ERR_GOTO(rc, oscore_meta_str(s, path, "classifier_key", 0, &f->classifier_key));
    ERR_GOTO(rc, oscore_meta_str(s, path, "classifier", 1, &f->classifier));
    ERR_GOTO(rc, oscore_meta_int(s, path, "num_classes", &f->K));
    ERR_GOTO(rc, oscore_meta_int(s, path, "feature_dim", &f->D));
    ERR_GOTO_IF(rc, f->K < 1 || f->D < 1, ERR_INPUT, "%s: meta num_classes/feature_dim must be positive", path);
    rc = ts_count(s, "logit", &count);
    if (rc == ERR_NOTFOUND) count = 0;
    else if (rc < 0) goto fail;
    ERR_GOTO_IF(rc, count == 0, ERR_INPUT, "%s: the features store holds no images (empty set)", path);
    f->n = (int64_t)count;
    f->index = malloc(sizeof(uint32_t) * count);
    f->logit = malloc(sizeof(float) * count * (size_t)f->K);
    f->feature = malloc(sizeof(float) * count * (size_t)f->D);
    ERR_GOTO_IF(rc, !f->index || !f->logit || !f->feature, ERR_NOMEM, "out of memory (%s)", path);
    ERR_GOTO(rc, oscore_read_table(s, f, "logit", f->K, 1, f->logit, NULL));
    ERR_GOTO(rc, oscore_read_table(s, f, "feature", f->D, 0, f->feature, NULL));
    ERR_GOTO(rc, ts_table_exists(s, "label"));
    if (rc == 1) {
        f->label = malloc(sizeof(int32_t) * count);
        ERR_GOTO_IF(rc, !f->label, ERR_NOMEM, "out of memory (%s)", path);
        ERR_GOTO(rc, oscore_read_table(s, f, "label", 1, 0, NULL, f->label));
    }
    rc = 0;
    if (want_samples && strcmp(f->source, "samples") == 0) {
        ERR_GOTO(rc, oscore_read_levels(s, f));
        size_t m = count * (size_t)f->L * (size_t)f->R;
        f->sample_logit = malloc(sizeof(float) * m * (size_t)f->K);
        f->sample_feature = malloc(sizeof(float) * m * (size_t)f->D);
        ERR_GOTO_IF(rc, !f->sample_logit || !f->sample_feature, ERR_NOMEM, "out of memory (%s samples)", path);
        ERR_GOTO(rc, oscore_read_samples(s, f, "sample_logit", f->K, f->sample_logit));
        ERR_GOTO(rc, oscore_read_samples(s, f, "sample_feature", f->D, f->sample_feature));
    }
fail:
    ts_close(s);
    if (rc < 0) oscore_features_free(f);
    return rc;
}

// --- the classifier's fc ---------------------------------------------------------------------

static int oscore_get_param(ts_store *s, const char *path, const char *table, const char *name, int rank,
                            const int64_t *shape, float *out) {
    ts_key k;
    ts_tensor t;
    ERR_TRY(ts_key_str(&k, name));
    int rc = ts_get(s, table, &k, &t);
    if (rc == ERR_NOTFOUND) return err_set(ERR_INPUT, "%s: table '%s' has no record '%s'", path, table, name);
    ERR_TRY(rc);
    int ok = t.dtype == TS_F32 && t.rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t.shape[i] == shape[i];
    if (ok) memcpy(out, t.data, t.nbytes);
    char d[64];
    ts_tensor_describe(&t, d, sizeof d);
    ts_tensor_free(&t);
    ERR_IF(!ok, ERR_INPUT, "%s: record '%s' of table '%s' is %s, the features say f32 (%lld%s%lld)", path, name, table,
           d, (long long)shape[0], rank > 1 ? ", " : ")", rank > 1 ? (long long)shape[1] : 0LL);
    return 0;
}

int oscore_load_fc(const char *path, int K, int D, float **W, float **b) {
    ts_store *s = NULL;
    *W = malloc(sizeof(float) * (size_t)K * D);
    *b = malloc(sizeof(float) * (size_t)K);
    int rc = 0;
    ERR_GOTO_IF(rc, !*W || !*b, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, ts_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, ts_table_exists(s, "best_param"));
    const char *table = rc == 1 ? "best_param" : "param";
    int64_t ws[2] = {K, D}, bs[1] = {K};
    ERR_GOTO(rc, oscore_get_param(s, path, table, "fc.weight", 2, ws, *W));
    ERR_GOTO(rc, oscore_get_param(s, path, table, "fc.bias", 1, bs, *b));
    ERR_GOTO(rc, oscore_check_finite(*W, (int64_t)K * D, path, table));
    ERR_GOTO(rc, oscore_check_finite(*b, K, path, table));
fail:
    ts_close(s);
    if (rc < 0) {
        free(*W);
        free(*b);
        *W = *b = NULL;
    }
    return rc;
}
