// dstore inspect commands: `ls` (tables and counts), `info` (meta, per-table layout, bytes,
// compression, LMDB statistics) and `show` (one record).
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/dstore/dstore.h"

static const cli_opt json_opts[] = {{"json", NULL, 0, "print one line of JSON instead of a table"}, {0}};

// --- ls ----------------------------------------------------------------------------------------
int dst_ls(int argc, char **argv) {
    static const cli_spec spec = {"dstore ls", "STORE [--json]", "Lists the tables of a store and their record counts.",
                                  json_opts, 0, 1, 1};
    cli_args *a = NULL;
    ts_store *s = NULL;
    char **names = NULL;
    int n = 0, rc = 0, status;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    const char *path = cli_pos(a, 0);
    ERR_GOTO(rc, dst_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, ts_tables(s, &names, &n));
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "tables");
    cJSON_AddStringToObject(j, "store", path);
    int json = cli_has(a, "json");
    if (!json) printf("%-24s %12s\n", "table", "records");
    for (int i = 0; i < n; i++) {
        uint64_t cnt = 0;
        if ((rc = ts_count(s, names[i], &cnt)) < 0) {
            cJSON_Delete(j);
            goto fail;
        }
        if (json) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", names[i]);
            cJSON_AddNumberToObject(t, "records", (double)cnt);
            cJSON_AddItemToArray(arr, t);
        } else printf("%-24s %12" PRIu64 "\n", names[i], cnt);
    }
    if (json) dst_print_json(j);
    else cJSON_Delete(j);
fail:
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    ts_names_free(names, n);
    ts_close(s);
    cli_args_free(a);
    return status;
}

// --- info --------------------------------------------------------------------------------------
typedef struct {
    uint64_t records, raw, stored;
    int mixed, have;
    ts_dtype dtype;
    int rank;
    int64_t shape[TS_MAX_RANK];
    int codecs;
} table_summary;

static int summarise(ts_store *s, const char *table, table_summary *ts) {
    ts_cursor *c = NULL;
    memset(ts, 0, sizeof *ts);
    ERR_TRY(ts_cursor_open(s, table, &c));
    int rc;
    while ((rc = ts_cursor_next(c, NULL)) == 1) {
        ts_record_info info;
        if ((rc = ts_cursor_info(c, &info)) < 0) break;
        ts->records++;
        ts->raw += info.raw_len;
        ts->stored += info.stored_len;
        ts->codecs |= 1 << info.codec;
        if (!ts->have) {
            ts->have = 1;
            ts->dtype = info.dtype;
            ts->rank = info.rank;
            memcpy(ts->shape, info.shape, sizeof ts->shape);
        } else if (info.dtype != ts->dtype || info.rank != ts->rank ||
                   memcmp(info.shape, ts->shape, sizeof ts->shape))
            ts->mixed = 1;
    }
    ts_cursor_close(c);
    return rc < 0 ? rc : 0;
}

static void layout_text(const table_summary *t, char *buf, size_t cap) {
    if (!t->have) snprintf(buf, cap, "(empty)");
    else if (t->mixed) snprintf(buf, cap, "mixed");
    else {
        ts_tensor d = {.dtype = t->dtype, .rank = t->rank};
        memcpy(d.shape, t->shape, sizeof d.shape);
        ts_tensor_describe(&d, buf, cap);
    }
}

static void codecs_text(int codecs, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int c = 0; c < TS_CODEC_COUNT && o < cap; c++)
        if (codecs & (1 << c)) o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "," : "", ts_codec_name((ts_codec)c));
}

