// wio_torch: torch.save's zip checkpoints (wio.h): ARCHIVE/data.pkl unpickled, its storages
// found at ARCHIVE/data/KEY, every tensor's offset, size and stride checked against its
// storage, and the object flattened into named items.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wio/wio_internal.h"

typedef struct {
    wio_file *f;
    const wio_zip *z;
    const uint8_t *buf;
    const char *what;
    const char *archive; // "ARCHIVE/" prefix of every entry
    int big_endian;
    long visits;
} tf;

// The checked layout of tensor v (PV_TENSOR) into *t.
static int torch_tensor(tf *c, const char *name, const pv *v, wio_tensor *t) {
    const pv *s = v->storage;
    char entry[WIO_NAME_MAX + 64];
    snprintf(entry, sizeof entry, "%sdata/%s", c->archive, s->s);
    const wio_zip_entry *e = wio_zip_find(c->z, entry);
    ERR_IF(!e, ERR_CORRUPT, "%s: tensor %s: its storage %s is not in the file", c->what, name, entry);
    ERR_IF(e->method != 0, ERR_UNSUPPORTED, "%s: storage %s is compressed (method %d); torch.save stores them",
           c->what, entry, e->method);
    size_t es = wio_dtype_size(s->dtype);
    uint64_t bytes = 0;
    ERR_IF(__builtin_mul_overflow((uint64_t)s->i, (uint64_t)es, &bytes) || bytes != e->size, ERR_CORRUPT,
           "%s: tensor %s: storage %s claims %lld elements of %s (%llu bytes), the file holds %zu bytes", c->what,
           name, entry, (long long)s->i, wio_dtype_name(s->dtype), (unsigned long long)bytes, e->size);
    memset(t, 0, sizeof *t);
    t->dtype = s->dtype;
    t->rank = v->rank;
    t->offset = v->i;
    t->storage = c->buf + e->offset;
    t->storage_bytes = e->size;
    t->big_endian = c->big_endian;
    ERR_IF(v->i < 0, ERR_INPUT, "%s: tensor %s: negative storage offset %lld", c->what, name, (long long)v->i);
    int64_t numel = 1, last = v->i; // index of the last element addressed
    for (int d = 0; d < v->rank; d++) {
        ERR_IF(v->size[d] < 0, ERR_INPUT, "%s: tensor %s: negative size %lld in dimension %d", c->what, name,
               (long long)v->size[d], d);
        ERR_IF(v->stride[d] < 0, ERR_INPUT, "%s: tensor %s: negative stride %lld in dimension %d", c->what, name,
               (long long)v->stride[d], d);
        t->shape[d] = v->size[d];
        t->stride[d] = v->stride[d];
        ERR_IF(__builtin_mul_overflow(numel, v->size[d], &numel), ERR_INPUT, "%s: tensor %s: size overflows", c->what,
               name);
    }
    if (numel > 0) {
        for (int d = 0; d < v->rank; d++) {
            int64_t span = 0;
            ERR_IF(__builtin_mul_overflow(v->size[d] - 1, v->stride[d], &span) ||
                       __builtin_add_overflow(last, span, &last),
                   ERR_INPUT, "%s: tensor %s: strides overflow", c->what, name);
        }
        ERR_IF(last >= s->i, ERR_INPUT,
               "%s: tensor %s (offset %lld, %lld elements) reaches element %lld of its storage of %lld", c->what, name,
               (long long)v->i, (long long)numel, (long long)last, (long long)s->i);
    }
    return 0;
}

