// Tests of common/hash.h: known xxHash vectors, streaming = one-shot, file digests.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hash.h"

START_TEST(test_known_vectors) {
    char hex[HASH_HEX_LEN + 1];
    // reference values of the xxHash project (XXH128 and XXH64 of the empty input, seed 0)
    ck_assert_str_eq(hash_bytes_hex(NULL, 0, hex), "99aa06d3014798d86001c324468d497f");
    ck_assert(hash_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
    ck_assert_str_eq(hash_text_hex("", hex), "99aa06d3014798d86001c324468d497f");
    char a[HASH_HEX_LEN + 1], b[HASH_HEX_LEN + 1];
    hash_text_hex("abc", a);
    hash_bytes_hex("abd", 3, b);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq((int)strlen(a), HASH_HEX_LEN);
    ck_assert(hash_xxh64("abc", 3, 0) != hash_xxh64("abc", 3, 1));
}
END_TEST

START_TEST(test_streaming_and_files) {
    static unsigned char data[3 << 20];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 2654435761u >> 13);
    char one[HASH_HEX_LEN + 1], two[HASH_HEX_LEN + 1], file[HASH_HEX_LEN + 1];
    hash_bytes_hex(data, sizeof data, one);
    hash_state *h;
    ck_assert_int_eq(hash_init(&h), 0);
    hash_update(h, data, 1000);
    hash_update(h, data + 1000, sizeof data - 1000);
    ck_assert_str_eq(hash_final_hex(h, two), one);
    hash_free(h);
    // text parts are separated: ("ab","c") != ("a","bc")
    hash_state *x, *y;
    ck_assert_int_eq(hash_init(&x), 0);
    ck_assert_int_eq(hash_init(&y), 0);
    hash_update_text(x, "ab");
    hash_update_text(x, "c");
    hash_update_text(y, "a");
    hash_update_text(y, "bc");
    ck_assert_str_ne(hash_final_hex(x, one), hash_final_hex(y, two));
    hash_free(x);
    hash_free(y);
    char path[] = "/tmp/test_hash.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    ck_assert_uint_eq(fwrite(data, 1, sizeof data, f), sizeof data);
    fclose(f);
    ck_assert_int_eq(hash_file_hex(path, file), 0);
    ck_assert_str_eq(file, hash_bytes_hex(data, sizeof data, one));
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(hash_file_hex(path, file), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), path));
}
END_TEST

Suite *suite_hash(void) {
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("hash");
    tcase_add_test(tc, test_known_vectors);
    tcase_add_test(tc, test_streaming_and_files);
    suite_add_tcase(s, tc);
    return s;
}
