// wio: the format dispatch, the item list and tensor reading (wio.h).
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/store.h"
#include "common/wio/wio.h"

static const struct {
    const char *name;
    size_t size;
} wio_dtypes[WIO_DTYPE_COUNT] = {
    [WIO_F32] = {"F32", 4}, [WIO_F16] = {"F16", 2}, [WIO_BF16] = {"BF16", 2}, [WIO_F64] = {"F64", 8},
    [WIO_I64] = {"I64", 8}, [WIO_I32] = {"I32", 4}, [WIO_U8] = {"U8", 1},     [WIO_BOOL] = {"BOOL", 1},
};

const char *wio_dtype_name(wio_dtype d) { return (unsigned)d < WIO_DTYPE_COUNT ? wio_dtypes[d].name : "?"; }
size_t wio_dtype_size(wio_dtype d) { return (unsigned)d < WIO_DTYPE_COUNT ? wio_dtypes[d].size : 0; }

int wio_file_add(wio_file *f, const char *name, const wio_item *it) {
    ERR_IF(f->n >= WIO_MAX_ITEMS, ERR_INPUT, "more than %d items in one file", WIO_MAX_ITEMS);
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 64;
        wio_item *x = realloc(f->items, sizeof *x * (size_t)cap);
        ERR_IF(!x, ERR_NOMEM, "out of memory for %d items", cap);
        f->items = x;
        f->cap = cap;
    }
    wio_item *d = &f->items[f->n];
    *d = *it;
    d->name = strdup(name);
    d->s = it->kind == WIO_ITEM_STR ? strdup(it->s) : NULL;
    if (!d->name || (it->kind == WIO_ITEM_STR && !d->s)) {
        free(d->name);
        free(d->s);
        return err_set(ERR_NOMEM, "out of memory");
    }
    f->n++;
    return 0;
}

void wio_file_free(wio_file *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->items[i].name);
        free(f->items[i].s);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

const wio_item *wio_find(const wio_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->items[i].name, name) == 0) return &f->items[i];
    return NULL;
}

static int wio_cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Every name once: a file that names a tensor twice is refused (which one would be meant?).
static int wio_check_unique(const wio_file *f, const char *what) {
    if (f->n < 2) return 0;
    const char **names = malloc(sizeof *names * (size_t)f->n);
    ERR_IF(!names, ERR_NOMEM, "out of memory");
    for (int i = 0; i < f->n; i++) names[i] = f->items[i].name;
    qsort(names, (size_t)f->n, sizeof *names, wio_cmp_name);
    int rc = 0;
    for (int i = 1; i < f->n && rc == 0; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = err_set(ERR_INPUT, "%s: the name '%.200s' appears twice", what, names[i]);
    free(names);
    return rc;
}

int wio_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what) {
    memset(f, 0, sizeof *f);
    int rc = 0;
    if (n >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0) {
        rc = wio_torch_parse(f, buf, n, what);
    } else if (n >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) {
        rc = err_set(ERR_UNSUPPORTED,
                     "%s: a legacy (pre-1.6) torch.save file; re-save it in PyTorch with "
                     "torch.save(torch.load(PATH), NEW_PATH) (the zip format)",
                     what);
    } else if (n >= 9 && buf[8] == '{') {
        rc = wio_safetensors_parse(f, buf, n, what);
    } else {
        rc = err_set(ERR_INPUT, "%s: neither a torch.save zip checkpoint nor a safetensors file", what);
    }
    if (rc >= 0) rc = wio_check_unique(f, what);
    if (rc < 0) wio_file_free(f);
    return rc;
}

int64_t wio_tensor_numel(const wio_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->shape[d];
    return n;
}

static float wio_elem(const wio_tensor *t, int64_t idx) {
    size_t es = wio_dtype_size(t->dtype);
    uint8_t b[8];
    const uint8_t *p = t->storage + (size_t)idx * es;
    for (size_t i = 0; i < es; i++) b[i] = t->big_endian ? p[es - 1 - i] : p[i];
    switch (t->dtype) {
    case WIO_F32: { float x; memcpy(&x, b, 4); return x; }
    case WIO_F16: { uint16_t h; float x; memcpy(&h, b, 2); ts_f16_to_f32_n(&x, &h, 1); return x; }
    case WIO_BF16: { uint32_t u = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 24; float x; memcpy(&x, &u, 4); return x; }
    case WIO_F64: { double x; memcpy(&x, b, 8); return (float)x; }
    case WIO_I64: { int64_t x; memcpy(&x, b, 8); return (float)x; }
    case WIO_I32: { int32_t x; memcpy(&x, b, 4); return (float)x; }
    case WIO_U8: return b[0];
    case WIO_BOOL: return b[0] != 0;
    default: return 0;
    }
}

void wio_tensor_f32(const wio_tensor *t, float *dst) {
    int64_t n = wio_tensor_numel(t);
    if (n <= 0) return;
    int64_t idx[WIO_MAX_RANK] = {0};
    int64_t at = t->offset;
    for (int64_t j = 0; j < n; j++) {
        dst[j] = wio_elem(t, at);
        for (int d = t->rank - 1; d >= 0; d--) { // odometer over the dimensions
            if (++idx[d] < t->shape[d]) {
                at += t->stride[d];
                break;
            }
            at -= (idx[d] - 1) * t->stride[d];
            idx[d] = 0;
        }
    }
}

int wio_fuzz_one(const uint8_t *buf, size_t n) {
    wio_file f;
    if (wio_parse(&f, buf, n, "fuzz") < 0) {
        err_clear();
        return 0;
    }
    for (int i = 0; i < f.n; i++) {
        if (f.items[i].kind != WIO_ITEM_TENSOR) continue;
        int64_t k = wio_tensor_numel(&f.items[i].t);
        if (k > (1 << 24)) continue;
        float *x = malloc(sizeof(float) * (size_t)(k ? k : 1));
        if (x) wio_tensor_f32(&f.items[i].t, x);
        free(x);
    }
    wio_file_free(&f);
    return 0;
}
