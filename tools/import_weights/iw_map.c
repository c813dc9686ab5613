// iw_map: a file's state_dict matched to a network's table of reference names (iw.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/import_weights/iw.h"

static int under(const char *name, const char *prefix) { return strncmp(name, prefix, strlen(prefix)) == 0; }

static int64_t item_int(const wio_file *f, const char *name) {
    const wio_item *it = wio_find(f, name);
    if (it && it->kind == WIO_ITEM_INT) return it->i;
    if (it && it->kind == WIO_ITEM_TENSOR && it->t.rank == 0) {
        float x = 0;
        wio_tensor_f32(&it->t, &x);
        return (int64_t)x;
    }
    return -1;
}

int iw_source_find(const wio_file *f, const char *what, iw_source *src) {
    memset(src, 0, sizeof *src);
    src->prefix = f->top_is_list ? "0." : "";
    src->step = src->epoch = -1;
    if (f->top_is_list) {
        src->epoch = item_int(f, "3");
        src->step = item_int(f, "4");
    }
    int tensors = 0, ddp = 0;
    for (int i = 0; i < f->n; i++) {
        const wio_item *it = &f->items[i];
        if (it->kind != WIO_ITEM_TENSOR || !under(it->name, src->prefix)) continue;
        tensors++;
        ddp += under(it->name + strlen(src->prefix), "module.");
    }
    ERR_IF(!tensors, ERR_INPUT, "%s: no tensors %s", what,
           f->top_is_list ? "in item 0 of the saved list (train.ckpt holds the model there)" : "in the file");
    src->ddp = ddp == tensors;
    return 0;
}

static void shape_text(char *buf, size_t cap, int rank, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

// The tensor `name` (a reference name) of the file, checked against entry e: *t, or NULL when
// absent (*t unchanged).
static int iw_lookup(const wio_file *f, const iw_source *src, const char *what, const char *name, const nn_entry *e,
                     const wio_item **out) {
    char full[WIO_NAME_MAX + 128];
    snprintf(full, sizeof full, "%s%s%s", src->prefix, src->ddp ? "module." : "", name);
    const wio_item *it = wio_find(f, full);
    *out = it;
    if (!it) return 0;
    ERR_IF(it->kind != WIO_ITEM_TENSOR, ERR_INPUT, "%s: '%s' is not a tensor", what, full);
    int64_t want[NN_MAX_RANK];
    for (int d = 0; d < e->rank; d++) want[d] = e->shape[d];
    int same = it->t.rank == e->rank;
    for (int d = 0; same && d < e->rank; d++) same = it->t.shape[d] == want[d];
    if (!same) {
        char got[160], exp[160];
        shape_text(got, sizeof got, it->t.rank, it->t.shape);
        shape_text(exp, sizeof exp, e->rank, want);
        return err_set(ERR_INPUT, "%s: tensor '%s' has shape %s, the configuration's network expects %s (check --config)",
                       what, full, got, exp);
    }
    return 0;
}

static int is_nbt(const char *name) {
    size_t n = strlen(name), k = strlen("num_batches_tracked");
    return n >= k && strcmp(name + n - k, "num_batches_tracked") == 0;
}

int iw_map(const wio_file *f, const iw_source *src, const char *what, const nn_net *net, float *params,
           float *buffers) {
    char *used = calloc((size_t)f->n + 1, 1);
    ERR_IF(!used, ERR_NOMEM, "out of memory");
    int rc = 0, missing = 0;
    char first_missing[NN_NAME_MAX] = "";
    for (int i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        float *dst = e->kind == NN_KIND_PARAM ? params : buffers;
        if (!dst) continue;
        const wio_item *it = NULL;
        ERR_GOTO(rc, iw_lookup(f, src, what, e->name, e, &it));
        if (!it) {
            if (e->kind == NN_KIND_BUFFER && is_nbt(e->name)) { // dropped by some savers: 0
                memset(dst + e->offset, 0, sizeof(float) * e->numel);
                continue;
            }
            if (!missing++) snprintf(first_missing, sizeof first_missing, "%s", e->name);
            continue;
        }
        used[it - f->items] = 1;
        wio_tensor_f32(&it->t, dst + e->offset);
    }
    ERR_GOTO_IF(rc, missing, ERR_INPUT,
                "%s: %d tensor%s of the configuration's network missing from the file, the first '%s%s%s' (check "
                "--model and --config)",
                what, missing, missing > 1 ? "s" : "", src->prefix, src->ddp ? "module." : "", first_missing);
    for (int i = 0; i < f->n; i++) {
        const wio_item *it = &f->items[i];
        if (used[i] || !under(it->name, src->prefix)) continue;
        ERR_GOTO_IF(rc, 1, ERR_INPUT,
                    "%s: '%s' is not a tensor of the configuration's network (check --model and --config)", what,
                    it->name);
    }
fail:
    free(used);
    return rc;
}

int iw_map_adam(const wio_file *f, const char *what, const nn_net *net, float *m, float *v) {
    int j = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const nn_entry *e = &net->entries[i];
        if (e->kind != NN_KIND_PARAM) continue;
        char name[64];
        snprintf(name, sizeof name, "1.param_groups.0.params.%d", j);
        int64_t id = item_int(f, name);
        ERR_IF(id < 0, ERR_INPUT, "%s: no optimizer entry '%s' for parameter %d (%s)", what, name, j, e->name);
        iw_source s = {"", 0, -1, -1};
        for (int k = 0; k < 2; k++) {
            char full[NN_NAME_MAX + 64];
            snprintf(full, sizeof full, "1.state.%lld.%s", (long long)id, k ? "exp_avg_sq" : "exp_avg");
            const wio_item *it = NULL;
            ERR_TRY(iw_lookup(f, &s, what, full, e, &it));
            ERR_IF(!it, ERR_INPUT, "%s: no Adam moment '%s' (parameter %s)", what, full, e->name);
            wio_tensor_f32(&it->t, (k ? v : m) + e->offset);
        }
        j++;
    }
    char name[64];
    snprintf(name, sizeof name, "1.param_groups.0.params.%d", j);
    ERR_IF(wio_find(f, name), ERR_INPUT, "%s: the optimizer has more parameters than the network (%d)", what, j);
    return 0;
}
