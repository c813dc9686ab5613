// Tests of the tensor store: dtypes and float16, keys, round trips of every dtype x codec x rank,
// meta, tables, batches, cursors, and opening things that are not stores (common/store.h).
#include <check.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"


static void sub(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tu_dir, name); }

// --- dtypes, float16, keys ---------------------------------------------------------------------
START_TEST(test_dtype_tables) {
    ck_assert_int_eq(ts_dtype_size(TS_U8), 1);
    ck_assert_int_eq(ts_dtype_size(TS_F16), 2);
    ck_assert_int_eq(ts_dtype_size(TS_I32), 4);
    ck_assert_int_eq(ts_dtype_size(TS_F64), 8);
    ck_assert_str_eq(ts_dtype_npy_descr(TS_F32), "<f4");
    ts_dtype d;
    for (int i = 0; i < TS_DTYPE_COUNT; i++) {
        ck_assert_int_eq(ts_dtype_from_name(ts_dtype_name((ts_dtype)i), &d), 0);
        ck_assert_int_eq(d, i);
        ck_assert_int_eq(ts_dtype_from_npy(ts_dtype_npy_descr((ts_dtype)i), &d), 0);
        ck_assert_int_eq(d, i);
    }
    ck_assert_int_eq(ts_dtype_from_npy(">f4", &d), ERR_UNSUPPORTED);
    ck_assert_int_eq(ts_dtype_from_name("complex", &d), ERR_USAGE);
    ts_codec c;
    ck_assert_int_eq(ts_codec_from_name("shuffle-zstd", &c), 0);
    ck_assert_int_eq(c, TS_CODEC_SHUFFLE_ZSTD);
    ck_assert_int_eq(ts_codec_from_name("lz4", &c), ERR_USAGE);
}
END_TEST

