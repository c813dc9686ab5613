// End-to-end tests of $DIFFOOD_BIN/extract-features on a tiny image store and a classifier
// trained in the test (train --config tiny), and on samples stores built here with the store
// API: the records equal the classifier's output, up to date, incremental (--limit, more
// repeats), --shard, resume after SIGKILL bit for bit, SIGINT commits and exits 3, and clear
// refusals of bad inputs.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/stage.h"
#include "common/store.h"
#include "common/train/ckpt.h"
#include "tests/test_train_util.h"
#include "tests/test_util.h"

#define FT_N 60 // images of the tiny store (1 x 16 x 16)

static const char *const ft_env[] = {"DIFFOOD_PROGRESS_INTERVAL=0", NULL};

static void ft_setup(void) {
    trt_setup();
    trt_make_store(trt_path("data"), FT_N, 1, 16, 1);
    const char *args[] = {"--model", "classifier", "--data", trt_path("data"), "--out", trt_path("cls"), "--config",
                          "tiny", "--threads", "1", "--set", "train_classifier.batch=8", "--quiet", NULL};
    ck_assert_msg(trt_run(args) == 0, "train classifier failed: %s", trt_stderr());
}

// Runs extract-features --classifier cls --out OUT --threads 1 plus `more` (NULL-terminated).
static int ft_run(const char *out, const char *const *more) {
    const char *args[64] = {"--classifier", trt_path("cls"), "--out", out, "--threads", "1"};
    int n = 6;
    for (int i = 0; more && more[i]; i++) args[n++] = more[i];
    args[n] = NULL;
    return tu_run("extract-features", args, ft_env);
}

static pid_t ft_start(const char *out, const char *const *more) {
    const char *args[64] = {"--classifier", trt_path("cls"), "--out", out, "--threads", "1"};
    int n = 6;
    for (int i = 0; more && more[i]; i++) args[n++] = more[i];
    args[n] = NULL;
    return tu_start("extract-features", args, ft_env);
}

static uint64_t ft_count(const char *path, const char *table) {
    ts_store *s = NULL;
    uint64_t n = 0;
    if (ts_open(&s, path, TS_RDONLY) < 0) return 0;
    if (ts_count(s, table, &n) < 0) n = 0;
    ts_close(s);
    return n;
}

static char *ft_meta(const char *path, const char *key) {
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    char *t = tu_meta(s, key);
    ts_close(s);
    return t;
}

static void ft_assert_meta(const char *path, const char *key, const char *want) {
    char *t = ft_meta(path, key);
    ck_assert_msg(t && strcmp(t, want) == 0, "%s: meta %s is '%s', expected '%s'", path, key, t ? t : "(none)", want);
    free(t);
}

static double ft_computed(void) {
    cJSON *j = cJSON_Parse(trt_stdout());
    ck_assert_msg(j != NULL, "no JSON summary: %s", trt_stdout());
    double v = cJSON_GetObjectItem(j, "computed") ? cJSON_GetObjectItem(j, "computed")->valuedouble : -1;
    cJSON_Delete(j);
    return v;
}

// A samples store at `path` (images [b, e) of the data store, levels {0, 40}, `reps` repeats) as
// the sample stage writes it; the sample values are a deterministic function of (i, l, r).
static void ft_make_samples(const char *path, int b, int e, int reps, const char *cls_key) {
    char ikey[HASH_HEX_LEN + 1], req[200];
    ck_assert_int_eq(stage_input_key(trt_path("data"), ikey), 0);
    snprintf(req, sizeof req, "{\"begin\":%d,\"end\":%d,\"levels\":[0,40],\"repeats\":%d}", b, e, reps);
    stage_id id = {"sample", 1, "{}", "{}", req};
    ts_store *s = NULL;
    stage_state st;
    ck_assert_int_eq(stage_open_output(&s, path, &id, 1, &st), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    float x[256];
    int levels[2] = {0, 40};
    for (int i = b; i < e; i++)
        for (int l = 0; l < 2; l++)
            for (int r = 0; r < reps; r++) {
                uint32_t v[3] = {(uint32_t)i, (uint32_t)levels[l], (uint32_t)r};
                for (int p = 0; p < 256; p++) x[p] = (float)(((i * 7 + p * 13 + l * 5 + r * 11) % 97) / 96.0);
                ts_key k;
                ts_tensor t;
                int64_t shape[3] = {1, 16, 16};
                ts_key_tuple(&k, 3, v);
                ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 3, shape, x), 0);
                ck_assert_int_eq(ts_put(s, "sample", &k, &t, TS_CODEC_SHUFFLE_ZSTD), 0);
            }
    ck_assert_int_eq(ts_meta_put(s, "request", req), 0);
    ck_assert_int_eq(ts_meta_put(s, "images", trt_path("data")), 0);
    ck_assert_int_eq(ts_meta_put(s, "images_key", ikey), 0);
    ck_assert_int_eq(ts_meta_put(s, "classifier_key", cls_key), 0);
    ck_assert_int_eq(ts_meta_put(s, "cache_key", "0123456789abcdef0123456789abcdef"), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
}

