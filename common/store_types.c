// store_types: the tensor store's value types: dtypes, float16 conversion, the tensor
// descriptor, codec names and keys (see store.h).
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/store.h"

// --- dtypes ----------------------------------------------------------------------------------
#define TS_COUNT_ONE(...) +1
static_assert((0 TS_DTYPE_LIST(TS_COUNT_ONE)) == TS_DTYPE_COUNT, "TS_DTYPE_COUNT out of sync");
static_assert((0 TS_CODEC_LIST(TS_COUNT_ONE)) == TS_CODEC_COUNT, "TS_CODEC_COUNT out of sync");
#undef TS_COUNT_ONE

size_t ts_dtype_size(ts_dtype dt) {
    switch (dt) {
#define TS_CASE(name, code, sname, descr, size) case name: return size;
        TS_DTYPE_LIST(TS_CASE)
#undef TS_CASE
    default: return 0;
    }
}

const char *ts_dtype_name(ts_dtype dt) {
    switch (dt) {
#define TS_CASE(name, code, sname, descr, size) case name: return sname;
        TS_DTYPE_LIST(TS_CASE)
#undef TS_CASE
    default: return "?";
    }
}

const char *ts_dtype_npy_descr(ts_dtype dt) {
    switch (dt) {
#define TS_CASE(name, code, sname, descr, size) case name: return descr;
        TS_DTYPE_LIST(TS_CASE)
#undef TS_CASE
    default: return NULL;
    }
}

int ts_dtype_from_name(const char *name, ts_dtype *out) {
    static const struct { const char *n; ts_dtype d; } alias[] = {
        {"uint8", TS_U8}, {"int32", TS_I32}, {"float32", TS_F32},
        {"float16", TS_F16}, {"float64", TS_F64}, {"int64", TS_I64},
    };
    for (int d = 0; d < TS_DTYPE_COUNT; d++)
        if (!strcmp(name, ts_dtype_name((ts_dtype)d))) return *out = (ts_dtype)d, 0;
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(name, alias[i].n)) return *out = alias[i].d, 0;
    return err_set(ERR_USAGE, "unknown dtype '%s' (u8, i32, i64, f16, f32, f64)", name);
}

int ts_dtype_from_npy(const char *descr, ts_dtype *out) {
    char order = descr[0];
    const char *body = descr;
    if (order == '<' || order == '|' || order == '=') body = descr + 1;
    else if (order == '>') {
        // one-byte types have no byte order
        if (strcmp(descr + 1, "u1")) return err_set(ERR_UNSUPPORTED, "big-endian dtype '%s' is not supported", descr);
        body = descr + 1;
    }
    for (int d = 0; d < TS_DTYPE_COUNT; d++)
        if (!strcmp(body, ts_dtype_npy_descr((ts_dtype)d) + 1)) return *out = (ts_dtype)d, 0;
    return err_set(ERR_UNSUPPORTED, "dtype '%s' is not supported (u1, i4, i8, f2, f4, f8)", descr);
}

// --- float16 -----------------------------------------------------------------------------------
uint16_t ts_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u | (m >> 13) : 0)); // inf/NaN
    int exp = (int)e - 127 + 15;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u); // overflow -> inf
    if (exp <= 0) {                                    // subnormal or zero
        if (exp < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - exp; // 14..24
        uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1);
        uint32_t r = m >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)exp << 10) | (m >> 13);
    uint32_t rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1))) r++; // may carry into exponent: correct
    return (uint16_t)(sign | r);
}

float ts_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) x = sign;
        else { // subnormal: normalise
            int sh = 0;
            while (!(m & 0x400u)) { m <<= 1; sh++; }
            m &= 0x3ffu;
            x = sign | ((uint32_t)(127 - 15 + 1 - sh) << 23) | (m << 13);
        }
    } else if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else x = sign | ((e - 15 + 127) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void ts_f32_to_f16_n(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ts_f32_to_f16(src[i]);
}

void ts_f16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ts_f16_to_f32(src[i]);
}

// --- tensors -----------------------------------------------------------------------------------
int64_t ts_tensor_numel(const ts_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

int ts_tensor_init(ts_tensor *t, ts_dtype dtype, int rank, const int64_t *shape, void *data) {
    memset(t, 0, sizeof *t);
    size_t es = ts_dtype_size(dtype);
    ERR_IF(!es, ERR_USAGE, "tensor: invalid dtype %d", (int)dtype);
    ERR_IF(rank < 0 || rank > TS_MAX_RANK, ERR_USAGE, "tensor: rank %d outside 0..%d", rank, TS_MAX_RANK);
    uint64_t n = es;
    for (int i = 0; i < rank; i++) {
        ERR_IF(shape[i] < 0, ERR_USAGE, "tensor: negative dimension %" PRId64, shape[i]);
        ERR_IF(shape[i] > 0 && n > (UINT64_C(1) << 62) / (uint64_t)shape[i], ERR_USAGE,
               "tensor: size overflow");
        n *= (uint64_t)shape[i];
        t->shape[i] = shape[i];
    }
    t->dtype = dtype;
    t->rank = rank;
    t->data = data;
    t->nbytes = (size_t)n;
    return 0;
}

int ts_tensor_alloc(ts_tensor *t, ts_dtype dtype, int rank, const int64_t *shape) {
    ERR_TRY(ts_tensor_init(t, dtype, rank, shape, NULL));
    t->data = calloc(1, t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        size_t nb = t->nbytes;
        memset(t, 0, sizeof *t);
        return err_set(ERR_NOMEM, "tensor: out of memory for %zu bytes", nb);
    }
    return 0;
}

void ts_tensor_free(ts_tensor *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

const char *ts_tensor_describe(const ts_tensor *t, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "%s (", ts_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, ")");
    return buf;
}

// --- codecs ------------------------------------------------------------------------------------
const char *ts_codec_name(ts_codec c) {
    switch (c) {
#define TS_CASE(name, code, cname) case name: return cname;
        TS_CODEC_LIST(TS_CASE)
#undef TS_CASE
    default: return "?";
    }
}

int ts_codec_from_name(const char *name, ts_codec *out) {
    for (int c = 0; c < TS_CODEC_COUNT; c++)
        if (!strcmp(name, ts_codec_name((ts_codec)c))) return *out = (ts_codec)c, 0;
    return err_set(ERR_USAGE, "unknown codec '%s' (raw, zstd, shuffle-zstd)", name);
}

// --- keys --------------------------------------------------------------------------------------
void ts_key_u64(ts_key *k, uint64_t v) {
    for (int i = 0; i < 8; i++) k->b[i] = (uint8_t)(v >> (56 - 8 * i));
    k->len = 8;
    k->kind = TS_KEY_U64;
}

void ts_key_tuple(ts_key *k, int n, const uint32_t *values) {
    if (n < 0) n = 0;
    if (n > TS_KEY_MAX / 4) n = TS_KEY_MAX / 4;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < 4; i++) k->b[4 * j + i] = (uint8_t)(values[j] >> (24 - 8 * i));
    k->len = (size_t)n * 4;
    k->kind = TS_KEY_TUPLE;
}

