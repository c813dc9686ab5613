// tr_log: the training log table and small vector records (tr.h).
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/train/tr.h"

void tr_log_init(tr_log *l, int width) {
    memset(l, 0, sizeof *l);
    l->width = width;
}

void tr_log_free(tr_log *l) {
    if (!l) return;
    free(l->rows);
    memset(l, 0, sizeof *l);
}

int tr_log_add(tr_log *l, const float *row) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        float *r = realloc(l->rows, sizeof(float) * (size_t)cap * l->width);
        ERR_IF(!r, ERR_NOMEM, "out of memory for the log");
        l->rows = r;
        l->cap = cap;
    }
    memcpy(l->rows + (size_t)l->n * l->width, row, sizeof(float) * l->width);
    l->n++;
    return 0;
}

int tr_put_vector(ts_store *s, const char *table, uint64_t key, const float *v, int n) {
    ts_key k;
    ts_tensor t;
    int64_t shape[1] = {n};
    ts_key_u64(&k, key);
    ERR_TRY(ts_tensor_init(&t, TS_F32, 1, shape, (void *)v));
    return ts_put(s, table, &k, &t, TS_CODEC_RAW);
}

int tr_log_flush(tr_log *l, ts_store *s, const char *table) {
    for (int i = 0; i < l->n; i++) {
        const float *row = l->rows + (size_t)i * l->width;
        ERR_TRY(tr_put_vector(s, table, (uint64_t)row[0], row, l->width));
    }
    l->n = 0;
    return 0;
}
