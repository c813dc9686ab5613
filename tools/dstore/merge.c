// dstore merge: joins stores (e.g. shards of one stage's output) into one: every record of every
// table, and the meta keys the output lacks. A key present with other content is a conflict.
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
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

static int merge_meta(ts_store *out, ts_store *in, merge_counts *mc) {
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
        } else if (rc == 0 && strcmp(a, b)) {
            fprintf(stderr, "dstore merge: meta %s differs in %s; keeping %s's\n", keys[i], ts_path(in), ts_path(out));
            mc->meta_differ++;
        }
        free(a);
        free(b);
    }
    ts_names_free(keys, n);
    return rc < 0 ? rc : 0;
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
    ERR_GOTO(rc, dst_open(&out, opath, TS_CREATE));
    for (size_t i = 1; i < cli_npos(a); i++) {
        ERR_GOTO(rc, dst_open(&in, cli_pos(a, i), TS_RDONLY));
        ERR_GOTO(rc, ts_tables(in, &names, &n));
        ERR_GOTO(rc, ts_begin_write(out));
        for (int j = 0; j < n; j++) ERR_GOTO(rc, merge_table(out, in, names[j], have_codec, codec, &mc));
        ERR_GOTO(rc, merge_meta(out, in, &mc));
        ERR_GOTO(rc, ts_commit(out));
        ts_names_free(names, n);
        names = NULL;
        n = 0;
        ts_close(in);
        in = NULL;
    }
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
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    ts_names_free(names, n);
    ts_close(in);
    ts_close(out);
    cli_args_free(a);
    return status;
}
