// End-to-end tests of bin/ingest ($DIFFOOD_BIN) on small files written here in the real
// formats: CIFAR-10 binary, image lists of PNG and JPEG images (crop, resize, channels, missing
// and corrupt images) and NPY arrays (HWC layout, int64 labels, --channels, --set ingest.pad).
// The real datasets and the stage contract are in test_ingest.c.
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/npy.h"
#include "common/store.h"
#include "datasets/ds.h"
#include "tests/test_util.h"

static char errbuf[8192];

// Runs ingest to the end; returns its exit status; its stderr is in errbuf.
static int run_ingest(const char *const *args) { return tu_run_stderr("ingest", args, errbuf, sizeof errbuf); }

// Runs ingest expecting exit 2, a message naming `name`, and no complete store.
static void expect_bad(const char *const *args, const char *out, const char *name) {
    int rc = run_ingest(args);
    ck_assert_msg(rc == 2, "exit %d, expected 2 (%s)", rc, errbuf);
    ck_assert_msg(strstr(errbuf, name) != NULL, "message does not name %s: %s", name, errbuf);
    tu_assert_not_complete(out);
}

// --- CIFAR and image lists written here ----------------------------------------------------

static void write_png(const char *path, const uint8_t *hwc, int h, int w, int c) {
    tu_write_png(path, hwc, h, w, c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB, NULL, 0);
}

static ts_tensor get_rec(ts_store *s, const char *table, uint64_t i) {
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, i);
    ck_assert_int_eq(ts_get(s, table, &k, &t), 0);
    return t;
}

START_TEST(test_cifar_and_imglist) {
    // CIFAR-10: 3 records in one file, 2 in another
    FILE *f = fopen(tu_path("a.bin"), "wb");
    for (int r = 0; r < 5; r++) {
        if (r == 3) {
            fclose(f);
            f = fopen(tu_path("b.bin"), "wb");
        }
        fputc(9 - r, f);
        for (int p = 0; p < 3072; p++) fputc((p * 3 + r * 17) & 255, f);
    }
    fclose(f);
    const char *out = tu_path("cifar.store");
    // several files after one --path
    const char *args[] = {"--format", "cifar", "--path", tu_path("a.bin"), tu_path("b.bin"), "--out", out, NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    for (int r = 0; r < 5; r++) {
        ts_tensor t = get_rec(s, "image", (uint64_t)r), l = get_rec(s, "label", (uint64_t)r);
        ck_assert(t.shape[0] == 3 && t.shape[1] == 32 && t.shape[2] == 32);
        for (int p = 0; p < 3072; p++) ck_assert_uint_eq(((uint8_t *)t.data)[p], (p * 3 + r * 17) & 255);
        ck_assert_int_eq(*(int32_t *)l.data, 9 - r);
        ts_tensor_free(&t);
        ts_tensor_free(&l);
    }
    ts_close(s);

    // image list: an RGB PNG 8 x 10, a grey PNG 10 x 8, an RGB JPEG 8 x 8; --size 8 crops the
    // centre (offset round(2/2) = 1) without resampling
    ck_assert_int_eq(mkdir(tu_path("img"), 0755), 0);
    uint8_t rgb[8 * 10 * 3], grey[10 * 8], jp[8 * 8 * 3];
    for (int i = 0; i < 240; i++) rgb[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 80; i++) grey[i] = (uint8_t)(i * 3);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            for (int c = 0; c < 3; c++) jp[(y * 8 + x) * 3 + c] = (uint8_t)(40 + 10 * x + 12 * y + 30 * c);
    write_png(tu_path("img/a.png"), rgb, 8, 10, 3);
    write_png(tu_path("img/b.png"), grey, 10, 8, 1);
    tu_write_jpeg(tu_path("img/c.jpg"), jp, 8, 8, 3);
    tu_put("list.txt", "img/a.png 3\nimg/b.png -1\r\n\nimg/c.jpg 0\n");
    const char *lout = tu_path("list.store");
    const char *largs[] = {"--format", "imglist", "--list", tu_path("list.txt"), "--root", tu_dir, "--size", "8",
                           "--out", lout, NULL};
    ck_assert_msg(run_ingest(largs) == 0, "ingest failed: %s", errbuf);
    ck_assert_int_eq(ts_open(&s, lout, TS_RDONLY), 0);
    ts_tensor a = get_rec(s, "image", 0), b = get_rec(s, "image", 1), c = get_rec(s, "image", 2);
    ck_assert(a.shape[0] == 3 && a.shape[1] == 8 && a.shape[2] == 8);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                ck_assert_uint_eq(((uint8_t *)a.data)[(ch * 8 + y) * 8 + x], rgb[(y * 10 + x + 1) * 3 + ch]);
                ck_assert_uint_eq(((uint8_t *)b.data)[(ch * 8 + y) * 8 + x], grey[(y + 1) * 8 + x]);
                int d = (int)((uint8_t *)c.data)[(ch * 8 + y) * 8 + x] - jp[(y * 8 + x) * 3 + ch];
                ck_assert_msg(abs(d) <= 6, "JPEG pixel (%d,%d,%d) off by %d", ch, y, x, d);
            }
    ts_tensor l1 = get_rec(s, "label", 1), l0 = get_rec(s, "label", 0);
    ck_assert_int_eq(*(int32_t *)l0.data, 3);
    ck_assert_int_eq(*(int32_t *)l1.data, -1);
    ts_tensor_free(&a);
    ts_tensor_free(&b);
    ts_tensor_free(&c);
    ts_tensor_free(&l0);
    ts_tensor_free(&l1);
    ts_close(s);
}
END_TEST