START_TEST(test_f16) {
    ck_assert_uint_eq(ts_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(ts_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(ts_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(ts_f32_to_f16(65520.0f), 0x7c00);   // rounds up to infinity
    ck_assert_uint_eq(ts_f32_to_f16(65519.0f), 0x7bff);
    ck_assert_uint_eq(ts_f32_to_f16(2049.0f), 0x6800);    // tie -> even (2048)
    ck_assert_uint_eq(ts_f32_to_f16(2051.0f), 0x6802);    // tie -> even (2052)
    ck_assert_uint_eq(ts_f32_to_f16(5.9604645e-08f), 0x0001); // smallest subnormal
    ck_assert_uint_eq(ts_f32_to_f16(2.9802322e-08f), 0x0000); // half of it: tie -> even 0
    ck_assert_uint_eq(ts_f32_to_f16(1e-10f), 0);
    ck_assert_uint_eq(ts_f32_to_f16(INFINITY), 0x7c00);
    ck_assert(isnan(ts_f16_to_f32(ts_f32_to_f16(NAN))));
    ck_assert_float_eq(ts_f16_to_f32(0x3555), 0.333251953125f);
    // every non-NaN half survives half -> float -> half
    for (unsigned h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        ck_assert_uint_eq(ts_f32_to_f16(ts_f16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(test_keys) {
    ts_key k, k2;
    char buf[128];
    ts_key_u64(&k, 258);
    ck_assert_int_eq(k.len, 8);
    ck_assert_uint_eq(k.b[6], 1);
    ck_assert_uint_eq(k.b[7], 2);
    ck_assert_str_eq(ts_key_format(&k, buf, sizeof buf), "258");
    uint32_t v[3] = {3, 120, 0}, w[3];
    ts_key_tuple(&k, 3, v);
    ck_assert_str_eq(ts_key_format(&k, buf, sizeof buf), "3,120,0");
    ck_assert_int_eq(ts_key_get_tuple(&k, w, 3), 3);
    ck_assert_uint_eq(w[1], 120);
    ck_assert_int_eq(ts_key_parse(&k2, "3,120,0"), 0);
    ck_assert_int_eq(ts_key_cmp(&k, &k2), 0);
    ck_assert_int_eq(ts_key_parse(&k2, "18446744073709551615"), 0);
    uint64_t u;
    ck_assert_int_eq(ts_key_get_u64(&k2, &u), 0);
    ck_assert(u == UINT64_MAX);
    ck_assert_int_eq(ts_key_parse(&k2, "18446744073709551616"), ERR_USAGE);
    ck_assert_int_eq(ts_key_parse(&k2, "1,,2"), ERR_USAGE);
    ck_assert_int_eq(ts_key_parse(&k2, "conv_in.weight"), 0);
    ck_assert_int_eq(k2.kind, TS_KEY_STR);
    ck_assert_str_eq(ts_key_format(&k2, buf, sizeof buf), "conv_in.weight");
    ck_assert_int_eq(ts_key_parse(&k2, "s:12"), 0);
    ck_assert_int_eq(k2.len, 2);
    ck_assert_int_eq(ts_key_parse(&k2, ""), ERR_USAGE);
    // unknown bytes print as hex; a non-printable "string" too
    ts_key r = {.b = {0x01, 0xab, 0x00}, .len = 3, .kind = TS_KEY_RAW};
    ck_assert_str_eq(ts_key_format(&r, buf, sizeof buf), "0x01ab00");
    r.kind = TS_KEY_STR;
    ck_assert_str_eq(ts_key_format(&r, buf, sizeof buf), "0x01ab00");
    ck_assert_str_eq(ts_key_format(&r, buf, 5), "0x01"); // truncated, terminated
    // big-endian: numeric order is byte order
    ts_key a, b;
    ts_key_u64(&a, 255);
    ts_key_u64(&b, 256);
    ck_assert_int_lt(ts_key_cmp(&a, &b), 0);
}
END_TEST

// --- round trips -------------------------------------------------------------------------------
static void fill_random(void *p, size_t nbytes, ts_dtype dt, unsigned seed) {
    srand(seed);
    size_t es = ts_dtype_size(dt), n = nbytes / es;
    for (size_t i = 0; i < n; i++) {
        int r = rand();
        switch (dt) {
        case TS_U8: ((uint8_t *)p)[i] = (uint8_t)(r % 7 == 0 ? r : 0); break;
        case TS_I32: ((int32_t *)p)[i] = r % 1000 - 500; break;
        case TS_I64: ((int64_t *)p)[i] = (int64_t)r * 977 - 4; break;
        case TS_F32: ((float *)p)[i] = r % 3 ? 0.0f : (float)r / RAND_MAX; break;
        case TS_F16: ((uint16_t *)p)[i] = ts_f32_to_f16((float)(r % 100) / 7.0f); break;
        case TS_F64: ((double *)p)[i] = (double)r / 3.0; break;
        default: break;
        }
    }
}

START_TEST(test_roundtrip_all) {
    char path[300];
    sub(path, sizeof path, "rt");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    const int64_t dims[4] = {3, 5, 4, 7};
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (int dt = 0; dt < TS_DTYPE_COUNT; dt++)
        for (int c = 0; c < TS_CODEC_COUNT; c++)
            for (int r = 0; r <= 4; r++) {
                ts_tensor t;
                ck_assert_int_eq(ts_tensor_alloc(&t, (ts_dtype)dt, r, dims), 0);
                fill_random(t.data, t.nbytes, (ts_dtype)dt, (unsigned)(dt * 100 + c * 10 + r));
                uint32_t kv[3] = {(uint32_t)dt, (uint32_t)c, (uint32_t)r};
                ts_key k;
                ts_key_tuple(&k, 3, kv);
                ck_assert_int_eq(ts_put(s, "t", &k, &t, (ts_codec)c), 0);
                ts_tensor_free(&t);
            }
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    uint64_t n;
    ck_assert_int_eq(ts_count(s, "t", &n), 0);
    ck_assert_int_eq(n, TS_DTYPE_COUNT * TS_CODEC_COUNT * 5);
    int compressed = 0;
    for (int dt = 0; dt < TS_DTYPE_COUNT; dt++)
        for (int c = 0; c < TS_CODEC_COUNT; c++)
            for (int r = 0; r <= 4; r++) {
                ts_tensor want, got;
                ck_assert_int_eq(ts_tensor_alloc(&want, (ts_dtype)dt, r, dims), 0);
                fill_random(want.data, want.nbytes, (ts_dtype)dt, (unsigned)(dt * 100 + c * 10 + r));
                uint32_t kv[3] = {(uint32_t)dt, (uint32_t)c, (uint32_t)r};
                ts_key k;
                ts_key_tuple(&k, 3, kv);
                ck_assert_int_eq(ts_get(s, "t", &k, &got), 0);
                ck_assert_int_eq(got.dtype, dt);
                ck_assert_int_eq(got.rank, r);
                for (int i = 0; i < 4; i++) ck_assert_int_eq(got.shape[i], i < r ? dims[i] : 0);
                ck_assert_uint_eq(got.nbytes, want.nbytes);
                ck_assert_int_eq(memcmp(got.data, want.data, want.nbytes), 0);
                ts_record_info info;
                ck_assert_int_eq(ts_get_info(s, "t", &k, &info), 0);
                ck_assert_uint_eq(info.raw_len, want.nbytes);
                if (c == TS_CODEC_RAW) ck_assert_int_eq(info.codec, TS_CODEC_RAW);
                if (info.codec != TS_CODEC_RAW) compressed++;
                // caller buffer variant, and a buffer too small
                char *buf = malloc(want.nbytes + 1);
                ts_tensor got2;
                ck_assert_int_eq(ts_get_into(s, "t", &k, &got2, buf, want.nbytes), 0);
                ck_assert_ptr_eq(got2.data, buf);
                ck_assert_int_eq(memcmp(buf, want.data, want.nbytes), 0);
                if (want.nbytes > 1) ck_assert_int_eq(ts_get_into(s, "t", &k, &got2, buf, want.nbytes - 1), ERR_INPUT);
                free(buf);
                ts_tensor_free(&got);
                ts_tensor_free(&want);
            }
    ck_assert_int_gt(compressed, 10); // sparse data does compress with zstd
    ts_close(s);
}
END_TEST

START_TEST(test_create_parents) {
    char path[300];
    sub(path, sizeof path, "runs/deep/x.store");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_close(s);
    sub(path, sizeof path, "file");
    FILE *f = fopen(path, "w");
    fclose(f);
    sub(path, sizeof path, "file/x.store");
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE), ERR_IO);
    ck_assert_ptr_nonnull(strstr(err_msg(), path));
}
END_TEST

START_TEST(test_shuffle_helps_floats) {
    char path[300];
    sub(path, sizeof path, "sh");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    int64_t shape[1] = {4096};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_alloc(&t, TS_F32, 1, shape), 0);
    float *f = t.data;
    for (int i = 0; i < 4096; i++) f[i] = sinf((float)i * 0.01f) * 3.0f;
    ts_key k0, k1;
    ts_key_u64(&k0, 0);
    ts_key_u64(&k1, 1);
    ck_assert_int_eq(ts_put(s, "z", &k0, &t, TS_CODEC_ZSTD), 0);
    ck_assert_int_eq(ts_put(s, "z", &k1, &t, TS_CODEC_SHUFFLE_ZSTD), 0);
    ts_record_info a, b;
    ck_assert_int_eq(ts_get_info(s, "z", &k0, &a), 0);
    ck_assert_int_eq(ts_get_info(s, "z", &k1, &b), 0);
    ck_assert_int_eq(b.codec, TS_CODEC_SHUFFLE_ZSTD);
    ck_assert_uint_lt(b.stored_len, a.stored_len);
    ts_tensor g;
    ck_assert_int_eq(ts_get(s, "z", &k1, &g), 0);
    ck_assert_int_eq(memcmp(g.data, t.data, t.nbytes), 0);
    ts_tensor_free(&g);
    ts_tensor_free(&t);
    ts_close(s);
}
END_TEST

// --- meta, tables, cursors, batches ------------------------------------------------------------
START_TEST(test_meta_tables_cursor) {
    char path[300];
    sub(path, sizeof path, "m");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_meta_put(s, "stage", "ingest"), 0);
    ck_assert_int_eq(ts_meta_put(s, "params", "a: 1\nb: \xc3\xa9\n"), 0);
    char *txt;
    ck_assert_int_eq(ts_meta_get(s, "params", &txt), 0);
    ck_assert_str_eq(txt, "a: 1\nb: \xc3\xa9\n");
    free(txt);
    ck_assert_int_eq(ts_meta_get(s, "nope", &txt), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), "nope"));
    char **names;
    int n;
    ck_assert_int_eq(ts_meta_list(s, &names, &n), 0);
    ck_assert_int_eq(n, 3); // params, stage, ts.format
    ck_assert_str_eq(names[0], "params");
    ts_names_free(names, n);
    ck_assert_int_eq(ts_meta_del(s, "stage"), 0);
    ck_assert_int_eq(ts_meta_del(s, "stage"), ERR_NOTFOUND);

    // out-of-order inserts come back in numeric key order
    int32_t val;
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_I32, 0, NULL, &val), 0);
    const uint64_t order[] = {300, 2, 256, 1, 70000, 255};
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (int i = 0; i < 6; i++) {
        ts_key k;
        ts_key_u64(&k, order[i]);
        val = (int32_t)order[i] * 2;
        ck_assert_int_eq(ts_put(s, "label", &k, &t, TS_CODEC_RAW), 0);
        ck_assert_int_eq(ts_put(s, "other", &k, &t, TS_CODEC_ZSTD), 0);
    }
    ck_assert_int_eq(ts_commit(s), 0);
    ck_assert_int_eq(ts_tables(s, &names, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(names[0], "label");
    ck_assert_str_eq(names[1], "other");
    ts_names_free(names, n);
    ts_cursor *c;
    ck_assert_int_eq(ts_cursor_open(s, "label", &c), 0);
    ts_key k;
    uint64_t prev = 0, u;
    int cnt = 0;
    while (ts_cursor_next(c, &k) == 1) {
        ck_assert_int_eq(k.kind, TS_KEY_U64);
        ck_assert_int_eq(ts_key_get_u64(&k, &u), 0);
        ck_assert_uint_gt(u, prev);
        prev = u;
        ts_tensor g;
        ck_assert_int_eq(ts_cursor_get(c, &g, NULL, 0), 0);
        ck_assert_int_eq(*(int32_t *)g.data, (int32_t)u * 2);
        ts_tensor_free(&g);
        cnt++;
    }
    ck_assert_int_eq(cnt, 6);
    ck_assert_int_eq(ts_cursor_next(c, &k), 0); // stays at the end
    ts_key_u64(&k, 257);
    ck_assert_int_eq(ts_cursor_seek(c, &k), 1);
    ck_assert_int_eq(ts_cursor_key(c, &k), 0);
    ck_assert_int_eq(ts_key_get_u64(&k, &u), 0);
    ck_assert_uint_eq(u, 300);
    ck_assert_int_eq(ts_cursor_next(c, &k), 1);
    ck_assert_int_eq(ts_key_get_u64(&k, &u), 0);
    ck_assert_uint_eq(u, 70000);
    ts_cursor_close(c);

    ts_table_stat st;
    ck_assert_int_eq(ts_stat(s, "label", 1, &st), 0);
    ck_assert_uint_eq(st.records, 6);
    ck_assert_uint_eq(st.raw_bytes, 24);
    ck_assert_uint_eq(st.key_bytes, 48);

    // has / del / drop
    ts_key_u64(&k, 256);
    ck_assert_int_eq(ts_has(s, "label", &k), 1);
    ck_assert_int_eq(ts_del(s, "label", &k), 0);
    ck_assert_int_eq(ts_has(s, "label", &k), 0);
    ck_assert_int_eq(ts_del(s, "label", &k), ERR_NOTFOUND);
    ck_assert_int_eq(ts_has(s, "missing", &k), 0);
    ck_assert_int_eq(ts_drop_table(s, "other"), 0);
    ck_assert_int_eq(ts_table_exists(s, "other"), 0);
    ck_assert_int_eq(ts_drop_table(s, "meta"), ERR_USAGE);
    ck_assert_int_eq(ts_put(s, "meta", &k, &t, TS_CODEC_RAW), ERR_USAGE);

    // an aborted batch leaves nothing, a new table included
    ck_assert_int_eq(ts_begin_write(s), 0);
    ck_assert_int_eq(ts_put(s, "fresh", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_put(s, "label", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_has(s, "fresh", &k), 1); // the batch sees itself
    ck_assert_int_eq(ts_begin_write(s), ERR_USAGE);
    ts_cursor *wc; // a cursor inside the batch sees it, and ends with it
    ck_assert_int_eq(ts_cursor_open(s, "fresh", &wc), 0);
    ck_assert_int_eq(ts_cursor_next(wc, NULL), 1);
    ts_abort(s);
    ck_assert_int_eq(ts_cursor_next(wc, NULL), 0);
    ts_cursor_close(wc);
    ck_assert_int_eq(ts_table_exists(s, "fresh"), 0);
    ck_assert_int_eq(ts_has(s, "label", &k), 0);
    ck_assert_int_eq(ts_commit(s), ERR_USAGE);
    ts_close(s);

    // read-only handles refuse writes
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ck_assert_int_eq(ts_put(s, "label", &k, &t, TS_CODEC_RAW), ERR_USAGE);
    ck_assert_int_eq(ts_begin_write(s), ERR_USAGE);
    ck_assert_int_eq(ts_get(s, "nosuch", &k, &t), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), "nosuch"));
    ts_key_u64(&k, 12345);
    ck_assert_int_eq(ts_get(s, "label", &k, &t), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), "12345"));
    ts_close(s);
}
END_TEST

