// Tests of the dataset readers (datasets/): IDX (raw, gzip, bad magic, truncation, count
// mismatch, absurd headers), MNIST JSON (layout, rounding, a 783-value digit), CIFAR-10/100,
// NPY layouts, and the image ops (padding, channels, PIL-exact bilinear resize + centre crop).
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <png.h>

#include "common/err.h"
#include "common/npy.h"
#include "datasets/cifar.h"
#include "datasets/ds.h"
#include "datasets/idx.h"
#include "datasets/imglist.h"
#include "datasets/mnistjson.h"
#include "datasets/npyimg.h"
#include "tests/test_util.h"


static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

// Writes an IDX file: header (magic, dims) then payload; gzip when gz.
static void write_idx(const char *path, int gz, uint32_t magic, int nd, const uint32_t *dims, const void *data,
                      size_t n) {
    unsigned char hdr[16];
    put_be32(hdr, magic);
    for (int i = 0; i < nd; i++) put_be32(hdr + 4 + 4 * i, dims[i]);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        gzwrite(g, hdr, (unsigned)(4 + 4 * nd));
        if (n) gzwrite(g, data, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(hdr, 1, (size_t)(4 + 4 * nd), f);
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
}

// 5 images of 4 x 3 and their labels.
static void write_small_idx(int gz, const char *img, const char *lab) {
    uint8_t px[5 * 12], lb[5];
    for (int i = 0; i < 60; i++) px[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 5; i++) lb[i] = (uint8_t)(i % 3);
    write_idx(img, gz, 0x803, 3, (uint32_t[]){5, 4, 3}, px, sizeof px);
    write_idx(lab, gz, 0x801, 1, (uint32_t[]){5}, lb, sizeof lb);
}

START_TEST(test_idx_raw_and_gzip) {
    for (int gz = 0; gz < 2; gz++) {
        write_small_idx(gz, tu_path("i"), tu_path("l"));
        ds_images s;
        ck_assert_int_eq(idx_read(&s, tu_path("i"), tu_path("l")), 0);
        ck_assert_int_eq(s.n, 5);
        ck_assert_int_eq(s.c, 1);
        ck_assert_int_eq(s.h, 4);
        ck_assert_int_eq(s.w, 3);
        for (int i = 0; i < 60; i++) ck_assert_uint_eq(s.pixels[i], (uint8_t)(i * 7));
        for (int i = 0; i < 5; i++) ck_assert_int_eq(s.labels[i], i % 3);
        ds_images_free(&s);
    }
}
END_TEST

START_TEST(test_idx_bad_inputs) {
    ds_images s;
    uint8_t px[5 * 12] = {0}, lb[5] = {0};
    // wrong magic
    write_idx(tu_path("i"), 1, 0x801, 3, (uint32_t[]){5, 4, 3}, px, sizeof px);
    write_idx(tu_path("l"), 1, 0x801, 1, (uint32_t[]){5}, lb, sizeof lb);
    ck_assert_int_eq(idx_read(&s, tu_path("i"), tu_path("l")), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), tu_path("i")));
    ck_assert_ptr_nonnull(strstr(err_msg(), "magic"));
    ck_assert_ptr_null(s.pixels);
    // count mismatch
    write_idx(tu_path("i"), 1, 0x803, 3, (uint32_t[]){5, 4, 3}, px, sizeof px);
    write_idx(tu_path("l"), 1, 0x801, 1, (uint32_t[]){4}, lb, 4);
    ck_assert_int_eq(idx_read(&s, tu_path("i"), tu_path("l")), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "labels"));
    // raw file shorter than its header says
    write_idx(tu_path("i"), 0, 0x803, 3, (uint32_t[]){5, 4, 3}, px, sizeof px - 1);
    write_idx(tu_path("l"), 0, 0x801, 1, (uint32_t[]){5}, lb, sizeof lb);
    ck_assert_int_eq(idx_read(&s, tu_path("i"), tu_path("l")), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), tu_path("i")));
    // absurd header: 2^31 images of 2^16 x 2^16 in a tiny gzip file, refused before allocating
    write_idx(tu_path("i"), 1, 0x803, 3, (uint32_t[]){1u << 31, 1u << 16, 1u << 16}, px, sizeof px);
    write_idx(tu_path("l"), 1, 0x801, 1, (uint32_t[]){1u << 31}, lb, sizeof lb);
    ck_assert_int_lt(idx_read(&s, tu_path("i"), tu_path("l")), 0);
    ck_assert_ptr_nonnull(strstr(err_msg(), tu_path("i")));
    // missing file
    ck_assert_int_eq(idx_read(&s, tu_path("nope"), tu_path("l")), ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err_msg(), "nope"));
}
END_TEST