START_TEST(test_npy_channels_config) {
    // 4 grey images 6 x 5 in N x H x W x 1, labels int64; --channels 3 replicates, --set pads
    uint8_t a[4 * 6 * 5];
    for (int i = 0; i < 120; i++) a[i] = (uint8_t)(i * 2 + 1);
    int64_t lab[4] = {1, 0, 7, -1};
    ck_assert_int_eq(npy_save(tu_path("x.npy"), TS_U8, 4, (int64_t[]){4, 6, 5, 1}, a), 0);
    ck_assert_int_eq(npy_save(tu_path("y.npy"), TS_I64, 1, (int64_t[]){4}, lab), 0);
    const char *out = tu_path("npy.store");
    const char *args[] = {"--format", "npy", "--images", tu_path("x.npy"), "--labels", tu_path("y.npy"), "--channels", "3",
                          "--set", "ingest.pad=1", "--out", out, NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    for (int n = 0; n < 4; n++) {
        ts_tensor t = get_rec(s, "image", (uint64_t)n), l = get_rec(s, "label", (uint64_t)n);
        ck_assert(t.shape[0] == 3 && t.shape[1] == 8 && t.shape[2] == 7);
        const uint8_t *px = t.data;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 7; x++) {
                    int in = y >= 1 && y <= 6 && x >= 1 && x <= 5;
                    ck_assert_uint_eq(px[(ch * 8 + y) * 7 + x], in ? a[n * 30 + (y - 1) * 5 + x - 1] : 0);
                }
        ck_assert_int_eq(*(int32_t *)l.data, (int32_t)lab[n]);
        ts_tensor_free(&t);
        ts_tensor_free(&l);
    }
    char *cc = tu_meta(s, "class_counts"), *pad = tu_meta(s, "pad");
    ck_assert_str_eq(cc, "{\"-1\":1,\"0\":1,\"1\":1,\"7\":1}");
    ck_assert_str_eq(pad, "1");
    free(cc);
    free(pad);
    // mean/std over pixel/255 of the 4 stored images (3 equal channels, zero border)
    double sum = 0, sq = 0, cnt = 4 * 8 * 7;
    for (int n = 0; n < 4; n++)
        for (int i = 0; i < 30; i++) sum += a[n * 30 + i] / 255.0;
    double mean = sum / cnt;
    for (int n = 0; n < 4; n++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 7; x++) {
                int in = y >= 1 && y <= 6 && x >= 1 && x <= 5;
                double v = in ? a[n * 30 + (y - 1) * 5 + x - 1] / 255.0 : 0.0;
                sq += (v - mean) * (v - mean);
            }
    char *ms = tu_meta(s, "mean"), *ss = tu_meta(s, "std");
    cJSON *jm = cJSON_Parse(ms), *js = cJSON_Parse(ss);
    ck_assert_int_eq(cJSON_GetArraySize(jm), 3);
    for (int ch = 0; ch < 3; ch++) {
        ck_assert_double_eq_tol(cJSON_GetArrayItem(jm, ch)->valuedouble, mean, 1e-12);
        ck_assert_double_eq_tol(cJSON_GetArrayItem(js, ch)->valuedouble, sqrt(sq / cnt), 1e-12);
    }
    cJSON_Delete(jm);
    cJSON_Delete(js);
    free(ms);
    free(ss);
    ts_close(s);
}
END_TEST