static void ft_cls_key(char key[HASH_HEX_LEN + 1]) { ck_assert_int_eq(stage_input_key(trt_path("cls"), key), 0); }

// --- tests ------------------------------------------------------------------------------------

START_TEST(test_features_images_and_up_to_date) {
    const char *out = trt_path("f");
    const char *more[] = {"--images", trt_path("data"), "--set", "features.batch=16", NULL};
    ck_assert_msg(ft_run(out, more) == 0, "%s", trt_stderr());
    ck_assert_int_eq((int)ft_computed(), FT_N);
    ck_assert_int_eq((int)ft_count(out, "logit"), FT_N);
    ck_assert_int_eq((int)ft_count(out, "feature"), FT_N);
    ck_assert_int_eq((int)ft_count(out, "label"), FT_N);
    char key[HASH_HEX_LEN + 1];
    ft_cls_key(key);
    ft_assert_meta(out, "complete", "true");
    ft_assert_meta(out, "classifier_key", key);
    ft_assert_meta(out, "classifier", trt_path("cls"));
    ft_assert_meta(out, "num_classes", "10");
    ft_assert_meta(out, "feature_dim", "32");
    ft_assert_meta(out, "source", "images");
    ft_assert_meta(out, "set", "data");
    ft_assert_meta(out, "n", "60");
    ft_assert_meta(out, "request", "{\"begin\":0,\"end\":60}");

    // the records are the classifier's output on the image, and the labels are copied
    ops_ctx *ctx = NULL;
    ops_options oo = ops_options_default();
    oo.threads = 1;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    ckpt_classifier c;
    ck_assert_int_eq(ckpt_classifier_open(&c, trt_path("cls"), ctx, 1, 16, 16), 0);
    uint8_t *u8 = calloc(16, 256);
    float *lg = malloc(sizeof(float) * 16 * 10), *ft = malloc(sizeof(float) * 16 * 32);
    ts_store *img = NULL, *f = NULL;
    ck_assert_int_eq(ts_open(&img, trt_path("data"), TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&f, out, TS_RDONLY), 0);
    for (int i = 0; i < FT_N; i += 17) {
        ts_key k;
        ts_tensor t, tl, tf, lab;
        ts_key_u64(&k, (uint64_t)i);
        ck_assert_int_eq(ts_get(img, "image", &k, &t), 0);
        // image i sits in slot i % batch of a batch of 16 (the other slots do not matter)
        memset(u8, 0, 16 * 256);
        memcpy(u8 + (i % 16) * 256, t.data, 256);
        ck_assert_int_eq(ckpt_classifier_run(&c, u8, NULL, 16, lg, ft), 0);
        ck_assert_int_eq(ts_get(f, "logit", &k, &tl), 0);
        ck_assert_int_eq(ts_get(f, "feature", &k, &tf), 0);
        ck_assert_int_eq(ts_get(f, "label", &k, &lab), 0);
        ck_assert_int_eq((int)ts_tensor_numel(&tl), 10);
        ck_assert_int_eq((int)ts_tensor_numel(&tf), 32);
        ck_assert_int_eq(memcmp(tl.data, lg + (i % 16) * 10, sizeof(float) * 10), 0);
        ck_assert_int_eq(memcmp(tf.data, ft + (i % 16) * 32, sizeof(float) * 32), 0);
        ck_assert_int_eq(*(int32_t *)lab.data, i % 10);
        ts_tensor_free(&t);
        ts_tensor_free(&tl);
        ts_tensor_free(&tf);
        ts_tensor_free(&lab);
    }
    free(u8);
    free(lg);
    free(ft);
    ts_close(img);
    ts_close(f);
    ckpt_classifier_close(&c);
    ops_ctx_destroy(ctx);

    // rerun: no work, says so, fast
    double t0 = tu_now();
    ck_assert_int_eq(ft_run(out, more), 0);
    double dt = tu_now() - t0;
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "up to date"));
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"status\":\"up to date\""));
    ck_assert_msg(dt < 0.5, "up-to-date rerun took %.3f s", dt);
    // another batch size gives other numbers (kernels sum by batch size): refused without --force
    const char *more2[] = {"--images", trt_path("data"), "--set", "features.batch=5", NULL};
    ck_assert_int_eq(ft_run(out, more2), 2);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "--force"));
}
END_TEST