START_TEST(test_string_keys_big_records) {
    char path[300];
    sub(path, sizeof path, "p");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    int64_t shape[2] = {512, 1024}; // 2 MiB: overflow pages
    ts_tensor t, g;
    ck_assert_int_eq(ts_tensor_alloc(&t, TS_F32, 2, shape), 0);
    fill_random(t.data, t.nbytes, TS_F32, 5);
    ts_key k;
    ck_assert_int_eq(ts_key_str(&k, "down.0.block.1.conv1.weight"), 0);
    ck_assert_int_eq(ts_put(s, "param", &k, &t, TS_CODEC_SHUFFLE_ZSTD), 0);
    ts_cursor *c;
    ck_assert_int_eq(ts_cursor_open(s, "param", &c), 0);
    ts_key got;
    ck_assert_int_eq(ts_cursor_next(c, &got), 1);
    char kb[64];
    ck_assert_int_eq(got.kind, TS_KEY_STR);
    ck_assert_str_eq(ts_key_format(&got, kb, sizeof kb), "down.0.block.1.conv1.weight");
    ts_cursor_close(c);
    ck_assert_int_eq(ts_get(s, "param", &k, &g), 0);
    ck_assert_int_eq(memcmp(g.data, t.data, t.nbytes), 0);
    ts_tensor_free(&g);
    ts_tensor_free(&t);
    ts_close(s);
}
END_TEST

