// samples: the request of a samples store and the reader that follows its cache reference
// (samples.h).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/log.h"
#include "common/samples.h"
#include "common/stage.h"

// --- the request ----------------------------------------------------------------------------

int smp_request_text(const smp_request *r, char **text) {
    char buf[64 + SMP_MAX_LEVELS * 12];
    size_t len = 0;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"begin\":%lld,\"end\":%lld,\"levels\":[",
                            (long long)r->begin, (long long)r->end);
    for (int i = 0; i < r->n_levels; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", i ? "," : "", r->levels[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "],\"repeats\":%d", r->repeats);
    if (r->shard_n > 1) len += (size_t)snprintf(buf + len, sizeof buf - len, ",\"shard\":[%d,%d]", r->shard_i, r->shard_n);
    snprintf(buf + len, sizeof buf - len, "}");
    *text = strdup(buf);
    ERR_IF(!*text, ERR_NOMEM, "out of memory");
    return 0;
}

static int smp_int(const cJSON *o, const char *name, double lo, double hi, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x) || x->valuedouble < lo || x->valuedouble > hi || x->valuedouble != (double)(int64_t)x->valuedouble)
        return -1;
    *v = x->valuedouble;
    return 0;
}

int smp_request_parse(smp_request *r, const char *text, const char *where) {
    memset(r, 0, sizeof *r);
    r->shard_n = 1;
    cJSON *j = cJSON_Parse(text);
    double b = 0, e = 0, rep = 0;
    int ok = j && cJSON_IsObject(j) && smp_int(j, "begin", 0, 4294967295.0, &b) == 0 &&
             smp_int(j, "end", b, 4294967296.0, &e) == 0 && smp_int(j, "repeats", 0, 1e6, &rep) == 0;
    const cJSON *lv = ok ? cJSON_GetObjectItemCaseSensitive(j, "levels") : NULL;
    ok = ok && cJSON_IsArray(lv) && cJSON_GetArraySize(lv) <= SMP_MAX_LEVELS;
    for (int i = 0; ok && i < cJSON_GetArraySize(lv); i++) {
        const cJSON *x = cJSON_GetArrayItem(lv, i);
        ok = cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e6 && (i == 0 || x->valuedouble > r->levels[i - 1]);
        if (ok) r->levels[r->n_levels++] = (int)x->valuedouble;
    }
    const cJSON *sh = ok ? cJSON_GetObjectItemCaseSensitive(j, "shard") : NULL;
    if (ok && sh) {
        ok = cJSON_IsArray(sh) && cJSON_GetArraySize(sh) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(sh, 0)) &&
             cJSON_IsNumber(cJSON_GetArrayItem(sh, 1));
        if (ok) {
            r->shard_i = (int)cJSON_GetArrayItem(sh, 0)->valuedouble;
            r->shard_n = (int)cJSON_GetArrayItem(sh, 1)->valuedouble;
            ok = r->shard_n >= 1 && r->shard_i >= 0 && r->shard_i < r->shard_n;
        }
    }
    cJSON_Delete(j);
    ERR_IF(!ok, ERR_CORRUPT, "%s: meta request is not a valid samples request: %.200s", where, text);
    r->begin = (int64_t)b;
    r->end = (int64_t)e;
    r->repeats = (int)rep;
    return 0;
}

void smp_shard_range(int64_t count, int i, int n, int64_t *begin, int64_t *end) {
    *begin = count * i / n;
    *end = count * (i + 1) / n;
}

int smp_shard_parse(const char *text, int *i, int *n) {
    char *end = NULL;
    errno = 0;
    long a = strtol(text, &end, 10);
    int ok = errno == 0 && end != text && *end == '/';
    long b = ok ? strtol(end + 1, &end, 10) : 0;
    ok = ok && errno == 0 && *end == '\0' && b >= 1 && b <= 1000000 && a >= 0 && a < b;
    ERR_IF(!ok, ERR_USAGE, "--shard '%s': expected I/N with 0 <= I < N (e.g. 0/4)", text);
    *i = (int)a;
    *n = (int)b;
    return 0;
}

void smp_key(ts_key *k, uint32_t index, uint32_t level, uint32_t repeat) {
    uint32_t v[3] = {index, level, repeat};
    ts_key_tuple(k, 3, v);
}

// --- where the records live (the writer's side) ----------------------------------------------

int smp_records_open(ts_store *out, const char *out_path, const char *cache, const stage_id *base_id,
                     const char *base_key, ts_store **rec) {
    char *records = NULL, *entry = NULL;
    int rc = ts_meta_get(out, "records", &records), own;
    if (rc == ERR_NOTFOUND) {
        err_clear();
        ERR_GOTO(rc, own = ts_table_exists(out, "sample"));
        if (!cache || own) {
            if (cache) log_warn("%s holds its own records (made without --cache): --cache ignored", out_path);
            *rec = out;
            rc = 0;
            goto fail;
        }
        size_t len = strlen(cache) + 64;
        entry = malloc(len);
        ERR_GOTO_IF(rc, !entry, ERR_NOMEM, "out of memory");
        snprintf(entry, len, "%s/sample-%s.store", cache, base_key);
    } else {
        ERR_GOTO(rc, rc);
    }
    const char *path = records ? records : entry;
    stage_id eid = *base_id;
    eid.stage = "sample-cache";
    eid.request = NULL;
    stage_state st;
    rc = stage_open_output(rec, path, &eid, 0, &st);
    if (rc < 0) {
        err_prefix(rc, "%s: cache entry: ", out_path);
        goto fail;
    }
    if (!records) {
        char real[PATH_MAX];
        ERR_GOTO_IF(rc, !realpath(path, real), ERR_IO, "%s: cannot resolve the path", path);
        ERR_GOTO(rc, ts_meta_put(out, "records", real));
    }
    log_info("%s: records in the cache entry %s", out_path, path);
fail:
    free(records);
    free(entry);
    return rc;
}

