// iw_export: a checkpoint store's weights to a safetensors file with the reference state_dict
// names (iw.h): the records of the weight table and its buffer table, keys = names.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/store.h"
#include "tools/import_weights/iw.h"

typedef struct {
    wio_out_tensor *t;
    char **names;
    void **data;
    int n, cap;
} iw_list;

static void iw_list_free(iw_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->names[i]);
        free(l->data[i]);
    }
    free(l->t);
    free(l->names);
    free(l->data);
}

static int iw_is_nbt(const char *name) {
    size_t n = strlen(name), k = strlen("num_batches_tracked");
    return n >= k && strcmp(name + n - k, "num_batches_tracked") == 0;
}

// Every record of `table` (f32, string keys) into l; num_batches_tracked as I64.
static int iw_collect(ts_store *s, const char *table, iw_list *l) {
    ts_cursor *c = NULL;
    ts_key k;
    int rc = 0, more = 0;
    ERR_TRY(ts_cursor_open(s, table, &c));
    while ((more = ts_cursor_next(c, &k)) == 1) {
        ts_tensor t;
        memset(&t, 0, sizeof t);
        ERR_GOTO_IF(rc, k.kind != TS_KEY_STR || k.len == 0, ERR_INPUT,
                    "%s: table %s holds a record whose key is not a tensor name", ts_path(s), table);
        ERR_GOTO(rc, ts_cursor_get(c, &t, NULL, 0));
        if (l->n == l->cap) {
            int cap = l->cap ? 2 * l->cap : 256;
            wio_out_tensor *nt = realloc(l->t, sizeof *nt * (size_t)cap);
            if (nt) l->t = nt;
            char **nn = realloc(l->names, sizeof *nn * (size_t)cap);
            if (nn) l->names = nn;
            void **nd = realloc(l->data, sizeof *nd * (size_t)cap);
            if (nd) l->data = nd;
            if (!nt || !nn || !nd) {
                ts_tensor_free(&t);
                ERR_GOTO_IF(rc, 1, ERR_NOMEM, "out of memory");
            }
            l->cap = cap;
        }
        char *name = malloc(k.len + 1);
        if (!name) ts_tensor_free(&t);
        ERR_GOTO_IF(rc, !name, ERR_NOMEM, "out of memory");
        memcpy(name, k.b, k.len);
        name[k.len] = '\0';
        wio_out_tensor *o = &l->t[l->n];
        memset(o, 0, sizeof *o);
        l->names[l->n] = name;
        l->data[l->n] = t.data;
        l->n++;
        ERR_GOTO_IF(rc, t.dtype != TS_F32, ERR_INPUT, "%s: table %s, record %s is %s, not f32", ts_path(s), table,
                    name, ts_dtype_name(t.dtype));
        o->name = name;
        o->dtype = WIO_F32;
        o->rank = t.rank;
        for (int d = 0; d < t.rank; d++) o->shape[d] = t.shape[d];
        o->data = t.data;
        if (iw_is_nbt(name)) { // PyTorch's buffer is an int64 count
            int64_t n = ts_tensor_numel(&t);
            int64_t *x = malloc(sizeof *x * (size_t)(n ? n : 1));
            ERR_GOTO_IF(rc, !x, ERR_NOMEM, "out of memory");
            for (int64_t i = 0; i < n; i++) x[i] = (int64_t)((const float *)t.data)[i];
            free(l->data[l->n - 1]);
            l->data[l->n - 1] = x;
            o->data = x;
            o->dtype = WIO_I64;
        }
    }
    if (more < 0) rc = more;
fail:
    ts_cursor_close(c);
    return rc;
}

int iw_export(const char *path, const char *table, const char *out, int *n) {
    ts_store *s = NULL;
    char *model = NULL, *key = NULL, *meta = NULL;
    iw_list l;
    memset(&l, 0, sizeof l);
    int rc = 0;
    ERR_TRY(ts_open(&s, path, TS_RDONLY));
    rc = ts_meta_get(s, "model", &model);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_INPUT, "%s: not a checkpoint store (no meta model)", path);
    ERR_GOTO(rc, rc);
    int diffusion = strcmp(model, "diffusion") == 0;
    if (!table) table = diffusion ? "ema" : ts_table_exists(s, "best_param") == 1 ? "best_param" : "param";
    ERR_GOTO_IF(rc, strcmp(table, "param") && strcmp(table, "ema") && strcmp(table, "best_param"), ERR_USAGE,
                "--table must be param, ema or best_param, not '%s'", table);
    ERR_GOTO_IF(rc, ts_table_exists(s, table) != 1, ERR_INPUT, "%s: no table %s in this %s checkpoint", path, table,
                model);
    ERR_GOTO(rc, iw_collect(s, table, &l));
    const char *buffers = strcmp(table, "best_param") == 0 ? "best_buffer" : "buffer";
    if (!diffusion) {
        ERR_GOTO_IF(rc, ts_table_exists(s, buffers) != 1, ERR_INPUT, "%s: no table %s (the BatchNorm buffers)", path,
                    buffers);
        ERR_GOTO(rc, iw_collect(s, buffers, &l));
    }
    ERR_GOTO_IF(rc, l.n == 0, ERR_INPUT, "%s: table %s is empty", path, table);
    cJSON *m = cJSON_CreateObject();
    ERR_GOTO_IF(rc, !m, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(m, "format", "pt");
    cJSON_AddStringToObject(m, "diffood_model", model);
    cJSON_AddStringToObject(m, "diffood_table", table);
    if (ts_meta_get(s, "key", &key) == 0) cJSON_AddStringToObject(m, "diffood_key", key);
    meta = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    ERR_GOTO_IF(rc, !meta, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, wio_safetensors_write(out, l.t, l.n, meta));
    *n = l.n;
fail:
    iw_list_free(&l);
    free(model);
    free(key);
    free(meta);
    ts_close(s);
    return rc;
}