START_TEST(test_idx_truncated_gzip) {
    write_small_idx(1, tu_path("i"), tu_path("l"));
    // cut the compressed file in the middle
    size_t n;
    uint8_t *buf = tu_read_file(tu_path("i"), &n);
    tu_write_file(tu_path("i"), buf, n / 2);
    free(buf);
    ds_images s;
    int rc = idx_read(&s, tu_path("i"), tu_path("l"));
    ck_assert(rc == ERR_CORRUPT || rc == ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), tu_path("i")));
}
END_TEST

// --- MNIST JSON ----------------------------------------------------------------------------

static void write_digits(const char *dir, int values_of_digit3) {
    for (int d = 0; d < 10; d++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%d.json", dir, d);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        int n = d == 3 ? values_of_digit3 : 784 * 2;
        fprintf(f, "{ \"data\": [");
        for (int i = 0; i < n; i++) fprintf(f, "%s%g", i ? "," : "", ((i + d) % 1001) / 1000.0);
        fprintf(f, "] }\n");
        fclose(f);
    }
}

START_TEST(test_mnistjson_layout) {
    write_digits(tu_dir, 784 * 2);
    ds_images s;
    ck_assert_int_eq(mnistjson_read_dir(&s, tu_dir), 0);
    ck_assert_int_eq(s.n, 20);
    ck_assert_int_eq(s.h, 28);
    for (int k = 0; k < 20; k++) {
        int d = k / 2;
        ck_assert_int_eq(s.labels[k], d);
        for (int p = 0; p < 784; p += 97) {
            int i = (k % 2) * 784 + p;
            double v = ((i + d) % 1001) / 1000.0;
            ck_assert_uint_eq(ds_image_at(&s, k)[p], (uint8_t)(v * 255.0 + 0.5));
        }
    }
    ds_images_free(&s);
}
END_TEST

START_TEST(test_mnistjson_783) {
    write_digits(tu_dir, 784 + 783);
    ds_images s;
    ck_assert_int_eq(mnistjson_read_dir(&s, tu_dir), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "3.json"));
    ck_assert_ptr_nonnull(strstr(err_msg(), "783"));
    // not JSON, and an out-of-range value
    FILE *f = fopen(tu_path("3.json"), "w");
    fprintf(f, "{\"data\": [0, 1,");
    fclose(f);
    ck_assert_int_eq(mnistjson_read_dir(&s, tu_dir), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "3.json"));
    f = fopen(tu_path("3.json"), "w");
    fprintf(f, "{\"data\": [");
    for (int i = 0; i < 784; i++) fprintf(f, "%s%s", i ? "," : "", i == 5 ? "2" : "0");
    fprintf(f, "]}");
    fclose(f);
    ck_assert_int_eq(mnistjson_read_dir(&s, tu_dir), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "value 5"));
    // anything but {"data": [numbers]} is refused
    const char *bad[] = {"{\"data\":[0],\"x\":1}", "{\"data\":[0,]}", "{\"data\":[01]}", "[0]", "{\"data\":[0]} x",
                         "{\"data\":[\"0\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = fopen(tu_path("3.json"), "w");
        fputs(bad[i], f);
        fclose(f);
        ck_assert_msg(mnistjson_read_file(&s, tu_path("3.json"), 3) == ERR_INPUT, "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(strstr(err_msg(), "3.json"));
    }
    f = fopen(tu_path("3.json"), "w");
    fputs(" {\n \"data\" : [ 0.5 , 1e-3, 1.0E0", f);
    for (int i = 3; i < 784; i++) fputs(",0", f);
    fputs("] }\n", f);
    fclose(f);
    ck_assert_int_eq(mnistjson_read_file(&s, tu_path("3.json"), 3), 0);
    ck_assert_uint_eq(s.pixels[0], 128); // lround(127.5)
    ck_assert_uint_eq(s.pixels[1], 0);
    ck_assert_uint_eq(s.pixels[2], 255);
    ck_assert_int_eq(s.labels[0], 3);
    ds_images_free(&s);
}
END_TEST