START_TEST(test_features_limit_incremental_and_shard) {
    const char *inc = trt_path("inc"), *full = trt_path("full");
    const char *m20[] = {"--images", trt_path("data"), "--limit", "20", "--set", "features.batch=8", NULL};
    ck_assert_msg(ft_run(inc, m20) == 0, "%s", trt_stderr());
    ck_assert_int_eq((int)ft_count(inc, "logit"), 20);
    const char *m45[] = {"--images", trt_path("data"), "--limit", "45", "--set", "features.batch=8", NULL};
    ck_assert_msg(ft_run(inc, m45) == 0, "%s", trt_stderr());
    ck_assert_int_eq((int)ft_computed(), 25); // only the new images
    ck_assert_int_eq((int)ft_count(inc, "logit"), 45);
    ft_assert_meta(inc, "complete", "true");
    ft_assert_meta(inc, "request", "{\"begin\":0,\"end\":45}");
    const char *m45b[] = {"--images", trt_path("data"), "--limit", "45", "--set", "features.batch=8", NULL};
    ck_assert_msg(ft_run(full, m45b) == 0, "%s", trt_stderr());
    ck_assert(trt_tables_equal(inc, full, "logit"));
    ck_assert(trt_tables_equal(inc, full, "feature"));
    ck_assert(trt_tables_equal(inc, full, "label"));
    // a smaller limit asks for less: nothing computed, the store says what it is complete for
    ck_assert_int_eq(ft_run(inc, m20), 0);
    ck_assert_int_eq((int)ft_computed(), 0);
    ft_assert_meta(inc, "request", "{\"begin\":0,\"end\":20}");

    // --shard 1/3 of 60 images: [20, 40); with --limit 30, 2/3: [20, 30)
    const char *sh[] = {"--images", trt_path("data"), "--shard", "1/3", NULL};
    const char *sh2[] = {"--images", trt_path("data"), "--shard", "2/3", "--limit", "30", NULL};
    ck_assert_msg(ft_run(trt_path("s1"), sh) == 0, "%s", trt_stderr());
    ck_assert_msg(ft_run(trt_path("s2"), sh2) == 0, "%s", trt_stderr());
    ft_assert_meta(trt_path("s1"), "request", "{\"begin\":20,\"end\":40,\"shard\":[1,3]}");
    ft_assert_meta(trt_path("s2"), "request", "{\"begin\":20,\"end\":30,\"shard\":[2,3]}");
    ck_assert_int_eq((int)ft_count(trt_path("s1"), "logit"), 20);
    ts_store *s = NULL;
    ts_key k;
    ck_assert_int_eq(ts_open(&s, trt_path("s1"), TS_RDONLY), 0);
    ts_key_u64(&k, 19);
    ck_assert_int_eq(ts_has(s, "logit", &k), 0);
    ts_key_u64(&k, 20);
    ck_assert_int_eq(ts_has(s, "logit", &k), 1);
    ts_key_u64(&k, 39);
    ck_assert_int_eq(ts_has(s, "logit", &k), 1);
    ts_close(s);
    const char *bad[] = {"--images", trt_path("data"), "--shard", "3/3", NULL};
    ck_assert_int_eq(ft_run(trt_path("s3"), bad), 2);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "--shard"));
}
END_TEST

// Waits until `out` holds at least `n` logit records (or the child is gone): 1 when reached.
static int ft_wait_records(const char *out, const char *table, uint64_t n, pid_t pid) {
    for (int i = 0; i < 20000; i++) {
        if (ft_count(out, table) >= n) return 1;
        if (kill(pid, 0) != 0) return 0;
        usleep(1000);
    }
    return 0;
}

