// dstore merge: joins stores (e.g. shards of one stage's output) into one: every record of every
// table, and the meta keys the output lacks. A key present with other content is a conflict.
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/imgstats.h"
#include "common/stage.h"
#include "tools/dstore/dstore.h"

#define MERGE_BATCH 1000

typedef struct {
    uint64_t added, present, meta_added, meta_differ;
} merge_counts;

static int same_tensor(const ts_tensor *a, const ts_tensor *b) {
    return a->dtype == b->dtype && a->rank == b->rank && !memcmp(a->shape, b->shape, sizeof a->shape) &&
           a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
}

static int merge_table(ts_store *out, ts_store *in, const char *table, int have_codec, ts_codec codec,
                       merge_counts *mc) {
    ts_cursor *c = NULL;
    ts_tensor t = {0}, o = {0};
    int rc = 0, r;
    uint64_t in_batch = 0;
    ts_key k;
    ERR_GOTO(rc, ts_cursor_open(in, table, &c));
    while ((r = ts_cursor_next(c, &k)) == 1) {
        ts_record_info info;
        ERR_GOTO(rc, ts_cursor_info(c, &info));
        ERR_GOTO(rc, ts_cursor_get(c, &t, NULL, 0));
        int has;
        ERR_GOTO(rc, has = ts_has(out, table, &k));
        if (has) {
            ERR_GOTO(rc, ts_get(out, table, &k, &o));
            char kb[300];
            ERR_GOTO_IF(rc, !same_tensor(&t, &o), ERR_CONFLICT,
                        "table '%s' key %s: %s and %s hold different records", table,
                        ts_key_format(&k, kb, sizeof kb), ts_path(in), ts_path(out));
            ts_tensor_free(&o);
            mc->present++;
        } else {
            ERR_GOTO(rc, ts_put(out, table, &k, &t, have_codec ? codec : info.codec));
            mc->added++;
            if (++in_batch % MERGE_BATCH == 0) { // the cursor reads `in`, so committing `out` is fine
                ERR_GOTO(rc, ts_commit(out));
                ERR_GOTO(rc, ts_begin_write(out));
            }
        }
        ts_tensor_free(&t);
    }
    rc = r < 0 ? r : 0;
fail:
    ts_tensor_free(&t);
    ts_tensor_free(&o);
    ts_cursor_close(c);
    return rc;
}

// Meta that a join of shards rewrites (merge_shard_join): differences there are expected.
static int merge_join_key(const char *key) {
    static const char *const keys[] = {"request", "key", "complete", "n", "count", "class_counts", "mean", "std", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(key, keys[i])) return 1;
    return 0;
}

// shard != 0: `in` is one of the shards of a run being joined (no warning for merge_join_key).
static int merge_meta(ts_store *out, ts_store *in, int shard, merge_counts *mc) {
    char **keys = NULL;
    int n = 0, rc = 0;
    ERR_TRY(ts_meta_list(in, &keys, &n));
    for (int i = 0; i < n && rc >= 0; i++) {
        char *a = NULL, *b = NULL;
        if ((rc = ts_meta_get(in, keys[i], &a)) < 0) break;
        rc = ts_meta_get(out, keys[i], &b);
        if (rc == ERR_NOTFOUND) {
            rc = ts_meta_put(out, keys[i], a);
            mc->meta_added++;
        } else if (rc == 0 && strcmp(a, b) && !(shard && merge_join_key(keys[i]))) {
            fprintf(stderr, "dstore merge: meta %s differs in %s; keeping %s's\n", keys[i], ts_path(in), ts_path(out));
            mc->meta_differ++;
        }
        free(a);
        free(b);
    }
    ts_names_free(keys, n);
    return rc < 0 ? rc : 0;
}

// --- shards of an incremental stage (common/stage.h: meta base_key and request) -----------------

typedef struct {
    int n, complete;
    int64_t begin, end; // the union so far (when contiguous)
    int contiguous, shard_n, seen_mask_ok;
    char base[64];
    unsigned char *seen; // shard i present
} merge_shards;

static char *merge_meta_or_null(ts_store *s, const char *key) {
    char *t = NULL;
    if (ts_meta_get(s, key, &t) < 0) {
        err_clear();
        return NULL;
    }
    return t;
}

