// dstore check commands: `verify` (decode every record, check every checksum) and `diff`
// (tables, keys and values that differ between two stores).
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/dstore/dstore.h"

// --- verify ------------------------------------------------------------------------------------
int dst_verify(int argc, char **argv) {
    static const cli_opt opts[] = {{"json", NULL, 0, "print one line of JSON"}, {0}};
    static const cli_spec spec = {"dstore verify", "STORE [--json]",
                                  "Decodes every record of every table and checks headers, lengths and checksums. "
                                  "Prints the table and key of each bad record; exit 0 when all are good, 1 when not, "
                                  "2 when the store cannot be read (not a store, damaged meta, damaged LMDB pages).",
                                  opts, 0, 1, 1};
    cli_args *a = NULL;
    ts_store *s = NULL;
    char **names = NULL;
    int n = 0, rc = 0, status;
    cJSON *j = NULL;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    const char *path = cli_pos(a, 0);
    int json = cli_has(a, "json");
    ERR_GOTO(rc, dst_open(&s, path, TS_RDONLY));
    ERR_GOTO(rc, ts_tables(s, &names, &n));
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "store", path);
    cJSON *jbad = cJSON_CreateArray();
    uint64_t good = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        ts_cursor *c;
        ERR_GOTO(rc, ts_cursor_open(s, names[i], &c));
        ts_key k;
        int r;
        while ((r = ts_cursor_next(c, &k)) == 1) {
            ts_tensor t;
            r = ts_cursor_get(c, &t, NULL, 0);
            if (r == 0) {
                good++;
                ts_tensor_free(&t);
                continue;
            }
            bad++;
            char kb[300];
            ts_key_format(&k, kb, sizeof kb);
            if (!json) printf("BAD table %s key %s: %s\n", names[i], kb, err_msg());
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "table", names[i]);
            cJSON_AddStringToObject(o, "key", kb);
            cJSON_AddStringToObject(o, "error", err_msg());
            cJSON_AddItemToArray(jbad, o);
        }
        ts_cursor_close(c);
        if (r < 0) { // the table's B-tree itself is damaged
            bad++;
            if (!json) printf("BAD table %s: %s\n", names[i], err_msg());
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "table", names[i]);
            cJSON_AddStringToObject(o, "error", err_msg());
            cJSON_AddItemToArray(jbad, o);
        }
    }
    cJSON_AddNumberToObject(j, "tables", n);
    cJSON_AddNumberToObject(j, "good", (double)good);
    cJSON_AddNumberToObject(j, "bad", (double)bad);
    cJSON_AddItemToObject(j, "bad_records", jbad);
    if (json) {
        dst_print_json(j);
        j = NULL;
    } else
        printf("%s: %d table%s, %" PRIu64 " records good, %" PRIu64 " bad\n", bad ? "DAMAGED" : "OK", n,
               n == 1 ? "" : "s", good, bad);
    status = bad ? 1 : 0;
    goto done;
fail:
    status = cli_fail(rc);
done:
    cJSON_Delete(j);
    ts_names_free(names, n);
    ts_close(s);
    cli_args_free(a);
    return status;
}

// --- diff --------------------------------------------------------------------------------------
#define DIFF_SHOW 10 // lines per table

typedef struct {
    int json;
    double tol;
    uint64_t differences;
    cJSON *jt; // tables array
} diff_ctx;

// Compares two decoded records: 0 same; 1 different (why in buf).
static int compare(const ts_tensor *x, const ts_tensor *y, double tol, char *why, size_t cap) {
    char d1[96], d2[96];
    if (x->dtype != y->dtype || x->rank != y->rank || memcmp(x->shape, y->shape, sizeof x->shape)) {
        snprintf(why, cap, "%s vs %s", ts_tensor_describe(x, d1, sizeof d1), ts_tensor_describe(y, d2, sizeof d2));
        return 1;
    }
    if (tol <= 0) {
        if (!memcmp(x->data, y->data, x->nbytes)) return 0;
    }
    size_t n = (size_t)ts_tensor_numel(x), ndiff = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double a = dst_elem(x->data, x->dtype, i), b = dst_elem(y->data, y->dtype, i);
        if (isnan(a) && isnan(b)) continue;
        double d = fabs(a - b);
        if (a == b) continue;
        if (isnan(d) || d > tol) {
            ndiff++;
            if (isnan(d) || d > worst || ndiff == 1) worst = d, worst_i = i;
        }
    }
    if (!ndiff) return 0;
    snprintf(why, cap, "%zu of %zu values differ (max |diff| %.6g at element %zu)", ndiff, n, worst, worst_i);
    return 1;
}