static int torch_flatten(tf *c, const pv *v, char *name, size_t len, int depth) {
    ERR_IF(++c->visits > 4L * WIO_MAX_ITEMS, ERR_INPUT, "%s: the saved object has more than %d values", c->what,
           4 * WIO_MAX_ITEMS);
    wio_item it;
    memset(&it, 0, sizeof it);
    switch (v->kind) {
    case PV_NONE: it.kind = WIO_ITEM_NONE; break;
    case PV_BOOL: it.kind = WIO_ITEM_BOOL; it.i = v->i; break;
    case PV_INT: it.kind = WIO_ITEM_INT; it.i = v->i; break;
    case PV_FLOAT: it.kind = WIO_ITEM_FLOAT; it.f = v->f; break;
    case PV_STR: it.kind = WIO_ITEM_STR; it.s = v->s; break;
    case PV_TENSOR:
        it.kind = WIO_ITEM_TENSOR;
        ERR_TRY(torch_tensor(c, name, v, &it.t));
        break;
    case PV_TUPLE: case PV_LIST: case PV_DICT: {
        ERR_IF(depth >= WIO_MAX_DEPTH, ERR_INPUT, "%s: %s: nested deeper than %d", c->what, name, WIO_MAX_DEPTH);
        int dict = v->kind == PV_DICT;
        for (int64_t i = 0; i < v->n; i += 1 + dict) {
            char key[48];
            const char *k = key;
            if (!dict) {
                snprintf(key, sizeof key, "%lld", (long long)i);
            } else if (v->items[i]->kind == PV_STR) {
                k = v->items[i]->s;
                ERR_IF(strlen(k) != (size_t)v->items[i]->n, ERR_INPUT, "%s: %s: a dict key with a NUL byte", c->what,
                       name);
            } else if (v->items[i]->kind == PV_INT) {
                snprintf(key, sizeof key, "%lld", (long long)v->items[i]->i);
            } else {
                return err_set(ERR_INPUT, "%s: %s: a dict key that is neither a string nor an int", c->what, name);
            }
            size_t kl = strlen(k), nl = len + (len ? 1 : 0) + kl;
            ERR_IF(nl >= WIO_NAME_MAX, ERR_INPUT, "%s: a name longer than %d bytes under '%.60s'", c->what,
                   WIO_NAME_MAX, name);
            if (len) name[len] = '.';
            memcpy(name + len + (len ? 1 : 0), k, kl + 1);
            ERR_TRY(torch_flatten(c, v->items[i + dict], name, nl, depth + 1));
            name[len] = '\0';
        }
        return 0;
    }
    case PV_GLOBAL: case PV_STORAGE:
        return err_set(ERR_INPUT, "%s: %s: a bare %s in the saved object", c->what, len ? name : "the top",
                       v->kind == PV_GLOBAL ? "global" : "storage");
    }
    return wio_file_add(c->f, name, &it);
}

int wio_torch_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what) {
    wio_zip z;
    wio_arena a = {0};
    char archive[WIO_NAME_MAX], *name = NULL;
    ERR_TRY(wio_zip_open(&z, buf, n, what));
    int rc = 0;
    const wio_zip_entry *pkl = NULL;
    for (int i = 0; i < z.n; i++) {
        const char *s = z.e[i].name, *slash = strchr(s, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0 && (size_t)(slash - s) + 2 < sizeof archive) {
            ERR_GOTO_IF(rc, pkl, ERR_INPUT, "%s: more than one data.pkl in the zip", what);
            pkl = &z.e[i];
            memcpy(archive, s, (size_t)(slash - s) + 1);
            archive[slash - s + 1] = '\0';
        }
    }
    ERR_GOTO_IF(rc, !pkl, ERR_INPUT, "%s: a zip without ARCHIVE/data.pkl: not a torch.save checkpoint", what);
    ERR_GOTO_IF(rc, pkl->method != 0, ERR_UNSUPPORTED, "%s: data.pkl is compressed (method %d)", what, pkl->method);
    char bo_name[WIO_NAME_MAX + 16];
    snprintf(bo_name, sizeof bo_name, "%sbyteorder", archive);
    const wio_zip_entry *bo = wio_zip_find(&z, bo_name);
    int big = 0;
    if (bo) {
        const char *b = (const char *)buf + bo->offset;
        if (bo->size == 3 && memcmp(b, "big", 3) == 0) big = 1;
        else ERR_GOTO_IF(rc, !(bo->size == 6 && memcmp(b, "little", 6) == 0), ERR_INPUT,
                         "%s: byteorder entry is neither 'little' nor 'big'", what);
    }
    pv *root = NULL;
    ERR_GOTO(rc, wio_unpickle(&a, buf + pkl->offset, pkl->size, what, &root));
    name = calloc(WIO_NAME_MAX, 1);
    ERR_GOTO_IF(rc, !name, ERR_NOMEM, "out of memory");
    f->format = WIO_FMT_TORCH;
    f->top_is_list = root->kind == PV_LIST || root->kind == PV_TUPLE;
    tf c = {f, &z, buf, what, archive, big, 0};
    ERR_GOTO(rc, torch_flatten(&c, root, name, 0, 0));
fail:
    free(name);
    wio_arena_free(&a);
    wio_zip_close(&z);
    return rc;
}