// --- CIFAR ---------------------------------------------------------------------------------

START_TEST(test_cifar_10_and_100) {
    // CIFAR-10: two files of 2 and 3 records
    for (int fi = 0; fi < 2; fi++) {
        FILE *f = fopen(tu_path(fi ? "b.bin" : "a.bin"), "wb");
        for (int r = 0; r < 2 + fi; r++) {
            fputc((fi * 2 + r) % 10, f);
            for (int p = 0; p < CIFAR_PIXELS; p++) fputc((p + 3 * r + 11 * fi) & 255, f);
        }
        fclose(f);
    }
    const char *paths[2] = {tu_path("a.bin"), tu_path("b.bin")};
    ds_images s;
    ck_assert_int_eq(cifar_read(&s, paths, 2, CIFAR_10), 0);
    ck_assert_int_eq(s.n, 5);
    ck_assert_int_eq(s.c, 3);
    for (int k = 0; k < 5; k++) {
        int fi = k >= 2, r = fi ? k - 2 : k;
        ck_assert_int_eq(s.labels[k], (fi * 2 + r) % 10);
        for (int p = 0; p < CIFAR_PIXELS; p++) ck_assert_uint_eq(ds_image_at(&s, k)[p], (p + 3 * r + 11 * fi) & 255);
    }
    ds_images_free(&s);
    // CIFAR-100: coarse 7, fine 42
    FILE *f = fopen(tu_path("c.bin"), "wb");
    fputc(7, f);
    fputc(42, f);
    for (int p = 0; p < CIFAR_PIXELS; p++) fputc(p & 255, f);
    fclose(f);
    const char *p100[1] = {tu_path("c.bin")};
    ck_assert_int_eq(cifar_read(&s, p100, 1, CIFAR_100_FINE), 0);
    ck_assert_int_eq(s.labels[0], 42);
    ck_assert_uint_eq(ds_image_at(&s, 0)[300], 300 & 255);
    ds_images_free(&s);
    ck_assert_int_eq(cifar_read(&s, p100, 1, CIFAR_100_COARSE), 0);
    ck_assert_int_eq(s.labels[0], 7);
    ds_images_free(&s);
    // a CIFAR-100 file read as CIFAR-10 is not a whole number of records
    ck_assert_int_eq(cifar_read(&s, p100, 1, CIFAR_10), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "c.bin"));
}
END_TEST

// --- NPY -----------------------------------------------------------------------------------

START_TEST(test_npy_layouts) {
    uint8_t a[2 * 3 * 2 * 4]; // N=2, H=2, W=4, C=3 in NHWC
    for (int i = 0; i < (int)sizeof a; i++) a[i] = (uint8_t)i;
    ck_assert_int_eq(npy_save(tu_path("hwc.npy"), TS_U8, 4, (int64_t[]){2, 2, 4, 3}, a), 0);
    int32_t lab[2] = {4, -1};
    ck_assert_int_eq(npy_save(tu_path("lab.npy"), TS_I32, 1, (int64_t[]){2}, lab), 0);
    ds_images s;
    ck_assert_int_eq(npyimg_read(&s, tu_path("hwc.npy"), tu_path("lab.npy"), NPYIMG_AUTO), 0);
    ck_assert_int_eq(s.c, 3);
    ck_assert_int_eq(s.h, 2);
    ck_assert_int_eq(s.w, 4);
    for (int n = 0; n < 2; n++)
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 8; p++) ck_assert_uint_eq(ds_image_at(&s, n)[ch * 8 + p], a[n * 24 + p * 3 + ch]);
    ck_assert_int_eq(s.labels[0], 4);
    ck_assert_int_eq(s.labels[1], -1);
    ds_images_free(&s);
    // NCHW read as such: bytes unchanged (2 x 3 x 2 x 4 is ambiguous: both 3 and 4 could be C)
    ck_assert_int_eq(npy_save(tu_path("chw.npy"), TS_U8, 4, (int64_t[]){2, 3, 2, 4}, a), 0);
    ck_assert_int_eq(npyimg_read(&s, tu_path("chw.npy"), NULL, NPYIMG_AUTO), ERR_INPUT);
    ck_assert_int_eq(npyimg_read(&s, tu_path("chw.npy"), NULL, NPYIMG_NCHW), 0);
    ck_assert_int_eq(s.c, 3);
    ck_assert_int_eq(memcmp(s.pixels, a, sizeof a), 0);
    ck_assert_int_eq(s.labels[1], -1);
    ds_images_free(&s);
    // ambiguous N x 3 x 5 x 3 without --layout
    uint8_t b[2 * 3 * 5 * 3] = {0};
    ck_assert_int_eq(npy_save(tu_path("amb.npy"), TS_U8, 4, (int64_t[]){2, 3, 5, 3}, b), 0);
    ck_assert_int_eq(npyimg_read(&s, tu_path("amb.npy"), NULL, NPYIMG_AUTO), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "ambiguous"));
    ck_assert_int_eq(npyimg_read(&s, tu_path("amb.npy"), NULL, NPYIMG_NHWC), 0);
    ck_assert_int_eq(s.h, 3);
    ck_assert_int_eq(s.w, 5);
    ds_images_free(&s);
    // float images refused
    float fl[4] = {0};
    ck_assert_int_eq(npy_save(tu_path("f.npy"), TS_F32, 3, (int64_t[]){1, 2, 2}, fl), 0);
    ck_assert_int_eq(npyimg_read(&s, tu_path("f.npy"), NULL, NPYIMG_AUTO), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "uint8"));
}
END_TEST

