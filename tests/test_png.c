// Tests of common/png: grey and RGB images written and read back with libpng, grid layout,
// bad arguments.
#include <check.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/png.h"

// Reads a PNG as interleaved 8-bit (grey or RGB as stored) into a malloc'd buffer.
static uint8_t *read_png(const char *path, int *c, int *h, int *w) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert(png_image_begin_read_from_file(&img, path));
    *c = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    img.format = *c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    *h = (int)img.height;
    *w = (int)img.width;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    ck_assert(png_image_finish_read(&img, NULL, buf, 0, NULL));
    return buf;
}

START_TEST(test_rgb_and_grey_roundtrip) {
    char path[] = "/tmp/diffood-png-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    uint8_t rgb[3 * 2 * 3]; // planar (3, 2, 3)
    for (int i = 0; i < 18; i++) rgb[i] = (uint8_t)(i * 13);
    ck_assert_int_eq(png_write(path, rgb, 3, 2, 3), 0);
    int c, h, w;
    uint8_t *back = read_png(path, &c, &h, &w);
    ck_assert_int_eq(c, 3);
    ck_assert_int_eq(h, 2);
    ck_assert_int_eq(w, 3);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int ch = 0; ch < 3; ch++) ck_assert_int_eq(back[(y * 3 + x) * 3 + ch], rgb[ch * 6 + y * 3 + x]);
    free(back);
    uint8_t grey[4 * 5];
    for (int i = 0; i < 20; i++) grey[i] = (uint8_t)(255 - i * 7);
    ck_assert_int_eq(png_write(path, grey, 1, 4, 5), 0);
    back = read_png(path, &c, &h, &w);
    ck_assert_int_eq(c, 1);
    ck_assert_int_eq(h, 4); // not only h * w: a 5 x 4 picture holds the same bytes
    ck_assert_int_eq(w, 5);
    ck_assert_int_eq(memcmp(back, grey, 20), 0);
    free(back);
    unlink(path);
}
END_TEST

START_TEST(test_grid_layout) {
    uint8_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    const uint8_t *tiles[4] = {a, b, NULL, a};
    png_grid_shape g = {2, 2, 1, 2, 2, 1, 255};
    ck_assert_int_eq(png_grid_height(&g), 7);
    ck_assert_int_eq(png_grid_width(&g), 7);
    uint8_t out[49];
    ck_assert_int_eq(png_grid_compose(out, &g, tiles), 0);
    ck_assert_int_eq(out[0], 255);          // border
    ck_assert_int_eq(out[1 * 7 + 1], 1);    // tile (0,0) top-left
    ck_assert_int_eq(out[2 * 7 + 2], 4);    // tile (0,0) bottom-right
    ck_assert_int_eq(out[1 * 7 + 4], 5);    // tile (0,1)
    ck_assert_int_eq(out[4 * 7 + 1], 255);  // tile (1,0) is NULL: background
    ck_assert_int_eq(out[5 * 7 + 5], 4);    // tile (1,1) bottom-right
}
END_TEST

START_TEST(test_bad_arguments) {
    uint8_t px[4] = {0};
    ck_assert_int_eq(png_write("/tmp/x.png", px, 2, 1, 2), ERR_USAGE);
    ck_assert_int_eq(png_write("/tmp/x.png", px, 1, 0, 2), ERR_USAGE);
    ck_assert_int_eq(png_write("/nonexistent-dir/x.png", px, 1, 2, 2), ERR_IO);
    ck_assert_ptr_nonnull(strstr(err_msg(), "/nonexistent-dir/x.png"));
    png_grid_shape g = {0, 2, 1, 2, 2, 1, 0};
    ck_assert_int_eq(png_grid_compose(px, &g, NULL), ERR_USAGE);
}
END_TEST

Suite *suite_png(void) {
    Suite *s = suite_create("png");
    TCase *tc = tcase_create("png");
    tcase_add_test(tc, test_rgb_and_grey_roundtrip);
    tcase_add_test(tc, test_grid_layout);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