int dst_info(int argc, char **argv) {
    static const cli_spec spec = {"dstore info", "STORE [--json]",
                                  "Shows a store's meta, each table's dtype/shape (of its records, or \"mixed\"), raw and "
                                  "stored bytes, compression ratio, and LMDB statistics.",
                                  json_opts, 0, 1, 1};
    cli_args *a = NULL;
    ts_store *s = NULL;
    char **names = NULL, **mkeys = NULL;
    int n = 0, nm = 0, rc = 0, status;
    cJSON *j = NULL;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    const char *path = cli_pos(a, 0);
    int json = cli_has(a, "json");
    ERR_GOTO(rc, dst_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, ts_meta_list(s, &mkeys, &nm));
    ERR_GOTO(rc, ts_tables(s, &names, &n));
    ts_env_info env;
    ERR_GOTO(rc, ts_env_stat(s, &env));
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "store", path);
    cJSON *jm = cJSON_AddObjectToObject(j, "meta");
    if (!json) printf("store %s\nmeta:\n", path);
    for (int i = 0; i < nm; i++) {
        char *txt;
        ERR_GOTO(rc, ts_meta_get(s, mkeys[i], &txt));
        cJSON_AddStringToObject(jm, mkeys[i], txt);
        if (!json) {
            printf("  %s: ", mkeys[i]);
            for (const char *p = txt; *p; p++) {
                putchar(*p);
                if (*p == '\n' && p[1]) printf("    ");
            }
            if (!*txt || txt[strlen(txt) - 1] != '\n') putchar('\n');
        }
        free(txt);
    }
    cJSON *jt = cJSON_AddArrayToObject(j, "tables");
    if (!json)
        printf("tables:\n  %-20s %10s  %-22s %11s %11s %7s  %-18s %s\n", "name", "records", "dtype (shape)", "raw",
               "stored", "ratio", "codecs", "lmdb depth/leaf/overflow pages");
    for (int i = 0; i < n; i++) {
        table_summary t;
        ts_table_stat st;
        ERR_GOTO(rc, summarise(s, names[i], &t));
        ERR_GOTO(rc, ts_stat(s, names[i], 0, &st));
        char lay[96], codecs[64], rb[32], sb[32];
        layout_text(&t, lay, sizeof lay);
        codecs_text(t.codecs, codecs, sizeof codecs);
        double ratio = t.stored ? (double)t.raw / (double)t.stored : 1.0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i]);
        cJSON_AddNumberToObject(o, "records", (double)t.records);
        if (t.have && !t.mixed) {
            cJSON_AddStringToObject(o, "dtype", ts_dtype_name(t.dtype));
            cJSON_AddItemToObject(o, "shape", dst_shape_json(t.rank, t.shape));
        } else cJSON_AddStringToObject(o, "dtype", t.have ? "mixed" : "empty");
        cJSON_AddNumberToObject(o, "raw_bytes", (double)t.raw);
        cJSON_AddNumberToObject(o, "stored_bytes", (double)t.stored);
        cJSON_AddNumberToObject(o, "ratio", ratio);
        cJSON_AddStringToObject(o, "codecs", codecs);
        uint32_t dict_id;
        ERR_GOTO(rc, ts_dict_id(s, names[i], &dict_id));
        if (dict_id) {
            size_t cl = strlen(codecs);
            snprintf(codecs + cl, sizeof codecs - cl, "+dict");
            cJSON_AddNumberToObject(o, "dictionary", dict_id);
        }
        cJSON_AddNumberToObject(o, "lmdb_depth", st.depth);
        cJSON_AddNumberToObject(o, "lmdb_branch_pages", (double)st.branch_pages);
        cJSON_AddNumberToObject(o, "lmdb_leaf_pages", (double)st.leaf_pages);
        cJSON_AddNumberToObject(o, "lmdb_overflow_pages", (double)st.overflow_pages);
        cJSON_AddItemToArray(jt, o);
        if (!json)
            printf("  %-20s %10" PRIu64 "  %-22s %11s %11s %6.2fx  %-18s %u/%" PRIu64 "/%" PRIu64 "\n", names[i],
                   t.records, lay, dst_bytes(t.raw, rb, sizeof rb), dst_bytes(t.stored, sb, sizeof sb), ratio, codecs,
                   st.depth, st.leaf_pages, st.overflow_pages);
    }
    cJSON *je = cJSON_AddObjectToObject(j, "lmdb");
    cJSON_AddNumberToObject(je, "file_bytes", (double)env.file_bytes);
    cJSON_AddNumberToObject(je, "used_bytes", (double)env.used_bytes);
    cJSON_AddNumberToObject(je, "map_size", (double)env.map_size);
    cJSON_AddNumberToObject(je, "page_size", env.page_size);
    cJSON_AddNumberToObject(je, "last_txn", (double)env.last_txn);
    cJSON_AddNumberToObject(je, "readers", env.num_readers);
    if (json) {
        dst_print_json(j);
        j = NULL;
    } else {
        char fb[32], ub[32], mb[32];
        printf("lmdb: file %s, used %s, map %s, page %u B, last txn %" PRIu64 ", readers %u/%u\n",
               dst_bytes(env.file_bytes, fb, sizeof fb), dst_bytes(env.used_bytes, ub, sizeof ub),
               dst_bytes(env.map_size, mb, sizeof mb), env.page_size, env.last_txn, env.num_readers, env.max_readers);
    }
fail:
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    cJSON_Delete(j);
    ts_names_free(names, n);
    ts_names_free(mkeys, nm);
    ts_close(s);
    cli_args_free(a);
    return status;
}

// --- show --------------------------------------------------------------------------------------
#define SHOW_DEFAULT_VALUES 100