// --- image ops -----------------------------------------------------------------------------

START_TEST(test_pad_and_channels) {
    uint8_t src[2 * 2 * 3], dst[2 * 4 * 5];
    for (int i = 0; i < 12; i++) src[i] = (uint8_t)(i + 1);
    ds_pad(dst, src, 2, 2, 3, 1);
    for (int ch = 0; ch < 2; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                uint8_t v = dst[(ch * 4 + y) * 5 + x];
                if (y == 0 || y == 3 || x == 0 || x == 4)
                    ck_assert_uint_eq(v, 0);
                else
                    ck_assert_uint_eq(v, src[(ch * 2 + y - 1) * 3 + x - 1]);
            }
    uint8_t rgb[3] = {200, 100, 50}, g[1], g3[3];
    ck_assert_int_eq(ds_convert_channels(g, 1, rgb, 3, 1, 1), 0);
    ck_assert_uint_eq(g[0], (200 * 19595 + 100 * 38470 + 50 * 7471 + 32768) >> 16);
    ck_assert_int_eq(ds_convert_channels(g3, 3, g, 1, 1, 1), 0);
    ck_assert(g3[0] == g[0] && g3[1] == g[0] && g3[2] == g[0]);
    ck_assert_int_eq(ds_convert_channels(g3, 2, g, 1, 1, 1), ERR_UNSUPPORTED);
}
END_TEST

// Golden values from Pillow 9.4 Image.resize(..., BILINEAR) on the same 5 x 7 image.
START_TEST(test_resize_matches_pil) {
    uint8_t a[35];
    for (int i = 0; i < 35; i++) a[i] = (uint8_t)((i * 37 + 11) % 256);
    uint8_t out[99];
    ck_assert_int_eq(ds_resize_bilinear(out, 2, 3, a, 1, 5, 7), 0);
    const uint8_t down[6] = {46, 125, 204, 52, 131, 210};
    ck_assert_int_eq(memcmp(out, down, 6), 0);
    ck_assert_int_eq(ds_resize_bilinear(out, 9, 11, a, 1, 5, 7), 0);
    const uint8_t up[20] = {11, 28, 51, 75, 98, 122, 146, 169, 193, 216, 233, 12, 29, 52, 76, 99, 123, 147, 170, 194};
    ck_assert_int_eq(memcmp(out, up, 20), 0);
    long sum = 0;
    for (int i = 0; i < 99; i++) sum += out[i];
    ck_assert_int_eq(sum, 12672);
    // torchvision Resize(4) + CenterCrop(4): 5 x 7 -> 4 x 5, crop columns 0..3 (round(0.5) = 0)
    int oh, ow;
    ds_resize_shorter_dims(5, 7, 4, &oh, &ow);
    ck_assert_int_eq(oh, 4);
    ck_assert_int_eq(ow, 5);
    ck_assert_int_eq(ds_resize_center_crop(out, 4, a, 1, 5, 7), 0);
    const uint8_t crop[16] = {24, 70, 123, 176, 27, 73, 126, 179, 31, 77, 130, 183, 34, 80, 133, 186};
    ck_assert_int_eq(memcmp(out, crop, 16), 0);
    // same size: unchanged
    ck_assert_int_eq(ds_resize_bilinear(out, 5, 7, a, 1, 5, 7), 0);
    ck_assert_int_eq(memcmp(out, a, 35), 0);
}
END_TEST

