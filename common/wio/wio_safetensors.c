// wio_safetensors: the safetensors format (wio.h): an 8-byte little-endian header length N, N
// bytes of JSON {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...,
// "__metadata__": {...}}, then the data; offsets are relative to the data's start.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/wio/wio.h"

#define ST_HEADER_MAX (100u << 20) // the reference implementation's limit

// A JSON number that is an integer in 0..2^53.
static int st_uint(const cJSON *j, int64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(int64_t)d) return 0;
    *v = (int64_t)d;
    return 1;
}

static int st_entry(wio_file *f, const cJSON *e, const uint8_t *data, uint64_t data_n, const char *what) {
    const char *name = e->string;
    ERR_IF(!cJSON_IsObject(e), ERR_INPUT, "%s: header entry '%.200s' is not an object", what, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"),
                *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    ERR_IF(!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2, ERR_INPUT,
           "%s: tensor '%.200s' lacks dtype, shape or data_offsets [begin, end]", what, name);
    wio_item it;
    memset(&it, 0, sizeof it);
    it.kind = WIO_ITEM_TENSOR;
    wio_tensor *t = &it.t;
    int d = 0;
    for (; d < WIO_DTYPE_COUNT; d++)
        if (strcmp(dt->valuestring, wio_dtype_name((wio_dtype)d)) == 0) break;
    ERR_IF(d == WIO_DTYPE_COUNT, ERR_UNSUPPORTED, "%s: tensor '%.200s' has dtype %.40s (read: F32 F16 BF16 F64 I64 I32 U8 BOOL)",
           what, name, dt->valuestring);
    t->dtype = (wio_dtype)d;
    int rank = cJSON_GetArraySize(sh);
    ERR_IF(rank > WIO_MAX_RANK, ERR_UNSUPPORTED, "%s: tensor '%.200s' has %d dimensions (at most %d)", what, name,
           rank, WIO_MAX_RANK);
    t->rank = rank;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        ERR_IF(!st_uint(cJSON_GetArrayItem(sh, i), &t->shape[i]), ERR_INPUT,
               "%s: tensor '%.200s': shape entry %d is not a non-negative integer", what, name, i);
        ERR_IF(__builtin_mul_overflow(numel, t->shape[i], &numel), ERR_INPUT, "%s: tensor '%.200s': shape overflows",
               what, name);
    }
    int64_t s = 1; // row-major strides
    for (int i = rank - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i] ? t->shape[i] : 1;
    }
    int64_t b = 0, e2 = 0;
    ERR_IF(!st_uint(cJSON_GetArrayItem(off, 0), &b) || !st_uint(cJSON_GetArrayItem(off, 1), &e2) || b > e2,
           ERR_INPUT, "%s: tensor '%.200s': data_offsets are not integers 0 <= begin <= end", what, name);
    ERR_IF((uint64_t)e2 > data_n, ERR_CORRUPT,
           "%s: tensor '%.200s': data_offsets [%lld, %lld] run past the %llu data bytes of the file", what, name,
           (long long)b, (long long)e2, (unsigned long long)data_n);
    uint64_t bytes = 0;
    ERR_IF(__builtin_mul_overflow((uint64_t)numel, (uint64_t)wio_dtype_size(t->dtype), &bytes) ||
               bytes != (uint64_t)(e2 - b),
           ERR_INPUT, "%s: tensor '%.200s': %lld elements of %s need %llu bytes, data_offsets give %lld", what, name,
           (long long)numel, dt->valuestring, (unsigned long long)bytes, (long long)(e2 - b));
    t->storage = data + b;
    t->storage_bytes = (size_t)(e2 - b);
    return wio_file_add(f, name, &it);
}

int wio_safetensors_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what) {
    ERR_IF(n < 8, ERR_CORRUPT, "%s: %zu bytes: too short for a safetensors file", what, n);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | buf[i];
    ERR_IF(hn > ST_HEADER_MAX || hn > n - 8, ERR_CORRUPT,
           "%s: safetensors header of %llu bytes does not fit the file (%zu bytes) or the limit (%u)", what,
           (unsigned long long)hn, n, ST_HEADER_MAX);
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hn);
    ERR_IF(!h, ERR_INPUT, "%s: the safetensors header is not JSON", what);
    int rc = 0;
    ERR_GOTO_IF(rc, !cJSON_IsObject(h), ERR_INPUT, "%s: the safetensors header is not a JSON object", what);
    f->format = WIO_FMT_SAFETENSORS;
    const cJSON *e = NULL;
    cJSON_ArrayForEach(e, h) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        ERR_GOTO(rc, st_entry(f, e, buf + 8 + hn, n - 8 - hn, what));
    }
fail:
    cJSON_Delete(h);
    return rc;
}

// --- writing ---------------------------------------------------------------------------------------

static int st_header(const wio_out_tensor *t, int n, const char *metadata, char **text) {
    cJSON *h = cJSON_CreateObject();
    ERR_IF(!h, ERR_NOMEM, "out of memory");
    int rc = 0;
    if (metadata) {
        cJSON *m = cJSON_Parse(metadata);
        ERR_GOTO_IF(rc, !cJSON_IsObject(m), ERR_USAGE, "safetensors metadata is not a JSON object");
        cJSON_AddItemToObject(h, "__metadata__", m);
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        ERR_GOTO_IF(rc, cJSON_GetObjectItemCaseSensitive(h, t[i].name), ERR_USAGE, "tensor '%s' given twice",
                    t[i].name);
        cJSON *e = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *off = cJSON_CreateArray();
        uint64_t bytes = wio_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].rank; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            bytes *= (uint64_t)t[i].shape[d];
        }
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(at + bytes)));
        at += bytes;
        cJSON_AddStringToObject(e, "dtype", wio_dtype_name(t[i].dtype));
        cJSON_AddItemToObject(e, "shape", sh);
        cJSON_AddItemToObject(e, "data_offsets", off);
        cJSON_AddItemToObject(h, t[i].name, e);
    }
    *text = cJSON_PrintUnformatted(h);
    ERR_GOTO_IF(rc, !*text, ERR_NOMEM, "out of memory");
fail:
    cJSON_Delete(h);
    return rc;
}

int wio_safetensors_write(const char *path, const wio_out_tensor *t, int n, const char *metadata) {
    char *text = NULL, tmp[4096];
    ERR_TRY(st_header(t, n, metadata, &text));
    size_t tl = strlen(text), hn = (tl + 7) & ~(size_t)7; // data 8-byte aligned: pad with spaces
    int rc = 0;
    ERR_GOTO_IF(rc, snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp, ERR_USAGE,
                "path too long: %s", path);
    FILE *fp = fopen(tmp, "wb");
    ERR_GOTO_IF(rc, !fp, ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    int ok = fwrite(len, 1, 8, fp) == 8 && fwrite(text, 1, tl, fp) == tl;
    for (size_t i = tl; ok && i < hn; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < n; i++) {
        size_t bytes = wio_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].rank; d++) bytes *= (size_t)t[i].shape[d];
        ok = fwrite(t[i].data, 1, bytes, fp) == bytes;
    }
    if (fclose(fp) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        rc = err_set(ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    }
fail:
    free(text);
    return rc;
}