// Records what an input says of its shard; inputs that are not shards make the join moot.
static void merge_shard_note(merge_shards *m, ts_store *in) {
    char *base = merge_meta_or_null(in, "base_key"), *req = merge_meta_or_null(in, "request");
    cJSON *j = req ? cJSON_Parse(req) : NULL;
    const cJSON *b = j ? cJSON_GetObjectItemCaseSensitive(j, "begin") : NULL,
                *e = j ? cJSON_GetObjectItemCaseSensitive(j, "end") : NULL,
                *sh = j ? cJSON_GetObjectItemCaseSensitive(j, "shard") : NULL;
    int ok = base && cJSON_IsNumber(b) && cJSON_IsNumber(e) && cJSON_IsArray(sh) && cJSON_GetArraySize(sh) == 2;
    if (ok && m->n == 0) {
        snprintf(m->base, sizeof m->base, "%s", base);
        m->shard_n = (int)cJSON_GetArrayItem(sh, 1)->valuedouble;
        m->seen = calloc((size_t)(m->shard_n > 0 ? m->shard_n : 1), 1);
        m->contiguous = m->seen != NULL && m->shard_n > 0;
        m->complete = 1;
        m->begin = (int64_t)b->valuedouble;
        m->end = (int64_t)b->valuedouble;
    }
    if (!ok || strcmp(m->base, base) || (int)cJSON_GetArrayItem(sh, 1)->valuedouble != m->shard_n) m->contiguous = 0;
    if (m->contiguous) {
        int i = (int)cJSON_GetArrayItem(sh, 0)->valuedouble;
        if (i < 0 || i >= m->shard_n || m->seen[i] || (int64_t)b->valuedouble != m->end) m->contiguous = 0;
        else {
            m->seen[i] = 1;
            m->end = (int64_t)e->valuedouble;
        }
        char *c = merge_meta_or_null(in, "complete");
        m->complete = m->complete && c && !strcmp(c, "true");
        free(c);
    }
    m->n++;
    cJSON_Delete(j);
    free(base);
    free(req);
}

// Shards of `ingest` (not an incremental stage: its whole store has no request): when they cover
// all `count` images of their request, OUT takes the identity of the unsharded run (key =
// base_key, no request) and its dataset facts, recomputed over the joined records.
static int merge_ingest_finish(merge_shards *m, ts_store *out, const cJSON *req) {
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(req, "count");
    char *shape = merge_meta_or_null(out, "shape");
    cJSON *sj = shape ? cJSON_Parse(shape) : NULL;
    imgstats st = {0};
    int rc = 0;
    ERR_GOTO_IF(rc, !cJSON_IsNumber(count) || m->begin != 0 || m->end != (int64_t)count->valuedouble, ERR_INPUT,
                "%s: the ingest shards hold images %lld..%lld, not all of the %s selected", ts_path(out),
                (long long)m->begin, (long long)m->end, cJSON_IsNumber(count) ? "images" : "(unknown count)");
    ERR_GOTO_IF(rc, !cJSON_IsArray(sj) || cJSON_GetArraySize(sj) != 3 || !cJSON_IsNumber(cJSON_GetArrayItem(sj, 0)),
                ERR_CORRUPT, "%s: meta shape is not [C,H,W]: %s", ts_path(out), shape ? shape : "(missing)");
    ERR_GOTO(rc, imgstats_init(&st, (int)cJSON_GetArrayItem(sj, 0)->valuedouble));
    ERR_GOTO(rc, imgstats_scan(out, &st));
    ERR_GOTO(rc, imgstats_meta_put(out, &st));
    ERR_GOTO(rc, ts_meta_del(out, "request"));
    ERR_GOTO(rc, ts_meta_del(out, "base_key"));
    ERR_GOTO(rc, ts_meta_put(out, "key", m->base));
fail:
    imgstats_free(&st);
    cJSON_Delete(sj);
    free(shape);
    return rc;
}

// When the inputs were all the shards of one request, in order: OUT gets the joined request,
// its key (as the unsharded run computes it) and the completion of the shards; meta `n` (the
// images of the request, extract-features) becomes the joined count; ingest's shards become
// the unsharded store (merge_ingest_finish).
static int merge_shard_join(merge_shards *m, ts_store *out) {
    for (int i = 0; m->contiguous && i < m->shard_n; i++)
        if (!m->seen[i]) m->contiguous = 0;
    if (!m->contiguous) {
        if (m->shard_n > 0)
            fprintf(stderr, "dstore merge: the inputs are not all %d shards of one run in order (0/%d, 1/%d, ...): "
                            "records merged, meta of %s kept (not a joined run)\n", m->shard_n, m->shard_n, m->shard_n,
                    ts_path(out));
        return 0;
    }
    char *stage = merge_meta_or_null(out, "stage"), *ver = merge_meta_or_null(out, "stage_version"),
         *params = merge_meta_or_null(out, "params"), *inputs = merge_meta_or_null(out, "inputs"),
         *req = merge_meta_or_null(out, "request"), *text = NULL;
    cJSON *j = req ? cJSON_Parse(req) : NULL;
    int rc = 0;
    if (!stage || !ver || !params || !inputs || !j) goto fail; // not a stage store: leave it
    cJSON_DeleteItemFromObjectCaseSensitive(j, "shard");
    cJSON_ReplaceItemInObjectCaseSensitive(j, "begin", cJSON_CreateNumber((double)m->begin));
    cJSON_ReplaceItemInObjectCaseSensitive(j, "end", cJSON_CreateNumber((double)m->end));
    ERR_GOTO(rc, stage_canonical_json(j, &text));
    stage_id id = {stage, atoi(ver), params, inputs, text};
    char key[HASH_HEX_LEN + 1];
    ERR_GOTO(rc, stage_full_key(&id, key));
    ERR_GOTO(rc, ts_meta_put(out, "request", text));
    ERR_GOTO(rc, ts_meta_put(out, "key", key));
    ERR_GOTO(rc, ts_meta_put(out, "complete", m->complete ? "true" : "false"));
    char *n = merge_meta_or_null(out, "n");
    if (n) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)(m->end - m->begin));
        free(n);
        ERR_GOTO(rc, ts_meta_put(out, "n", buf));
    }
    if (!strcmp(stage, "ingest")) ERR_GOTO(rc, merge_ingest_finish(m, out, j));
    fprintf(stderr, "dstore merge: joined %d shards of %s: images %lld..%lld%s\n", m->shard_n, stage,
            (long long)m->begin, (long long)m->end, m->complete ? "" : " (some shard is incomplete)");