START_TEST(test_imglist_resize) {
    // a 20 x 30 RGB PNG and --size 8: Resize(8) -> 8 x 12, CenterCrop(8) -> columns 2..9;
    // the expected pixels come from the library's resampler, itself checked against Pillow
    uint8_t hwc[20 * 30 * 3], chw[3 * 20 * 30], want[3 * 8 * 8];
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 30; x++)
            for (int c = 0; c < 3; c++) {
                uint8_t v = (uint8_t)((x * 9 + y * 13 + c * 70 + (x * y) % 7) & 255);
                hwc[(y * 30 + x) * 3 + c] = v;
                chw[(c * 20 + y) * 30 + x] = v;
            }
    ck_assert_int_eq(mkdir(tu_path("r"), 0755), 0);
    write_png(tu_path("r/big.png"), hwc, 20, 30, 3);
    tu_put("r.txt", "r/big.png 4\n");
    ck_assert_int_eq(ds_resize_center_crop(want, 8, chw, 3, 20, 30), 0);
    const char *out = tu_path("r.store");
    const char *args[] = {"--format", "imglist", "--list", tu_path("r.txt"), "--root", tu_dir, "--size", "8", "--out", out,
                          NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    ts_tensor t = get_rec(s, "image", 0);
    ck_assert(t.shape[0] == 3 && t.shape[1] == 8 && t.shape[2] == 8);
    ck_assert_int_eq(memcmp(t.data, want, sizeof want), 0);
    ts_tensor_free(&t);
    ts_close(s);
    // --channels 1: PIL's luminance of the same resize (convert first, then resize)
    const char *out1 = tu_path("r1.store");
    const char *args1[] = {"--format", "imglist", "--list", tu_path("r.txt"), "--root", tu_dir, "--size", "8",
                           "--channels", "1", "--out", out1, NULL};
    ck_assert_msg(run_ingest(args1) == 0, "ingest failed: %s", errbuf);
    uint8_t grey[20 * 30], want1[64];
    ck_assert_int_eq(ds_convert_channels(grey, 1, chw, 3, 20, 30), 0);
    ck_assert_int_eq(ds_resize_center_crop(want1, 8, grey, 1, 20, 30), 0);
    ck_assert_int_eq(ts_open(&s, out1, TS_RDONLY), 0);
    t = get_rec(s, "image", 0);
    ck_assert_int_eq(t.shape[0], 1);
    ck_assert_int_eq(memcmp(t.data, want1, sizeof want1), 0);
    ts_tensor_free(&t);
    ts_close(s);
}
END_TEST

START_TEST(test_imglist_bad) {
    const char *out = tu_path("bad.store");
    uint8_t buf[1 << 16];
    size_t n;
    FILE *f;
    // an image list naming a missing image, then a corrupt one
    ck_assert_int_eq(mkdir(tu_path("im"), 0755), 0);
    uint8_t px[4 * 4 * 3] = {0};
    write_png(tu_path("im/ok.png"), px, 4, 4, 3);
    tu_put("l1.txt", "im/ok.png 0\nim/missing.png 1\n");
    const char *l1[] = {"--format", "imglist", "--list", tu_path("l1.txt"), "--root", tu_dir, "--out", out, NULL};
    expect_bad(l1, out, "missing.png");
    ck_assert_ptr_nonnull(strstr(errbuf, "l1.txt:2"));
    f = fopen(tu_path("im/ok.png"), "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(tu_path("im/bad.png"), "wb");
    fwrite(buf, 1, n - 20, f);
    fclose(f);
    tu_put("l2.txt", "im/ok.png 0\nim/bad.png 1\n");
    const char *l2[] = {"--format", "imglist", "--list", tu_path("l2.txt"), "--root", tu_dir, "--out", out, NULL};
    expect_bad(l2, out, "bad.png");
}
END_TEST

Suite *suite_ingest_formats(void) {
    Suite *s = suite_create("ingest_formats");
    TCase *tc = tcase_create("formats");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cifar_and_imglist);
    tcase_add_test(tc, test_npy_channels_config);
    tcase_add_test(tc, test_imglist_resize);
    tcase_add_test(tc, test_imglist_bad);
    suite_add_tcase(s, tc);
    return s;
}
