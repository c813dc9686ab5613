// dstore NPY commands: `export` (all records of a table stacked in key order, or one record, to
// an NPY file) and `import` (each slice along axis 0 of an NPY file becomes record 0..N-1).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/infile.h"
#include "common/npy.h"
#include "tools/dstore/dstore.h"

// Writes to "FILE.tmpPID" and renames into place at the end.
typedef struct {
    FILE *f;
    char tmp[4200];
    const char *path;
} out_file;

static int out_open(out_file *o, const char *path) {
    o->path = path;
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp%ld", path, (long)getpid());
    o->f = fopen(o->tmp, "wb");
    ERR_IF(!o->f, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

static int out_close(out_file *o, int ok) {
    if (!o->f) return 0;
    int crc = fclose(o->f);
    o->f = NULL;
    if (ok && crc == 0 && rename(o->tmp, o->path) == 0) return 0;
    unlink(o->tmp);
    ERR_IF(ok, ERR_IO, "%s: write error: %s", o->path, strerror(errno));
    return 0;
}

// --- export ------------------------------------------------------------------------------------
int dst_export(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"npy", "FILE", 0, "output NPY file (required; replaced)"},
        {"key", "K", 0, "export only this record (its own shape)"},
        {0}};
    static const cli_spec spec = {"dstore export", "STORE TABLE --npy FILE [--key K]",
                                  "Stacks every record of TABLE (same dtype and shape) in key order into one NPY array "
                                  "of shape (N, ...), format 1.0 (2.0 when the header needs it).",
                                  opts, 0, 2, 2};
    cli_args *a = NULL;
    ts_store *s = NULL;
    ts_cursor *c = NULL;
    ts_tensor t = {0};
    out_file o = {0};
    int rc = 0, status;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    const char *path = cli_pos(a, 0), *table = cli_pos(a, 1), *npy = cli_get(a, "npy");
    ERR_GOTO_IF(rc, !npy, ERR_USAGE, "--npy FILE is required");
    ERR_GOTO(rc, dst_open(&s, path, TS_RDONLY));
    uint64_t count = 0;
    if (cli_has(a, "key")) {
        ts_key key;
        ERR_GOTO(rc, ts_key_parse(&key, cli_get(a, "key")));
        ERR_GOTO(rc, ts_get(s, table, &key, &t));
        ERR_GOTO(rc, npy_save(npy, t.dtype, t.rank, t.shape, t.data));
        count = 1;
    } else {
        // pass 1 over the cursor's snapshot: count and check that all records agree
        ERR_GOTO(rc, ts_cursor_open(s, table, &c));
        ts_record_info first = {0}, info;
        ts_key k0, k;
        char kb[300], kb0[300];
        while ((rc = ts_cursor_next(c, &k)) == 1) {
            ERR_GOTO(rc, ts_cursor_info(c, &info));
            if (count == 0) first = info, k0 = k;
            else if (info.dtype != first.dtype || info.rank != first.rank ||
                     memcmp(info.shape, first.shape, sizeof info.shape)) {
                ts_tensor d1 = {.dtype = first.dtype, .rank = first.rank}, d2 = {.dtype = info.dtype, .rank = info.rank};
                memcpy(d1.shape, first.shape, sizeof d1.shape);
                memcpy(d2.shape, info.shape, sizeof d2.shape);
                char s1[96], s2[96];
                rc = err_set(ERR_INPUT,
                             "store %s: table '%s' mixes layouts (key %s: %s, key %s: %s); export one with --key",
                             path, table, ts_key_format(&k0, kb0, sizeof kb0), ts_tensor_describe(&d1, s1, sizeof s1),
                             ts_key_format(&k, kb, sizeof kb), ts_tensor_describe(&d2, s2, sizeof s2));
                goto fail;
            }
            count++;
        }
        if (rc < 0) goto fail;
        ERR_GOTO_IF(rc, count == 0, ERR_INPUT, "store %s: table '%s' is empty", path, table);
        int64_t shape[NPY_MAX_RANK] = {(int64_t)count};
        for (int i = 0; i < first.rank; i++) shape[1 + i] = first.shape[i];
        ERR_GOTO(rc, out_open(&o, npy));
        ERR_GOTO(rc, npy_write_header(o.f, npy, first.dtype, first.rank + 1, shape, NULL));
        void *buf = malloc(first.raw_len ? first.raw_len : 1);
        ERR_GOTO_IF(rc, !buf, ERR_NOMEM, "out of memory");
        // pass 2: same snapshot, from the first key again
        ts_cursor_reset(c);
        uint64_t i = 0;
        for (; i < count; i++) {
            if ((rc = ts_cursor_next(c, NULL)) != 1) break;
            if ((rc = ts_cursor_get(c, &t, buf, first.raw_len)) < 0) break;
            if (fwrite(buf, 1, first.raw_len, o.f) != first.raw_len) {
                rc = err_set(ERR_IO, "%s: write error: %s", npy, strerror(errno));
                break;
            }
            memset(&t, 0, sizeof t);
            rc = 1;
        }
        free(buf);
        memset(&t, 0, sizeof t);
        if (rc < 0) goto fail;
        ERR_GOTO_IF(rc, i != count, ERR_CORRUPT, "store %s: table '%s' read %" PRIu64 " records on the second pass, %"
                    PRIu64 " on the first", path, table, i, count);
        ERR_GOTO(rc, out_close(&o, 1));
        rc = 0;
    }
    fprintf(stderr, "dstore export: %" PRIu64 " record%s of %s/%s -> %s\n", count, count == 1 ? "" : "s", path, table,
            npy);
fail:
    out_close(&o, 0);
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    ts_cursor_close(c);
    ts_tensor_free(&t);
    ts_close(s);
    cli_args_free(a);
    return status;
}