START_TEST(test_features_sigkill_resume_and_sigint) {
    trt_make_store(trt_path("big"), 4000, 1, 16, 1);
    const char *more[] = {"--images", trt_path("big"), "--set", "features.batch=2", NULL};
    const char *ref = trt_path("ref"), *out = trt_path("k");
    ck_assert_msg(ft_run(ref, more) == 0, "%s", trt_stderr());

    pid_t pid = ft_start(out, more);
    ck_assert_msg(ft_wait_records(out, "logit", 100, pid), "the run ended before it could be killed");
    kill(pid, SIGKILL);
    ck_assert_int_eq(tu_wait(pid), 128 + SIGKILL);
    tu_assert_not_complete(out);
    uint64_t had = ft_count(out, "logit");
    ck_assert(had >= 100 && had < 4000);
    ck_assert_msg(ft_run(out, more) == 0, "%s", trt_stderr());
    ck_assert_int_eq((uint64_t)ft_computed(), 4000 - had);
    ck_assert(trt_tables_equal(ref, out, "logit"));
    ck_assert(trt_tables_equal(ref, out, "feature"));
    ck_assert(trt_tables_equal(ref, out, "label"));

    const char *outi = trt_path("i");
    pid = ft_start(outi, more);
    ck_assert_msg(ft_wait_records(outi, "logit", 100, pid), "the run ended before it could be interrupted");
    kill(pid, SIGINT);
    ck_assert_int_eq(tu_wait(pid), 3);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "interrupted"));
    tu_assert_not_complete(outi);
    had = ft_count(outi, "logit");
    ck_assert(had % 2 == 0 && had < 4000); // whole batches
    ck_assert_msg(ft_run(outi, more) == 0, "%s", trt_stderr());
    ck_assert(trt_tables_equal(ref, outi, "feature"));
}
END_TEST

START_TEST(test_features_samples_incremental) {
    char key[HASH_HEX_LEN + 1];
    ft_cls_key(key);
    const char *smp = trt_path("smp"), *out = trt_path("fs"), *full = trt_path("fs-full");
    ft_make_samples(smp, 10, 30, 2, key);
    const char *more[] = {"--samples", smp, "--set", "features.batch=6", NULL};
    ck_assert_msg(ft_run(out, more) == 0, "%s", trt_stderr());
    ck_assert_int_eq((int)ft_computed(), 20 + 20 * 2 * 2);
    ck_assert_int_eq((int)ft_count(out, "logit"), 20);
    ck_assert_int_eq((int)ft_count(out, "label"), 20);
    ck_assert_int_eq((int)ft_count(out, "sample_logit"), 80);
    ck_assert_int_eq((int)ft_count(out, "sample_feature"), 80);
    ft_assert_meta(out, "source", "samples");
    ft_assert_meta(out, "levels", "[0,40]");
    ft_assert_meta(out, "repeats", "2");
    ft_assert_meta(out, "n", "20");
    ft_assert_meta(out, "request", "{\"begin\":10,\"end\":30,\"levels\":[0,40],\"repeats\":2}");

    // a sample's record is the classifier's output on the float sample
    ops_ctx *ctx = NULL;
    ops_options oo = ops_options_default();
    oo.threads = 1;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    ckpt_classifier c;
    ck_assert_int_eq(ckpt_classifier_open(&c, trt_path("cls"), ctx, 1, 16, 6), 0);
    ts_store *ss = NULL, *fs = NULL;
    ck_assert_int_eq(ts_open(&ss, smp, TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&fs, out, TS_RDONLY), 0);
    uint32_t v[3] = {17, 40, 1};
    ts_key k;
    ts_tensor t, tl;
    float lg[6 * 10], x[6 * 256] = {0};
    ts_key_tuple(&k, 3, v);
    ck_assert_int_eq(ts_get(ss, "sample", &k, &t), 0);
    memcpy(x + (17 % 6) * 256, t.data, sizeof(float) * 256); // slot 17 % batch
    ck_assert_int_eq(ckpt_classifier_run(&c, NULL, x, 6, lg, NULL), 0);
    ck_assert_int_eq(ts_get(fs, "sample_logit", &k, &tl), 0);
    ck_assert_int_eq(memcmp(tl.data, lg + (17 % 6) * 10, sizeof(float) * 10), 0);
    ts_tensor_free(&t);
    ts_tensor_free(&tl);
    ts_close(ss);
    ts_close(fs);
    ckpt_classifier_close(&c);
    ops_ctx_destroy(ctx);

    // the samples store grows to 3 repeats: only the new repeat is computed
    ft_make_samples(smp, 10, 30, 3, key);
    ck_assert_msg(ft_run(out, more) == 0, "%s", trt_stderr());
    ck_assert_int_eq((int)ft_computed(), 20 * 2);
    ck_assert_int_eq((int)ft_count(out, "sample_logit"), 120);
    ft_assert_meta(out, "repeats", "3");
    ck_assert_int_eq(ft_run(out, more), 0);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "up to date"));
    const char *more1[] = {"--samples", smp, "--set", "features.batch=6", NULL};
    ck_assert_msg(ft_run(full, more1) == 0, "%s", trt_stderr());
    const char *tables[] = {"logit", "feature", "label", "sample_logit", "sample_feature"};
    for (int i = 0; i < 5; i++) ck_assert_msg(trt_tables_equal(out, full, tables[i]), "table %s differs", tables[i]);
    // --limit cuts the samples' range from its begin
    const char *lim[] = {"--samples", smp, "--limit", "5", NULL};
    ck_assert_msg(ft_run(trt_path("fl"), lim) == 0, "%s", trt_stderr());
    ft_assert_meta(trt_path("fl"), "request", "{\"begin\":10,\"end\":15,\"levels\":[0,40],\"repeats\":3}");
    ck_assert_int_eq((int)ft_count(trt_path("fl"), "sample_logit"), 30);
}
END_TEST

