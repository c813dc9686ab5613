// Tests of the tensor store's zstd dictionaries (ts_dict_train): training, puts and reads with a
// dictionary on fresh handles, cursors, the hidden dictionary table, and refusal to train on too
// little data.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"


static void sub(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tu_dir, name); }

START_TEST(test_dictionary) {
    char path[300];
    sub(path, sizeof path, "dict");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    // small records alike in structure: 600 "images" of 256 bytes with a common background
    int64_t shape[2] = {16, 16};
    uint8_t img[256];
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_U8, 2, shape, img), 0);
    srand(3);
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (uint64_t i = 0; i < 600; i++) {
        for (int j = 0; j < 256; j++) img[j] = (uint8_t)((j % 16 > 3 && j % 16 < 12 && j / 16 > 2) ? 100 + j % 7 * 20 + rand() % 4 : 0);
        ts_key k;
        ts_key_u64(&k, i);
        ck_assert_int_eq(ts_put(s, "image", &k, &t, TS_CODEC_ZSTD), 0);
        if (i == 299) { // train on the first half, then write the rest with the dictionary
            ck_assert_int_eq(ts_commit(s), 0);
            uint32_t none;
            ck_assert_int_eq(ts_dict_id(s, "image", &none), 0);
            ck_assert_uint_eq(none, 0);
            uint32_t id;
            ck_assert_int_eq(ts_dict_train(s, "image", 0, 4096, &id), 0);
            ck_assert_uint_ne(id, 0);
            uint32_t active;
            ck_assert_int_eq(ts_dict_id(s, "image", &active), 0);
            ck_assert_uint_eq(active, id);
            ck_assert_int_eq(ts_begin_write(s), 0);
        }
    }
    ck_assert_int_eq(ts_commit(s), 0);
    char **names;
    int n;
    ck_assert_int_eq(ts_tables(s, &names, &n), 0);
    ck_assert_int_eq(n, 1); // the dictionary table is hidden
    ts_names_free(names, n);
    ck_assert_int_eq(ts_put(s, "ts.dict", NULL, &t, TS_CODEC_RAW), ERR_USAGE);
    ts_close(s);
    // a fresh handle reads both halves; the second half is smaller
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    uint64_t before = 0, after = 0;
    srand(3);
    for (uint64_t i = 0; i < 600; i++) {
        for (int j = 0; j < 256; j++) img[j] = (uint8_t)((j % 16 > 3 && j % 16 < 12 && j / 16 > 2) ? 100 + j % 7 * 20 + rand() % 4 : 0);
        ts_key k;
        ts_key_u64(&k, i);
        ts_tensor g;
        int grc = ts_get(s, "image", &k, &g);
        ck_assert_msg(grc == 0, "key %d: %s", (int)i, err_msg());
        ck_assert_int_eq(memcmp(g.data, img, 256), 0);
        ts_tensor_free(&g);
        ts_record_info info;
        ck_assert_int_eq(ts_get_info(s, "image", &k, &info), 0);
        if (i < 300) before += info.stored_len;
        else after += info.stored_len;
    }
    ck_assert_uint_lt(after * 10, before * 8); // at least 20% smaller with the dictionary
    // cursors decode with the dictionary too
    ts_cursor *c;
    ck_assert_int_eq(ts_cursor_open(s, "image", &c), 0);
    ts_key k;
    ts_key_u64(&k, 450);
    ck_assert_int_eq(ts_cursor_seek(c, &k), 1);
    ts_tensor g;
    ck_assert_int_eq(ts_cursor_get(c, &g, NULL, 0), 0);
    ts_tensor_free(&g);
    ts_cursor_close(c);
    ts_close(s);
    // too few records to train
    sub(path, sizeof path, "dict2");
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ts_key_u64(&k, 0);
    ck_assert_int_eq(ts_put(s, "x", &k, &t, TS_CODEC_ZSTD), 0);
    ck_assert_int_eq(ts_dict_train(s, "x", 0, 0, NULL), ERR_INPUT);
    ck_assert_int_eq(ts_dict_train(s, "nosuch", 0, 0, NULL), ERR_NOTFOUND);
    ts_close(s);
}
END_TEST

Suite *suite_store_dict(void) {
    Suite *s = suite_create("store_dict");
    TCase *tc = tcase_create("store_dict");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dictionary);
    suite_add_tcase(s, tc);
    return s;
}