START_TEST(test_classes_and_caps) {
    uint8_t m[16];
    ck_assert_int_eq(ds_parse_classes("0,3-5,9", m, 16), 0);
    const uint8_t want[16] = {1, 0, 0, 1, 1, 1, 0, 0, 0, 1};
    ck_assert_int_eq(memcmp(m, want, 16), 0);
    ck_assert_int_eq(ds_parse_classes("3,", m, 16), ERR_USAGE);
    ck_assert_int_eq(ds_parse_classes("x", m, 16), ERR_USAGE);
    ck_assert_int_eq(ds_parse_classes("20", m, 16), ERR_USAGE);
    ck_assert_int_eq(ds_check_size("f", (int64_t)1 << 31, 1, 1 << 16, 1 << 16), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "f:"));
    ck_assert_int_eq(ds_check_size("f", 10, 1, 0, 5), ERR_INPUT);
    ck_assert_int_eq(ds_check_size("f", 10, 3, 32, 32), 0);
}
END_TEST

// --- PNG / JPEG decoding and image lists ---------------------------------------------------

START_TEST(test_decode_png_variants) {
    uint8_t rgba[3 * 5 * 4], ga[3 * 5 * 2], idx[3 * 5], cmap[4 * 3];
    for (int i = 0; i < 60; i++) rgba[i] = (uint8_t)(i * 11 + 1);
    for (int i = 0; i < 30; i++) ga[i] = (uint8_t)(i * 5 + 2);
    for (int i = 0; i < 15; i++) idx[i] = (uint8_t)(i % 4);
    for (int i = 0; i < 12; i++) cmap[i] = (uint8_t)(i * 20 + 5);
    tu_write_png(tu_path("rgba.png"), rgba, 3, 5, PNG_FORMAT_RGBA, NULL, 0);
    tu_write_png(tu_path("ga.png"), ga, 3, 5, PNG_FORMAT_GA, NULL, 0);
    tu_write_png(tu_path("pal.png"), idx, 3, 5, PNG_FORMAT_RGB_COLORMAP, cmap, 4);
    uint8_t *px = NULL;
    int c, h, w;
    ck_assert_int_eq(imglist_decode_file(tu_path("rgba.png"), &px, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 3 && w == 5);
    for (int ch = 0; ch < 4; ch++)
        for (int p = 0; p < 15; p++) ck_assert_uint_eq(px[ch * 15 + p], rgba[p * 4 + ch]);
    uint8_t rgb[45];
    ck_assert_int_eq(ds_convert_channels(rgb, 3, px, 4, 3, 5), 0); // alpha dropped
    ck_assert_int_eq(memcmp(rgb, px, 45), 0);
    free(px);
    ck_assert_int_eq(imglist_decode_file(tu_path("ga.png"), &px, &c, &h, &w), 0);
    ck_assert(c == 2 && h == 3 && w == 5);
    for (int p = 0; p < 15; p++) ck_assert_uint_eq(px[p], ga[p * 2]);
    free(px);
    ck_assert_int_eq(imglist_decode_file(tu_path("pal.png"), &px, &c, &h, &w), 0);
    ck_assert(c == 3 && h == 3 && w == 5);
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < 15; p++) ck_assert_uint_eq(px[ch * 15 + p], cmap[idx[p] * 3 + ch]);
    free(px);
    // truncated PNG: corrupt, naming the file
    size_t n;
    uint8_t *buf = tu_read_file(tu_path("rgba.png"), &n);
    tu_write_file(tu_path("cut.png"), buf, n - 16);
    free(buf);
    ck_assert_int_eq(imglist_decode_file(tu_path("cut.png"), &px, &c, &h, &w), ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "cut.png"));
    // a tiny PNG whose header claims 100000 x 100000 RGB: refused before allocating
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[4 + 4 + 13 + 4], idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    put_be32(ihdr, 13);
    memcpy(ihdr + 4, "IHDR", 4);
    put_be32(ihdr + 8, 100000);
    put_be32(ihdr + 12, 100000);
    ihdr[16] = 8, ihdr[17] = 2, ihdr[18] = ihdr[19] = ihdr[20] = 0;
    put_be32(ihdr + 21, (uint32_t)crc32(0, ihdr + 4, 17));
    put_be32(idat + 8, (uint32_t)crc32(0, idat + 4, 4));
    FILE *f = fopen(tu_path("huge.png"), "wb");
    fwrite(sig, 1, 8, f);
    fwrite(ihdr, 1, sizeof ihdr, f);
    fwrite(idat, 1, sizeof idat, f);
    fclose(f);
    ck_assert_int_eq(imglist_decode_file(tu_path("huge.png"), &px, &c, &h, &w), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "huge.png"));
    ck_assert_ptr_nonnull(strstr(err_msg(), "too large"));
    // neither PNG nor JPEG
    tu_put("x.gif", "GIF89a.....");
    ck_assert_int_eq(imglist_decode_file(tu_path("x.gif"), &px, &c, &h, &w), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "x.gif"));
}
END_TEST