static void report(diff_ctx *d, cJSON *jdiffs, uint64_t *shown, const char *table, const char *key, const char *what) {
    d->differences++;
    if (*shown < DIFF_SHOW) {
        if (!d->json) printf("  %s key %s: %s\n", table, key, what);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", key);
        cJSON_AddStringToObject(o, "what", what);
        cJSON_AddItemToArray(jdiffs, o);
    }
    (*shown)++;
}

// Walks two tables in key order.
static int diff_table(diff_ctx *d, ts_store *a, ts_store *b, const char *table) {
    ts_cursor *ca = NULL, *cb = NULL;
    ts_tensor ta = {0}, tb = {0};
    int rc = 0, ra, rb;
    uint64_t only_a = 0, only_b = 0, differ = 0, same = 0, shown = 0;
    cJSON *o = cJSON_CreateObject(), *jd = cJSON_CreateArray();
    ERR_GOTO(rc, ts_cursor_open(a, table, &ca));
    ERR_GOTO(rc, ts_cursor_open(b, table, &cb));
    ts_key ka, kb;
    char kt[300], why[200];
    ERR_GOTO(rc, ra = ts_cursor_next(ca, &ka));
    ERR_GOTO(rc, rb = ts_cursor_next(cb, &kb));
    while (ra == 1 || rb == 1) {
        int cmp = ra != 1 ? 1 : rb != 1 ? -1 : ts_key_cmp(&ka, &kb);
        if (cmp < 0) {
            only_a++;
            report(d, jd, &shown, table, ts_key_format(&ka, kt, sizeof kt), "only in A");
            ERR_GOTO(rc, ra = ts_cursor_next(ca, &ka));
        } else if (cmp > 0) {
            only_b++;
            report(d, jd, &shown, table, ts_key_format(&kb, kt, sizeof kt), "only in B");
            ERR_GOTO(rc, rb = ts_cursor_next(cb, &kb));
        } else {
            ERR_GOTO(rc, ts_cursor_get(ca, &ta, NULL, 0));
            ERR_GOTO(rc, ts_cursor_get(cb, &tb, NULL, 0));
            if (compare(&ta, &tb, d->tol, why, sizeof why)) {
                differ++;
                report(d, jd, &shown, table, ts_key_format(&ka, kt, sizeof kt), why);
            } else same++;
            ts_tensor_free(&ta);
            ts_tensor_free(&tb);
            ERR_GOTO(rc, ra = ts_cursor_next(ca, &ka));
            ERR_GOTO(rc, rb = ts_cursor_next(cb, &kb));
        }
    }
    if (!d->json && shown > DIFF_SHOW) printf("  %s: ... %" PRIu64 " more\n", table, shown - DIFF_SHOW);
    if (!d->json)
        printf("table %s: %" PRIu64 " same, %" PRIu64 " differ, %" PRIu64 " only in A, %" PRIu64 " only in B\n", table,
               same, differ, only_a, only_b);
    cJSON_AddStringToObject(o, "name", table);
    cJSON_AddNumberToObject(o, "same", (double)same);
    cJSON_AddNumberToObject(o, "differ", (double)differ);
    cJSON_AddNumberToObject(o, "only_a", (double)only_a);
    cJSON_AddNumberToObject(o, "only_b", (double)only_b);
    cJSON_AddItemToObject(o, "differences", jd);
    jd = NULL;
    cJSON_AddItemToArray(d->jt, o);
    o = NULL;
fail:
    cJSON_Delete(jd);
    cJSON_Delete(o);
    ts_tensor_free(&ta);
    ts_tensor_free(&tb);
    ts_cursor_close(ca);
    ts_cursor_close(cb);
    return rc;
}

static int in_list(char **names, int n, const char *x) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], x)) return 1;
    return 0;
}