START_TEST(test_features_refusals) {
    char err[4096];
    const char *cls = trt_path("cls");
    // another classifier's samples
    ft_make_samples(trt_path("other"), 0, 4, 1, "ffffffffffffffffffffffffffffffff");
    const char *a1[] = {"--classifier", cls, "--samples", trt_path("other"), "--out", trt_path("o1"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a1, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "another classifier"));
    ck_assert_ptr_nonnull(strstr(err, "ffffffffffffffffffffffffffffffff"));
    ck_assert_ptr_nonnull(strstr(err, cls));
    // a missing classifier, a missing image store
    const char *a2[] = {"--classifier", trt_path("none"), "--images", trt_path("data"), "--out", trt_path("o2"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a2, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, trt_path("none")));
    const char *a3[] = {"--classifier", cls, "--images", trt_path("none"), "--out", trt_path("o3"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a3, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, trt_path("none")));
    // channel mismatch: 3-channel images for a 1-channel classifier
    trt_make_store(trt_path("rgb"), 4, 3, 16, 1);
    const char *a4[] = {"--classifier", cls, "--images", trt_path("rgb"), "--out", trt_path("o4"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a4, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, trt_path("rgb")));
    ck_assert_ptr_nonnull(strstr(err, "channels"));
    // an incomplete input store (images, samples)
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, trt_path("rgb"), 0), 0);
    ck_assert_int_eq(ts_meta_put(s, "complete", "false"), 0);
    ts_close(s);
    ck_assert_int_eq(tu_run_stderr("extract-features", a4, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "incomplete"));
    ck_assert_int_eq(ts_open(&s, trt_path("other"), 0), 0);
    ck_assert_int_eq(ts_meta_put(s, "complete", "false"), 0);
    ts_close(s);
    ck_assert_int_eq(tu_run_stderr("extract-features", a1, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "incomplete"));
    ck_assert_ptr_nonnull(strstr(err, trt_path("other")));
    // a denoiser is no classifier
    const char *a5[] = {"--classifier", trt_path("data"), "--images", trt_path("data"), "--out", trt_path("o5"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a5, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "not a classifier checkpoint"));
    // usage: both inputs, neither
    const char *a6[] = {"--classifier", cls, "--images", trt_path("data"), "--samples", trt_path("other"), "--out",
                        trt_path("o6"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a6, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "exactly one"));
    // an output store of other inputs is refused without --force
    const char *a7[] = {"--classifier", cls, "--images", trt_path("data"), "--out", trt_path("o7"), "--limit", "3", NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a7, err, sizeof err), 0);
    trt_make_store(trt_path("data2"), 5, 1, 16, 1);
    const char *a8[] = {"--classifier", cls, "--images", trt_path("data2"), "--out", trt_path("o7"), NULL};
    ck_assert_int_eq(tu_run_stderr("extract-features", a8, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--force"));
}
END_TEST

Suite *suite_features(void) {
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("features");
    tcase_add_checked_fixture(tc, ft_setup, trt_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_features_images_and_up_to_date);
    tcase_add_test(tc, test_features_limit_incremental_and_shard);
    tcase_add_test(tc, test_features_sigkill_resume_and_sigint);
    tcase_add_test(tc, test_features_samples_incremental);
    tcase_add_test(tc, test_features_refusals);
    suite_add_tcase(s, tc);
    return s;
}