START_TEST(test_decode_jpeg) {
    uint8_t g[16 * 16];
    for (int i = 0; i < 256; i++) g[i] = (uint8_t)(64 + (i % 16) * 4 + (i / 16) * 3);
    tu_write_jpeg(tu_path("g.jpg"), g, 16, 16, 1);
    uint8_t *px = NULL;
    int c, h, w;
    ck_assert_int_eq(imglist_decode_file(tu_path("g.jpg"), &px, &c, &h, &w), 0);
    ck_assert(c == 1 && h == 16 && w == 16);
    for (int i = 0; i < 256; i++) ck_assert_int_le(abs((int)px[i] - g[i]), 3);
    free(px);
    // truncated: refused (libjpeg alone would pad with grey)
    size_t n;
    uint8_t *buf = tu_read_file(tu_path("g.jpg"), &n);
    tu_write_file(tu_path("cut.jpg"), buf, n / 2);
    free(buf);
    ck_assert_int_eq(imglist_decode_file(tu_path("cut.jpg"), &px, &c, &h, &w), ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "cut.jpg"));
}
END_TEST

START_TEST(test_imglist_parse) {
    tu_put("l.txt", "a/b c.png 3\r\n\nx.png -1\n");
    imglist l;
    ck_assert_int_eq(imglist_read(&l, tu_path("l.txt"), "/root"), ERR_INPUT); // "c.png 3" is no label
    ck_assert_ptr_nonnull(strstr(err_msg(), "l.txt:1"));
    imglist_free(&l);
    tu_put("l.txt", "a/b.png 3\r\n\nx.png -1\n");
    ck_assert_int_eq(imglist_read(&l, tu_path("l.txt"), "/root"), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.items[0].path, "/root/a/b.png");
    ck_assert_int_eq(l.items[0].label, 3);
    ck_assert_int_eq(l.items[1].label, -1);
    ck_assert_int_eq(l.items[1].line, 3);
    imglist_free(&l);
    tu_put("l.txt", "x.png -2\n");
    ck_assert_int_eq(imglist_read(&l, tu_path("l.txt"), NULL), ERR_INPUT);
    imglist_free(&l);
}
END_TEST

Suite *suite_datasets(void) {
    Suite *s = suite_create("datasets");
    TCase *tc = tcase_create("readers");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_idx_raw_and_gzip);
    tcase_add_test(tc, test_idx_bad_inputs);
    tcase_add_test(tc, test_idx_truncated_gzip);
    tcase_add_test(tc, test_mnistjson_layout);
    tcase_add_test(tc, test_mnistjson_783);
    tcase_add_test(tc, test_cifar_10_and_100);
    tcase_add_test(tc, test_npy_layouts);
    tcase_add_test(tc, test_pad_and_channels);
    tcase_add_test(tc, test_resize_matches_pil);
    tcase_add_test(tc, test_classes_and_caps);
    tcase_add_test(tc, test_decode_png_variants);
    tcase_add_test(tc, test_decode_jpeg);
    tcase_add_test(tc, test_imglist_parse);
    suite_add_tcase(s, tc);
    return s;
}