// --- import ------------------------------------------------------------------------------------
int dst_import(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"npy", "FILE", 0, "input NPY file (required)"},
        {"codec", "C", 0, "raw, zstd or shuffle-zstd (default zstd)"},
        {"batch", "N", 0, "records per commit (default 1000)"},
        {"force", NULL, 0, "replace TABLE when it exists"},
        {"dict", NULL, 0, "train a zstd dictionary on the first batch, then compress the rest with it"},
        {0}};
    static const cli_spec spec = {"dstore import", "STORE TABLE --npy FILE [--codec C] [--batch N] [--dict] [--force]",
                                  "Stores each slice along axis 0 of an NPY array as one record of TABLE, keys 0..N-1 "
                                  "(the store is created when missing).",
                                  opts, 0, 2, 2};
    cli_args *a = NULL;
    ts_store *s = NULL;
    FILE *f = NULL;
    void *buf = NULL;
    int rc = 0, status;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    const char *path = cli_pos(a, 0), *table = cli_pos(a, 1), *npy = cli_get(a, "npy");
    ERR_GOTO_IF(rc, !npy, ERR_USAGE, "--npy FILE is required");
    ts_codec codec = TS_CODEC_ZSTD;
    if (cli_has(a, "codec")) ERR_GOTO(rc, ts_codec_from_name(cli_get(a, "codec"), &codec));
    long batch;
    ERR_GOTO(rc, cli_get_int(a, "batch", 1000, &batch));
    ERR_GOTO_IF(rc, batch < 1, ERR_USAGE, "--batch must be >= 1");
    uint64_t fsize = 0; // 0 for a pipe: its header's sizes cannot be checked against the file
    ERR_GOTO(rc, infile_fopen_stream(npy, &f, &fsize)); // a directory is "is a directory"; a pipe is fine
    npy_header h;
    ERR_GOTO(rc, npy_read_header(f, npy, &h));
    ERR_GOTO_IF(rc, h.rank < 1, ERR_INPUT, "%s: a 0-d array has no axis 0 to split into records", npy);
    ERR_GOTO_IF(rc, h.rank - 1 > TS_MAX_RANK, ERR_UNSUPPORTED, "%s: records of rank %d (array rank %d) exceed %d", npy,
                h.rank - 1, h.rank, TS_MAX_RANK);
    ts_tensor t;
    ERR_GOTO(rc, ts_tensor_init(&t, h.dtype, h.rank - 1, h.shape + 1, NULL));
    ERR_GOTO_IF(rc, !fsize && t.nbytes > ((size_t)1 << 30), ERR_INPUT,
                "%s: the header announces records of %zu bytes, more than a pipe may hold (1 GiB): give a file", npy,
                t.nbytes);
    buf = malloc(t.nbytes ? t.nbytes : 1);
    ERR_GOTO_IF(rc, !buf, ERR_NOMEM, "out of memory");
    t.data = buf;
    ERR_GOTO(rc, dst_open(&s, path, TS_CREATE));
    int exists;
    ERR_GOTO(rc, exists = ts_table_exists(s, table));
    ERR_GOTO_IF(rc, exists && !cli_has(a, "force"), ERR_CONFLICT,
                "store %s: table '%s' exists (use --force to replace it)", path, table);
    ERR_GOTO(rc, ts_begin_write(s));
    if (exists) ERR_GOTO(rc, ts_drop_table(s, table));
    for (int64_t i = 0; i < h.shape[0]; i++) {
        ERR_GOTO_IF(rc, t.nbytes && fread(buf, 1, t.nbytes, f) != t.nbytes, ERR_INPUT,
                    "%s: truncated NPY data at slice %" PRId64, npy, i);
        ts_key k;
        ts_key_u64(&k, (uint64_t)i);
        ERR_GOTO(rc, ts_put(s, table, &k, &t, codec));
        if ((i + 1) % batch == 0) {
            ERR_GOTO(rc, ts_commit(s));
            if (i + 1 == batch && cli_has(a, "dict") && codec != TS_CODEC_RAW) {
                rc = ts_dict_train(s, table, 0, 0, NULL);
                if (rc == ERR_INPUT) fprintf(stderr, "dstore import: no dictionary: %s\n", err_msg());
                else if (rc < 0) goto fail;
                rc = 0;
            }
            ERR_GOTO(rc, ts_begin_write(s));
        }
    }
    ERR_GOTO(rc, ts_commit(s));
    fprintf(stderr, "dstore import: %" PRId64 " records of %s -> %s/%s\n", h.shape[0], npy, path, table);
fail:
    if (s && ts_in_write(s)) ts_abort(s);
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    if (f) fclose(f);
    free(buf);
    ts_close(s);
    cli_args_free(a);
    return status;
}