fail:
    cJSON_Delete(j);
    free(stage);
    free(ver);
    free(params);
    free(inputs);
    free(req);
    free(text);
    return rc;
}

int dst_merge(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"codec", "C", 0, "re-encode records with raw, zstd or shuffle-zstd (default: as stored)"},
        {"json", NULL, 0, "print a one-line JSON summary"},
        {0}};
    static const cli_spec spec = {"dstore merge", "OUT IN... [--codec C] [--json]",
                                  "Copies every record of every table of the IN stores into OUT (created when missing), "
                                  "and the meta keys OUT lacks (a meta key with another value keeps OUT's, with a "
                                  "warning). A key already in OUT with different content is a conflict (exit 2).",
                                  opts, 0, 2, -1};
    cli_args *a = NULL;
    ts_store *out = NULL, *in = NULL;
    char **names = NULL;
    int n = 0, rc = 0, status;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    int have_codec = cli_has(a, "codec");
    ts_codec codec = TS_CODEC_ZSTD;
    if (have_codec) ERR_GOTO(rc, ts_codec_from_name(cli_get(a, "codec"), &codec));
    const char *opath = cli_pos(a, 0);
    char ro[PATH_MAX], ri[PATH_MAX];
    // each input must exist and differ from the output before anything is written
    for (size_t i = 1; i < cli_npos(a); i++) {
        ERR_GOTO(rc, dst_open(&in, cli_pos(a, i), TS_RDONLY));
        ts_close(in);
        in = NULL;
        if (realpath(opath, ro) && realpath(cli_pos(a, i), ri))
            ERR_GOTO_IF(rc, !strcmp(ro, ri), ERR_USAGE, "%s is both the output and an input", cli_pos(a, i));
    }
    merge_counts mc = {0};
    merge_shards ms = {0};
    ERR_GOTO(rc, dst_open(&out, opath, TS_CREATE));
    for (size_t i = 1; i < cli_npos(a); i++) {
        ERR_GOTO(rc, dst_open(&in, cli_pos(a, i), TS_RDONLY));
        merge_shard_note(&ms, in);
        ERR_GOTO(rc, ts_tables(in, &names, &n));
        ERR_GOTO(rc, ts_begin_write(out));
        for (int j = 0; j < n; j++) ERR_GOTO(rc, merge_table(out, in, names[j], have_codec, codec, &mc));
        ERR_GOTO(rc, merge_meta(out, in, ms.contiguous, &mc));
        ERR_GOTO(rc, ts_commit(out));
        ts_names_free(names, n);
        names = NULL;
        n = 0;
        ts_close(in);
        in = NULL;
    }
    ERR_GOTO(rc, ts_begin_write(out));
    ERR_GOTO(rc, merge_shard_join(&ms, out));
    ERR_GOTO(rc, ts_commit(out));
    if (cli_has(a, "json")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "out", opath);
        cJSON_AddNumberToObject(j, "inputs", (double)(cli_npos(a) - 1));
        cJSON_AddNumberToObject(j, "added", (double)mc.added);
        cJSON_AddNumberToObject(j, "present", (double)mc.present);
        cJSON_AddNumberToObject(j, "meta_added", (double)mc.meta_added);
        cJSON_AddNumberToObject(j, "meta_differ", (double)mc.meta_differ);
        dst_print_json(j);
    } else
        printf("merged %zu store%s into %s: %" PRIu64 " records added, %" PRIu64 " already there, %" PRIu64
               " meta keys added, %" PRIu64 " meta keys differ\n",
               cli_npos(a) - 1, cli_npos(a) == 2 ? "" : "s", opath, mc.added, mc.present, mc.meta_added,
               mc.meta_differ);
fail:
    if (out && ts_in_write(out)) ts_abort(out);
    free(ms.seen);
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    ts_names_free(names, n);
    ts_close(in);
    ts_close(out);
    cli_args_free(a);
    return status;
}