int dst_show(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"values", "N", 0, "print the first N values (--values alone: " "100" "; 0: all)"},
        {"json", NULL, 0, "print one line of JSON"},
        {0}};
    static const cli_spec spec = {"dstore show", "STORE TABLE KEY [--values [N]] [--json]",
                                  "Shows one record: header, shape, min/max/mean, NaN count, and values on request. "
                                  "KEY: 42, 3,120,0 or a string. TABLE 'meta' shows a meta text.",
                                  opts, 0, 3, 3};
    cli_args *a = NULL;
    ts_store *s = NULL;
    ts_tensor t = {0};
    char *txt = NULL;
    int rc = 0, status;
    // "--values" without a number means the default count
    char **av = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!av) return cli_fail(err_set(ERR_NOMEM, "out of memory"));
    for (int i = 0; i < argc; i++) {
        av[i] = argv[i];
        if (!strcmp(argv[i], "--values") && (i + 1 >= argc || strspn(argv[i + 1], "0123456789") != strlen(argv[i + 1]) ||
                                             !argv[i + 1][0]))
            av[i] = "--values=" "100";
    }
    av[argc] = NULL;
    if (dst_parse(&a, &spec, argc, av, &status)) goto done;
    const char *path = cli_pos(a, 0), *table = cli_pos(a, 1), *ktext = cli_pos(a, 2);
    int json = cli_has(a, "json");
    long nval = 0;
    ERR_GOTO(rc, cli_get_int(a, "values", 0, &nval));
    ERR_GOTO_IF(rc, nval < 0, ERR_USAGE, "--values must be >= 0");
    ERR_GOTO(rc, dst_open(&s, path, TS_RDONLY));
    if (!strcmp(table, "meta")) {
        ERR_GOTO(rc, ts_meta_get(s, ktext, &txt));
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "key", ktext);
            cJSON_AddStringToObject(j, "text", txt);
            dst_print_json(j);
        } else printf("%s%s", txt, *txt && txt[strlen(txt) - 1] == '\n' ? "" : "\n");
        goto fail;
    }
    ts_key key;
    ERR_GOTO(rc, ts_key_parse(&key, ktext));
    if (!ts_has(s, table, &key) && key.kind == TS_KEY_U64) { // maybe a string key made of digits
        ts_key alt;
        if (ts_key_str(&alt, ktext) == 0 && ts_has(s, table, &alt) == 1) key = alt;
    }
    ts_record_info info;
    ERR_GOTO(rc, ts_get_info(s, table, &key, &info));
    ERR_GOTO(rc, ts_get(s, table, &key, &t));
    size_t n = (size_t)ts_tensor_numel(&t);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    uint64_t nan = 0, finite = 0;
    for (size_t i = 0; i < n; i++) {
        double v = dst_elem(t.data, t.dtype, i);
        if (isnan(v)) { nan++; continue; }
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        if (isfinite(v)) { sum += v; finite++; }
    }
    double mean = finite ? sum / (double)finite : NAN;
    size_t shown = nval == 0 ? (cli_has(a, "values") ? n : 0) : (size_t)nval < n ? (size_t)nval : n;
    char kb[300], desc[96];
    ts_key_format(&key, kb, sizeof kb);
    ts_tensor_describe(&t, desc, sizeof desc);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "table", table);
        cJSON_AddStringToObject(j, "key", kb);
        cJSON_AddStringToObject(j, "dtype", ts_dtype_name(t.dtype));
        cJSON_AddItemToObject(j, "shape", dst_shape_json(t.rank, t.shape));
        cJSON_AddStringToObject(j, "codec", ts_codec_name(info.codec));
        cJSON_AddNumberToObject(j, "raw_bytes", (double)info.raw_len);
        cJSON_AddNumberToObject(j, "stored_bytes", (double)info.stored_len);
        cJSON_AddNumberToObject(j, "elements", (double)n);
        if (finite || nan < n) {
            cJSON_AddNumberToObject(j, "min", mn);
            cJSON_AddNumberToObject(j, "max", mx);
        }
        if (finite) cJSON_AddNumberToObject(j, "mean", mean);
        cJSON_AddNumberToObject(j, "nan", (double)nan);
        if (shown) {
            cJSON *v = cJSON_AddArrayToObject(j, "values");
            for (size_t i = 0; i < shown; i++) {
                double x = dst_elem(t.data, t.dtype, i);
                cJSON_AddItemToArray(v, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
            }
        }
        dst_print_json(j);
    } else {
        printf("table %s key %s\n", table, kb);
        printf("  %s, %zu elements, codec %s, raw %" PRIu64 " B, stored %" PRIu64 " B, checksum %016" PRIx64
               ", record v%d\n",
               desc, n, ts_codec_name(info.codec), info.raw_len, info.stored_len, info.checksum, info.version);
        printf("  min %.9g  max %.9g  mean %.9g  NaN %" PRIu64 "\n", mn, mx, mean, nan);
        if (shown) {
            size_t row = t.rank >= 1 ? (size_t)t.shape[t.rank - 1] : 1;
            if (row == 0 || row > 16) row = 16;
            printf("  values%s:\n", shown < n ? " (first)" : "");
            for (size_t i = 0; i < shown; i++) {
                double x = dst_elem(t.data, t.dtype, i);
                if (i % row == 0) printf("   ");
                if (t.dtype == TS_F32 || t.dtype == TS_F16 || t.dtype == TS_F64) printf(" %.7g", x);
                else printf(" %.0f", x);
                if (i % row == row - 1 || i + 1 == shown) putchar('\n');
            }
        }
    }
fail:
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    free(txt);
    ts_tensor_free(&t);
    ts_close(s);
    cli_args_free(a);
    free(av);
    return status;
}