int smp_entry_lost(const char *out) {
    ts_store *s = NULL;
    char *rec = NULL;
    int lost = 0;
    if (ts_open(&s, out, TS_RDONLY) < 0) {
        err_clear();
        return 0;
    }
    if (ts_meta_get(s, "records", &rec) == 0) {
        size_t len = strlen(rec) + 16;
        char *p = malloc(len);
        struct stat st;
        if (p) {
            snprintf(p, len, "%s/data.mdb", rec);
            lost = stat(p, &st) != 0;
        }
        free(p);
    } else
        err_clear();
    free(rec);
    ts_close(s);
    return lost;
}

// --- the reader -----------------------------------------------------------------------------

static int smp_meta_key(ts_store *s, const char *name, char out[HASH_HEX_LEN + 1]) {
    char *t = NULL;
    int rc = ts_meta_get(s, name, &t);
    if (rc == ERR_NOTFOUND) {
        out[0] = '\0';
        return 0;
    }
    ERR_TRY(rc);
    snprintf(out, HASH_HEX_LEN + 1, "%s", t);
    free(t);
    return 0;
}

int smp_open(smp_view *v, const char *path) {
    memset(v, 0, sizeof *v);
    char *stage = NULL, *req = NULL, *records = NULL;
    int rc = 0;
    ERR_GOTO(rc, stage_note_input(path)); // a stage reading it never writes over it
    ERR_GOTO(rc, ts_open(&v->own, path, TS_RDONLY));
    rc = ts_meta_get(v->own, "stage", &stage);
    ERR_GOTO_IF(rc, rc == ERR_NOTFOUND || (rc == 0 && strcmp(stage, "sample") != 0), ERR_INPUT,
                "%s: not a samples store (made by %s, not sample)", path, rc == 0 ? stage : "no stage");
    ERR_GOTO(rc, rc);
    ERR_GOTO(rc, stage_is_complete(v->own));
    ERR_GOTO_IF(rc, rc == 0, ERR_INPUT, "%s: incomplete samples store (rerun sample)", path);
    ERR_GOTO(rc, ts_meta_get(v->own, "request", &req));
    ERR_GOTO(rc, smp_request_parse(&v->req, req, path));
    ERR_GOTO(rc, ts_meta_get(v->own, "images", &v->images));
    ERR_GOTO(rc, smp_meta_key(v->own, "key", v->key));
    ERR_GOTO(rc, smp_meta_key(v->own, "images_key", v->images_key));
    ERR_GOTO(rc, smp_meta_key(v->own, "classifier_key", v->classifier_key));
    ERR_GOTO(rc, smp_meta_key(v->own, "denoiser_key", v->denoiser_key));
    ERR_GOTO(rc, smp_meta_key(v->own, "cache_key", v->cache_key));
    rc = ts_meta_get(v->own, "records", &records);
    if (rc == ERR_NOTFOUND) {
        v->rec = v->own;
        rc = 0;
    } else {
        ERR_GOTO(rc, rc);
        ERR_GOTO(rc, stage_note_input(records));
        rc = ts_open(&v->rec, records, TS_RDONLY);
        if (rc < 0) {
            err_prefix(rc, "%s: its cache entry %s cannot be read (moved or deleted? rerun sample): ", path, records);
            rc = ERR_INPUT;
            goto fail;
        }
    }
    v->records = records;
    records = NULL;
fail:
    free(stage);
    free(req);
    free(records);
    if (rc < 0) smp_close(v);
    return rc;
}

void smp_close(smp_view *v) {
    if (v->rec && v->rec != v->own) ts_close(v->rec);
    ts_close(v->own);
    free(v->images);
    free(v->records);
    memset(v, 0, sizeof *v);
}

int smp_get(smp_view *v, uint32_t index, uint32_t level, uint32_t repeat, ts_tensor *t, float *buf, size_t cap) {
    ts_key k;
    smp_key(&k, index, level, repeat);
    return ts_get_into(v->rec, "sample", &k, t, buf, cap);
}

int smp_get_pred(smp_view *v, uint32_t index, float pred[2]) {
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, index);
    ERR_TRY(ts_get_into(v->rec, "pred", &k, &t, pred, 2 * sizeof(float)));
    ERR_IF(t.dtype != TS_F32 || ts_tensor_numel(&t) != 2, ERR_CORRUPT, "%s: pred record %u is not f32 (2)",
           ts_path(v->rec), index);
    return 0;
}