int ts_key_str(ts_key *k, const char *s) {
    size_t n = strlen(s);
    ERR_IF(n == 0, ERR_USAGE, "empty string key");
    ERR_IF(n > TS_KEY_MAX, ERR_USAGE, "key '%.40s...' longer than %d bytes", s, TS_KEY_MAX);
    memcpy(k->b, s, n);
    k->len = n;
    k->kind = TS_KEY_STR;
    return 0;
}

int ts_key_get_u64(const ts_key *k, uint64_t *v) {
    ERR_IF(k->len != 8, ERR_USAGE, "key of %zu bytes is not a u64 key", k->len);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | k->b[i];
    *v = x;
    return 0;
}

int ts_key_get_tuple(const ts_key *k, uint32_t *values, int max) {
    ERR_IF(k->len == 0 || k->len % 4, ERR_USAGE, "key of %zu bytes is not a tuple key", k->len);
    int n = (int)(k->len / 4);
    for (int j = 0; j < n && j < max; j++)
        values[j] = (uint32_t)k->b[4 * j] << 24 | (uint32_t)k->b[4 * j + 1] << 16 |
                    (uint32_t)k->b[4 * j + 2] << 8 | k->b[4 * j + 3];
    return n;
}

// Parses a decimal unsigned number of up to `max`; 0 or -1.
static int parse_unsigned(const char *s, const char *end, uint64_t max, uint64_t *v) {
    if (s == end) return -1;
    uint64_t x = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10) return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int ts_key_parse(ts_key *k, const char *text) {
    ERR_IF(!text || !*text, ERR_USAGE, "empty key");
    if (!strncmp(text, "s:", 2)) return ts_key_str(k, text + 2);
    size_t n = strlen(text);
    int digits_commas = 1, commas = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ',') commas++;
        else if (text[i] < '0' || text[i] > '9') digits_commas = 0;
    }
    if (!digits_commas) return ts_key_str(k, text);
    if (!commas) {
        uint64_t v;
        ERR_IF(parse_unsigned(text, text + n, UINT64_MAX, &v), ERR_USAGE, "key '%s': bad number", text);
        ts_key_u64(k, v);
        return 0;
    }
    uint32_t vals[TS_KEY_MAX / 4];
    int m = 0;
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e) e = text + n;
        uint64_t v;
        ERR_IF(m >= TS_KEY_MAX / 4 || parse_unsigned(p, e, UINT32_MAX, &v), ERR_USAGE,
               "key '%s': bad tuple (comma-separated u32 values)", text);
        vals[m++] = (uint32_t)v;
        if (!*e) break;
        p = e + 1;
    }
    ts_key_tuple(k, m, vals);
    return 0;
}

const char *ts_key_format(const ts_key *k, char *buf, size_t cap) {
    if (!cap) return buf;
    buf[0] = 0;
    switch (k->kind) {
    case TS_KEY_U64:
        if (k->len == 8) {
            uint64_t v;
            ts_key_get_u64(k, &v);
            snprintf(buf, cap, "%" PRIu64, v);
            return buf;
        }
        break;
    case TS_KEY_TUPLE:
        if (k->len && k->len % 4 == 0) {
            uint32_t vals[TS_KEY_MAX / 4];
            int n = ts_key_get_tuple(k, vals, TS_KEY_MAX / 4);
            size_t o = 0;
            for (int i = 0; i < n && o < cap; i++)
                o += (size_t)snprintf(buf + o, cap - o, "%s%" PRIu32, i ? "," : "", vals[i]);
            return buf;
        }
        break;
    case TS_KEY_STR: {
        int printable = 1;
        for (size_t i = 0; i < k->len; i++)
            if (k->b[i] < 0x20 || k->b[i] == 0x7f) printable = 0;
        if (printable) {
            snprintf(buf, cap, "%.*s", (int)k->len, (const char *)k->b);
            return buf;
        }
        break;
    }
    default: break;
    }
    size_t o = (size_t)snprintf(buf, cap, "0x");
    for (size_t i = 0; i < k->len && o + 2 < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%02x", k->b[i]);
    return buf;
}

int ts_key_cmp(const ts_key *a, const ts_key *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->b, b->b, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}
