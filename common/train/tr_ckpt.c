// tr_ckpt: checkpoint records of a network's arenas by state_dict name, and meta numbers
// (tr.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/train/tr.h"

static size_t tr_arena_floats(const nn_net *net, nn_kind kind) {
    return kind == NN_KIND_PARAM ? net->n_params : net->n_buffers;
}

static int tr_ckpt_key(ts_key *k, const char *prefix, const char *name) {
    char buf[TS_KEY_MAX + 1];
    int len = snprintf(buf, sizeof buf, "%s%s", prefix ? prefix : "", name);
    ERR_IF(len < 0 || len >= (int)sizeof buf, ERR_USAGE, "checkpoint key '%s%s' is too long", prefix, name);
    return ts_key_str(k, buf);
}

int tr_ckpt_put(ts_store *s, const char *table, const char *prefix, const nn_net *net, nn_kind kind,
                const float *arena) {
    size_t nf = tr_arena_floats(net, kind);
    if (nf == 0) return 0;
    float *h = malloc(sizeof(float) * nf);
    ERR_IF(!h, ERR_NOMEM, "out of memory for a checkpoint of %zu floats", nf);
    int rc = ops_download(net->ctx, h, arena, sizeof(float) * nf);
    for (int i = 0; rc >= 0 && i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != kind) continue;
        ts_key k;
        ts_tensor t;
        int64_t shape[NN_MAX_RANK];
        for (int d = 0; d < e->rank; d++) shape[d] = e->shape[d];
        ERR_GOTO(rc, tr_ckpt_key(&k, prefix, e->name));
        ERR_GOTO(rc, ts_tensor_init(&t, TS_F32, e->rank, shape, h + e->offset));
        ERR_GOTO(rc, ts_put(s, table, &k, &t, e->numel >= 1024 ? TS_CODEC_SHUFFLE_ZSTD : TS_CODEC_RAW));
    }
fail:
    free(h);
    return rc;
}

int tr_ckpt_get(ts_store *s, const char *table, const char *prefix, const nn_net *net, nn_kind kind, float *arena) {
    size_t nf = tr_arena_floats(net, kind);
    if (nf == 0) return 0;
    float *h = calloc(nf, sizeof(float));
    ERR_IF(!h, ERR_NOMEM, "out of memory for a checkpoint of %zu floats", nf);
    int rc = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != kind) continue;
        ts_key k;
        ts_tensor t;
        ts_record_info info;
        ERR_GOTO(rc, tr_ckpt_key(&k, prefix, e->name));
        rc = ts_get_info(s, table, &k, &info);
        if (rc == ERR_NOTFOUND) {
            rc = err_set(ERR_NOTFOUND, "%s: checkpoint table %s has no record '%s%s'", ts_path(s), table,
                         prefix ? prefix : "", e->name);
            goto fail;
        }
        ERR_GOTO(rc, rc);
        // the full shape, not only the count: a transposed weight must not load
        int same = info.dtype == TS_F32 && info.rank == e->rank;
        for (int d = 0; same && d < e->rank; d++) same = info.shape[d] == (int64_t)e->shape[d];
        if (!same) {
            char want[96], got[96];
            size_t len = (size_t)snprintf(got, sizeof got, "[");
            for (int d = 0; d < info.rank && d < TS_MAX_RANK && len < sizeof got; d++)
                len += (size_t)snprintf(got + len, sizeof got - len, "%s%lld", d ? ", " : "", (long long)info.shape[d]);
            if (len < sizeof got) snprintf(got + len, sizeof got - len, "]");
            rc = err_set(ERR_CORRUPT, "%s: checkpoint table %s, record '%s%s' is %s %s, the network's tensor is f32 %s",
                         ts_path(s), table, prefix ? prefix : "", e->name, ts_dtype_name(info.dtype), got,
                         nn_shape_str(e, want, sizeof want));
            goto fail;
        }
        rc = ts_get_into(s, table, &k, &t, h + e->offset, e->numel * sizeof(float));
        if (rc == ERR_INPUT) rc = ERR_CORRUPT;
        if (rc < 0) {
            err_prefix(rc, "%s: checkpoint table %s, record '%s%s' (expected %zu floats): ", ts_path(s), table,
                       prefix ? prefix : "", e->name, e->numel);
            goto fail;
        }
        ERR_GOTO_IF(rc, t.dtype != TS_F32 || (size_t)ts_tensor_numel(&t) != e->numel, ERR_CORRUPT,
                    "%s: checkpoint table %s, record '%s%s' is %s with %lld elements, expected f32 with %zu",
                    ts_path(s), table, prefix ? prefix : "", e->name, ts_dtype_name(t.dtype),
                    (long long)ts_tensor_numel(&t), e->numel);
    }
    ERR_GOTO(rc, ops_upload(net->ctx, arena, h, sizeof(float) * nf));