// --- things that are not stores ----------------------------------------------------------------
static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

START_TEST(test_open_errors) {
    char path[300], file[340];
    ts_store *s = NULL;
    sub(path, sizeof path, "missing");
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), path));
    ck_assert_int_eq(ts_open(&s, path, 0), ERR_NOTFOUND);
    // a regular file
    sub(path, sizeof path, "plain.txt");
    write_file(path, "hello", 5);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), path));
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE), ERR_INPUT);
    // an empty directory
    sub(path, sizeof path, "emptydir");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_NOTFOUND);
    // a foreign data.mdb (random bytes)
    sub(path, sizeof path, "foreign");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    static unsigned char junk[65536];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 7919 >> 3);
    write_file(file, junk, sizeof junk);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err_msg(), path));
    ck_assert_int_eq(ts_open(&s, path, 0), ERR_CORRUPT);
    // a tiny data.mdb
    sub(path, sizeof path, "tiny");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    write_file(file, junk, 100);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_CORRUPT);
    // a truncated real store
    sub(path, sizeof path, "trunc");
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    int64_t shape[1] = {1 << 20};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_alloc(&t, TS_U8, 1, shape), 0);
    ts_key k;
    ts_key_u64(&k, 0);
    ck_assert_int_eq(ts_put(s, "image", &k, &t, TS_CODEC_RAW), 0);
    ts_tensor_free(&t);
    ts_close(s);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_int_eq(truncate(file, st.st_size / 2), 0);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "truncated"));
    ck_assert_int_eq(ts_open(&s, path, 0), ERR_CORRUPT);
    // an LMDB environment that is not a tensor store
    sub(path, sizeof path, "lmdb");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0664), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val kk = {3, "abc"}, vv = {3, "xyz"};
    ck_assert_int_eq(mdb_put(txn, dbi, &kk, &vv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "not a tensor store"));
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE), ERR_INPUT);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY | TS_CREATE), ERR_USAGE);
}
END_TEST

Suite *suite_store(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dtype_tables);
    tcase_add_test(tc, test_f16);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_roundtrip_all);
    tcase_add_test(tc, test_shuffle_helps_floats);
    tcase_add_test(tc, test_create_parents);
    tcase_add_test(tc, test_meta_tables_cursor);
    tcase_add_test(tc, test_string_keys_big_records);
    tcase_add_test(tc, test_open_errors);
    suite_add_tcase(s, tc);
    return s;
}