int dst_diff(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"tol", "X", 0, "values differ when |a - b| > X (default 0: bit-exact)"},
        {"no-meta", NULL, 0, "ignore the meta table"},
        {"skip", "TABLE", 1, "ignore this table (e.g. a checkpoint's log, whose images/s is wall-clock)"},
        {"json", NULL, 0, "print one line of JSON"},
        {0}};
    static const cli_spec spec = {"dstore diff", "A B [--tol X] [--no-meta] [--skip TABLE ...] [--json]",
                                  "Compares two stores: tables, keys, meta and record values. Exit 0 when the same, 1 "
                                  "when they differ.",
                                  opts, 0, 2, 2};
    cli_args *args = NULL;
    ts_store *a = NULL, *b = NULL;
    char **na = NULL, **nb = NULL, **ma = NULL, **mb = NULL;
    int cna = 0, cnb = 0, cma = 0, cmb = 0, rc = 0, status;
    cJSON *j = NULL;
    if (dst_parse(&args, &spec, argc, argv, &status)) goto done;
    diff_ctx d = {cli_has(args, "json"), 0, 0, NULL};
    ERR_GOTO(rc, cli_get_double(args, "tol", 0, &d.tol));
    ERR_GOTO_IF(rc, !(d.tol >= 0), ERR_USAGE, "--tol must be >= 0");
    const char *pa = cli_pos(args, 0), *pb = cli_pos(args, 1);
    ERR_GOTO(rc, dst_open(&a, pa, TS_RDONLY));
    ERR_GOTO(rc, dst_open(&b, pb, TS_RDONLY));
    j = cJSON_CreateObject();
    d.jt = cJSON_AddArrayToObject(j, "tables");
    cJSON *jm = cJSON_AddArrayToObject(j, "meta"), *jo = cJSON_AddArrayToObject(j, "tables_only");
    if (!cli_has(args, "no-meta")) {
        ERR_GOTO(rc, ts_meta_list(a, &ma, &cma));
        ERR_GOTO(rc, ts_meta_list(b, &mb, &cmb));
        for (int i = 0; i < cma + cmb; i++) {
            const char *key = i < cma ? ma[i] : mb[i - cma];
            if (i >= cma && in_list(ma, cma, key)) continue;
            char *x = NULL, *y = NULL;
            int rx = ts_meta_get(a, key, &x), ry = ts_meta_get(b, key, &y);
            if ((rx < 0 && rx != ERR_NOTFOUND) || (ry < 0 && ry != ERR_NOTFOUND)) {
                free(x), free(y);
                rc = rx < 0 && rx != ERR_NOTFOUND ? rx : ry;
                goto fail;
            }
            const char *what = !x ? "only in B" : !y ? "only in A" : strcmp(x, y) ? "differs" : NULL;
            if (what) {
                d.differences++;
                if (!d.json) printf("meta %s: %s\n", key, what);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "key", key);
                cJSON_AddStringToObject(o, "what", what);
                cJSON_AddItemToArray(jm, o);
            }
            free(x), free(y);
        }
    }
    ERR_GOTO(rc, ts_tables(a, &na, &cna));
    ERR_GOTO(rc, ts_tables(b, &nb, &cnb));
    for (int i = 0; i < cna + cnb; i++) { // skipped tables count as absent on both sides
        char **nm = i < cna ? na : nb;
        int k = i < cna ? i : i - cna;
        for (size_t q = 0; q < cli_count(args, "skip"); q++)
            if (!strcmp(nm[k], cli_value(args, "skip", q))) nm[k][0] = '\0';
    }
    for (int i = 0; i < cna; i++) {
        if (!na[i][0]) continue;
        if (in_list(nb, cnb, na[i])) ERR_GOTO(rc, diff_table(&d, a, b, na[i]));
        else {
            d.differences++;
            if (!d.json) printf("table %s: only in A\n", na[i]);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", na[i]);
            cJSON_AddStringToObject(o, "in", "A");
            cJSON_AddItemToArray(jo, o);
        }
    }
    for (int i = 0; i < cnb; i++)
        if (nb[i][0] && !in_list(na, cna, nb[i])) {
            d.differences++;
            if (!d.json) printf("table %s: only in B\n", nb[i]);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", nb[i]);
            cJSON_AddStringToObject(o, "in", "B");
            cJSON_AddItemToArray(jo, o);
        }
    cJSON_AddBoolToObject(j, "same", d.differences == 0);
    cJSON_AddNumberToObject(j, "differences", (double)d.differences);
    if (d.json) {
        dst_print_json(j);
        j = NULL;
    } else printf("%s (%" PRIu64 " difference%s)\n", d.differences ? "DIFFERENT" : "SAME", d.differences,
                  d.differences == 1 ? "" : "s");
    status = d.differences ? 1 : 0;
    goto done;
fail:
    status = cli_fail(rc);
done:
    cJSON_Delete(j);
    ts_names_free(na, cna);
    ts_names_free(nb, cnb);
    ts_names_free(ma, cma);
    ts_names_free(mb, cmb);
    ts_close(a);
    ts_close(b);
    cli_args_free(args);
    return status;
}