fail:
    free(h);
    return rc;
}

int tr_meta_put_i64(ts_store *s, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return ts_meta_put(s, key, buf);
}

int tr_meta_get_i64(ts_store *s, const char *key, int64_t *v) {
    char *text = NULL, *end = NULL;
    ERR_TRY(ts_meta_get(s, key, &text));
    errno = 0;
    long long x = strtoll(text, &end, 10);
    int bad = errno != 0 || end == text || *end != '\0';
    free(text);
    ERR_IF(bad, ERR_CORRUPT, "%s: meta %s is not an integer", ts_path(s), key);
    *v = (int64_t)x;
    return 0;
}

int tr_meta_put_doubles(ts_store *s, const char *key, const double *v, int n) {
    char buf[48 * 8 + 8];
    size_t len = 0;
    ERR_IF(n < 0 || n > 8, ERR_USAGE, "meta %s: %d values (at most 8)", key, n);
    len += (size_t)snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < n; i++) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.17g", i ? "," : "", v[i]);
    snprintf(buf + len, sizeof buf - len, "]");
    return ts_meta_put(s, key, buf);
}

int tr_meta_get_doubles(ts_store *s, const char *key, double *v, int n) {
    char *text = NULL;
    ERR_TRY(ts_meta_get(s, key, &text));
    cJSON *j = cJSON_Parse(text);
    free(text);
    int ok = j && cJSON_IsArray(j) && cJSON_GetArraySize(j) == n;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsNumber(x)) ok = 0;
        else v[i] = x->valuedouble;
    }
    cJSON_Delete(j);
    ERR_IF(!ok, ERR_CORRUPT, "%s: meta %s is not a list of %d numbers", ts_path(s), key, n);
    return 0;
}

// --- the meta of a run --------------------------------------------------------------------------

int tr_ckpt_put_meta(ts_store *s, const tr_env *env, const char *model, int64_t step, int64_t epoch) {
    ERR_TRY(ts_meta_put(s, "model", model));
    ERR_TRY(ts_meta_put(s, "config", env->config_text));
    ERR_TRY(ts_meta_put(s, "data_key", env->train->key));
    if (env->val) ERR_TRY(ts_meta_put(s, "val_key", env->val->key));
    ERR_TRY(tr_meta_put_doubles(s, "mean", env->train->mean, env->train->c));
    ERR_TRY(tr_meta_put_doubles(s, "std", env->train->std, env->train->c));
    ERR_TRY(tr_meta_put_i64(s, "step", step));
    return tr_meta_put_i64(s, "epoch", epoch);
}

int tr_ckpt_step(const tr_env *env, long total, long *step) {
    int64_t st = 0;
    int rc = tr_meta_get_i64(env->out, "step", &st);
    *step = 0;
    if (rc == ERR_NOTFOUND) return 0;
    ERR_TRY(rc);
    ERR_IF(st < 0 || st > total, ERR_CORRUPT, "%s: meta step %lld outside 0..%ld", env->out_path, (long long)st,
           total);
    *step = (long)st;
    return 1;
}
