// End-to-end tests of bin/sample ($DIFFOOD_BIN) on Fashion-MNIST test images with tiny trained
// networks (config tiny): the stage contract (up to date, SIGKILL/SIGTERM resume to identical
// records, incremental repeats/levels/images), the cache across experiments (no second copy),
// refusal of changed parameters, shards joined by dstore merge equal to an unsharded run, bad
// input (exit 2) and --generate.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>

#include "common/diffusion/denoise.h"
#include "common/err.h"
#include "common/rng.h"
#include "common/store.h"
#include "common/train/ckpt.h"
#include "tests/test_util.h"

// Networks and images shared by every test of the suite (made once, in the parent).
static char fx[256];

static const char *fx_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fx, name);
    return buf[k];
}

static void fx_setup(void) {
    snprintf(fx, sizeof fx, "/tmp/diffood-sample-fx-XXXXXX");
    if (!mkdtemp(fx)) abort();
    const char *bin = getenv("DIFFOOD_BIN");
    const char *F = "/usr/share/datasets/fashion-mnist";
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; B=%s; D=%s;"
             "$B/ingest --format idx --images %s/train-images-idx3-ubyte.gz --labels %s/train-labels-idx1-ubyte.gz "
             "--limit 600 --pad 2 --out $D/train.store --quiet >/dev/null;"
             "$B/ingest --format idx --images %s/t10k-images-idx3-ubyte.gz --labels %s/t10k-labels-idx1-ubyte.gz "
             "--limit 100 --pad 2 --out $D/test.store --quiet >/dev/null;"
             "$B/train --model classifier --data $D/train.store --out $D/cls.store --config tiny --threads 1 --quiet "
             ">/dev/null;"
             "$B/train --model classifier --data $D/train.store --out $D/cls12.store --config tiny --threads 1 "
             "--set resnet.num_classes=12 --quiet >/dev/null;"
             "$B/train --model diffusion --data $D/train.store --out $D/den.store --config tiny --threads 1 --quiet "
             ">/dev/null",
             bin, fx, F, F, F, F);
    if (system(cmd) != 0) {
        fprintf(stderr, "sample suite: fixture failed: %s\n", cmd);
        abort();
    }
}

static void fx_teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx);
    if (system(cmd) != 0) fprintf(stderr, "sample suite: could not remove %s\n", fx);
}

// Runs bin/sample on the shared networks with `extra` (NULL-terminated) into out; exit status.
static int run_sample(const char *out, const char *const *extra) {
    const char *args[64] = {"--images",    fx_path("test.store"), "--denoiser", fx_path("den.store"),
                            "--classifier", fx_path("cls.store"),  "--out",      out,
                            "--config",    "tiny",                "--threads",  "1"};
    int n = 12;
    for (int i = 0; extra && extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    return tu_run("sample", args, NULL);
}

// "computed" of the last run's JSON summary (-1 when absent).
static long last_computed(void) {
    static char buf[8192];
    tu_read_text(tu_path("stdout.txt"), buf, sizeof buf);
    const char *p = strstr(buf, "\"computed\":");
    return p ? atol(p + 11) : -1;
}

static const char *last_stderr(void) {
    static char buf[16384];
    return tu_read_text(tu_path("stderr.txt"), buf, sizeof buf);
}

// 0 when `dstore diff a b` finds them equal.
static int stores_differ(const char *a, const char *b) {
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s/dstore diff '%s' '%s'", tu_bin(), a, b);
    int st = tu_capture(cmd, out, sizeof out);
    if (st != 0) fprintf(stderr, "dstore diff %s %s:\n%s\n", a, b, out);
    return st;
}

static uint64_t count_records(const char *path, const char *table) {
    ts_store *s = NULL;
    uint64_t n = 0;
    if (ts_open(&s, path, TS_RDONLY) < 0) return 0; // not there yet (or being created)
    if (ts_count(s, table, &n) < 0) n = 0;
    ts_close(s);
    return n;
}

#define LV2 "--set", "sample.timesteps=[0,40]"

START_TEST(test_sample_up_to_date_and_incremental) {
    const char *out = tu_path("s.store");
    const char *a1[] = {"--limit", "12", LV2, "--set", "sample.repeats=2", NULL};
    ck_assert_int_eq(run_sample(out, a1), 0);
    ck_assert_int_eq(last_computed(), 12 * 2 * 2);
    double t0 = tu_now();
    ck_assert_int_eq(run_sample(out, a1), 0);
    ck_assert_double_lt(tu_now() - t0, 1.0);
    ck_assert_int_eq(last_computed(), 0);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "up to date"));
    // repeats 2 -> 4: only repeats 2 and 3
    const char *a2[] = {"--limit", "12", LV2, "--set", "sample.repeats=4", NULL};
    ck_assert_int_eq(run_sample(out, a2), 0);
    ck_assert_int_eq(last_computed(), 12 * 2 * 2);
    // one more level: only that level
    const char *a3[] = {"--limit", "12", "--set", "sample.timesteps=[0,40,80]", "--set", "sample.repeats=4", NULL};
    ck_assert_int_eq(run_sample(out, a3), 0);
    ck_assert_int_eq(last_computed(), 12 * 4);
    // more images: only the new ones
    const char *a4[] = {"--limit", "16", "--set", "sample.timesteps=[0,40,80]", "--set", "sample.repeats=4", NULL};
    ck_assert_int_eq(run_sample(out, a4), 0);
    ck_assert_int_eq(last_computed(), 4 * 3 * 4);
    ck_assert_uint_eq(count_records(out, "sample"), 16 * 3 * 4);
    ck_assert_uint_eq(count_records(out, "pred"), 16);
    // the grown store equals one computed in one go
    const char *a5[] = {"--limit", "16", "--set", "sample.timesteps=[0,40,80]", "--set", "sample.repeats=4", NULL};
    ck_assert_int_eq(run_sample(tu_path("one.store"), a5), 0);
    ck_assert_int_eq(stores_differ(out, tu_path("one.store")), 0);
    // another batch size is another store (the kernels' last bits depend on it)
    const char *a6[] = {"--limit", "16", "--set", "sample.timesteps=[0,40,80]", "--set", "sample.repeats=4",
                        "--set", "sample.batch=5", NULL};
    ck_assert_int_eq(run_sample(out, a6), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "batch"));
}
END_TEST

// The records are what METHOD.md 7 says, not only equal across runs: pred is [argmax, max softmax]
// of the classifier's best weights on the clean image; a level-0 record is the noised image
// clamp(x_t / 2 + 1/2) with the repeat's own noise (no denoising step); a level-40 record is the
// guided DDIM sample of that image and noise with guidance on the predicted label (dn_run on the
// same fixed block of sample.batch = 16 images, so bit for bit), and not with another label.
START_TEST(test_sample_records_are_the_method) {
    const char *out = tu_path("m.store");
    const char *a[] = {"--limit", "16", "--set", "sample.timesteps=[0,40]", "--set", "sample.repeats=2", NULL};
    ck_assert_int_eq(run_sample(out, a), 0);
    enum { G = 16, P = 32 * 32, NPRED = 64 };
    ops_ctx *ctx = NULL;
    ops_options oo = ops_options_default();
    oo.threads = 1;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    ts_store *img = NULL, *s = NULL;
    ck_assert_int_eq(ts_open(&img, fx_path("test.store"), TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    static uint8_t u8[NPRED * P];
    for (int i = 0; i < NPRED; i++) { // the classifier runs on the store's first block of 64
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, (uint64_t)i);
        ck_assert_int_eq(ts_get_into(img, "image", &k, &t, u8 + (size_t)i * P, P), 0);
    }
    ckpt_classifier c;
    ck_assert_msg(ckpt_classifier_open(&c, fx_path("cls.store"), ctx, 1, 32, NPRED) == 0, "%s", err_msg());
    int K = ckpt_classifier_classes(&c);
    float *lg = malloc(sizeof(float) * NPRED * (size_t)K);
    ck_assert_int_eq(ckpt_classifier_run(&c, u8, NULL, NPRED, lg, NULL), 0);
    int32_t pred[G];
    for (int i = 0; i < G; i++) {
        const float *l = lg + (size_t)i * K;
        int best = 0;
        double z = 0;
        for (int k = 1; k < K; k++) best = l[k] > l[best] ? k : best;
        for (int k = 0; k < K; k++) z += exp((double)l[k] - l[best]);
        ts_key k;
        ts_tensor t;
        float v[2];
        ts_key_u64(&k, (uint64_t)i);
        ck_assert_int_eq(ts_get_into(s, "pred", &k, &t, v, sizeof v), 0);
        ck_assert_msg(v[0] == (float)best, "image %d: pred %g, the classifier's argmax %d", i, (double)v[0], best);
        ck_assert_msg(fabs(v[1] - 1.0 / z) < 1e-6, "image %d: max softmax %g vs %g", i, (double)v[1], 1.0 / z);
        pred[i] = best;
    }
    ckpt_classifier_close(&c);
    free(lg);
    // the denoiser as the stage builds it (config tiny: ddim, 50 steps, quirk, guidance 2, seed 1234)
    ckpt_denoiser d;
    ck_assert_msg(ckpt_denoiser_open(&d, fx_path("den.store"), ctx, 2 * G) == 0, "%s", err_msg());
    char *images_key = tu_meta(s, "images_key");
    ck_assert_ptr_nonnull(images_key);
    dn_params dp = {0, 50, 1, 2.0f, 1234, rng_id_str(images_key)};
    free(images_key);
    ck_assert_int_eq(sampler_method_from_name("ddim", &dp.method), 0);
    dn_ctx *dn = NULL;
    ck_assert_msg(dn_create(&dn, ctx, d.model, &d.sch, &dp, G) == 0, "%s", err_msg());
    static float want[G * P], other[G * P], rec[P], noise[P];
    dn_job jobs[G];
    for (uint32_t r = 0; r < 2; r++) {
        for (int i = 0; i < G; i++) jobs[i] = (dn_job){u8 + (size_t)i * P, (uint32_t)i, r, pred[i]};
        ck_assert_int_eq(dn_run(dn, jobs, G, 40, want), 0);
        for (int i = 0; i < G; i++) jobs[i].label = (pred[i] + 1) % K;
        ck_assert_int_eq(dn_run(dn, jobs, G, 40, other), 0);
        double ab = d.sch.abar[0];
        for (int i = 0; i < G; i++) {
            ts_key k;
            ts_tensor t;
            uint32_t tup[3] = {(uint32_t)i, 40, r};
            ts_key_tuple(&k, 3, tup);
            ck_assert_int_eq(ts_get_into(s, "sample", &k, &t, rec, sizeof rec), 0);
            ck_assert_msg(memcmp(rec, want + (size_t)i * P, sizeof rec) == 0,
                          "record (%d, 40, %u) is not the guided sample of its image, noise and predicted label", i, r);
            ck_assert_msg(memcmp(rec, other + (size_t)i * P, sizeof rec) != 0,
                          "record (%d, 40, %u): the guidance label changes nothing", i, r);
            tup[1] = 0;
            ts_key_tuple(&k, 3, tup);
            ck_assert_int_eq(ts_get_into(s, "sample", &k, &t, rec, sizeof rec), 0);
            dn_noise_host(&dp, (uint32_t)i, r, noise, P);
            for (int p = 0; p < P; p++) {
                double x0 = u8[(size_t)i * P + p] / 127.5 - 1.0, xt = sqrt(ab) * x0 + sqrt(1.0 - ab) * noise[p];
                double v = fmin(1.0, fmax(0.0, xt * 0.5 + 0.5));
                ck_assert_msg(fabs(rec[p] - v) < 1e-6, "record (%d, 0, %u) pixel %d: %.8g, the noised image %.8g", i,
                              r, p, (double)rec[p], v);
            }
        }
    }
    dn_destroy(dn);
    ckpt_denoiser_close(&d);
    ts_close(img);
    ts_close(s);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_sample_kill_resume) {
    const char *ref = tu_path("ref.store"), *out = tu_path("k.store");
    const char *a[] = {"--limit", "40", "--set", "sample.timesteps=[0,80]", "--set", "sample.repeats=3", "--set",
                       "sample.batch=4", NULL};
    ck_assert_int_eq(run_sample(ref, a), 0);
    // SIGKILL once some batches are committed, then resume
    const char *args[64] = {"--images",    fx_path("test.store"), "--denoiser", fx_path("den.store"),
                            "--classifier", fx_path("cls.store"),  "--out",      out,
                            "--config",    "tiny",                "--threads",  "1"};
    int n = 12;
    for (int i = 0; a[i]; i++) args[n++] = a[i];
    args[n] = NULL;
    pid_t pid = tu_start("sample", args, NULL);
    for (int i = 0; i < 400; i++) {
        usleep(20000);
        struct stat st;
        char p[600];
        snprintf(p, sizeof p, "%s/data.mdb", out);
        if (stat(p, &st) == 0 && count_records(out, "sample") >= 40) break;
    }
    kill(pid, SIGKILL);
    ck_assert_int_eq(tu_wait(pid), 128 + SIGKILL);
    uint64_t before = count_records(out, "sample");
    ck_assert_uint_lt(before, 40 * 2 * 3);
    tu_assert_not_complete(out);
    ck_assert_int_eq(run_sample(out, a), 0);
    ck_assert_int_eq(last_computed(), (long)(40 * 2 * 3 - before));
    ck_assert_int_eq(stores_differ(out, ref), 0);
    // SIGTERM: the current batch is committed, exit 3, and a rerun completes it
    const char *out2 = tu_path("t.store");
    args[7] = out2;
    pid = tu_start("sample", args, NULL);
    for (int i = 0; i < 400; i++) {
        usleep(20000);
        char p[600];
        snprintf(p, sizeof p, "%s/data.mdb", out2);
        if (access(p, R_OK) == 0 && count_records(out2, "sample") >= 8) break;
    }
    kill(pid, SIGTERM);
    ck_assert_int_eq(tu_wait(pid), 3);
    tu_assert_not_complete(out2);
    ck_assert_int_eq(run_sample(out2, a), 0);
    ck_assert_int_eq(stores_differ(out2, ref), 0);
}
END_TEST

START_TEST(test_sample_cache_across_experiments) {
    const char *cache = tu_path("cache");
    const char *a2[] = {"--limit", "10", LV2, "--set", "sample.repeats=2", "--cache", cache, NULL};
    const char *a4[] = {"--limit", "10", LV2, "--set", "sample.repeats=4", "--cache", cache, NULL};
    ck_assert_int_eq(run_sample(tu_path("e1.store"), a2), 0);
    ck_assert_int_eq(last_computed(), 10 * 2 * 2);
    // another experiment with more repeats computes only the missing repeats
    ck_assert_int_eq(run_sample(tu_path("e2.store"), a4), 0);
    ck_assert_int_eq(last_computed(), 10 * 2 * 2);
    // a third with the same settings computes nothing
    ck_assert_int_eq(run_sample(tu_path("e3.store"), a4), 0);
    ck_assert_int_eq(last_computed(), 0);
    // the experiments hold no copy of the records: only meta naming the cache entry
    ck_assert_uint_eq(count_records(tu_path("e2.store"), "sample"), 0);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, tu_path("e3.store"), TS_RDONLY), 0);
    char *rec = tu_meta(s, "records");
    ts_close(s);
    ck_assert_ptr_nonnull(rec);
    ck_assert_uint_eq(count_records(rec, "sample"), 10 * 2 * 4);
    // the same records as a run without the cache
    const char *plain[] = {"--limit", "10", LV2, "--set", "sample.repeats=4", NULL};
    ck_assert_int_eq(run_sample(tu_path("plain.store"), plain), 0);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s/dstore export %s sample --npy %s && %s/dstore export %s sample --npy %s && cmp %s %s",
             tu_bin(), rec, tu_path("a.npy"), tu_bin(), tu_path("plain.store"), tu_path("b.npy"),
             tu_path("a.npy"), tu_path("b.npy"));
    ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
    free(rec);
    // another guidance: a new cache entry, all computed, the old entry untouched
    const char *g[] = {"--limit", "10", LV2, "--set", "sample.repeats=2", "--set", "sample.guidance=1.0", "--cache",
                       cache, NULL};
    ck_assert_int_eq(run_sample(tu_path("e4.store"), g), 0);
    ck_assert_int_eq(last_computed(), 10 * 2 * 2);
    snprintf(cmd, sizeof cmd, "ls -d %s/sample-*.store | wc -l", cache);
    tu_capture(cmd, out, sizeof out);
    ck_assert_int_eq(atoi(out), 2);
    // a deleted cache: the experiment's rerun computes its records again
    snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 0);
    ck_assert_int_eq(run_sample(tu_path("e1.store"), a2), 0);
    ck_assert_int_eq(last_computed(), 10 * 2 * 2);
    ck_assert_int_eq(run_sample(tu_path("e1.store"), a2), 0);
    ck_assert_int_eq(last_computed(), 0);
}
END_TEST

START_TEST(test_sample_changed_params_refused) {
    const char *out = tu_path("c.store");
    const char *a[] = {"--limit", "6", LV2, "--set", "sample.repeats=1", NULL};
    ck_assert_int_eq(run_sample(out, a), 0);
    const char *b[] = {"--limit", "6", LV2, "--set", "sample.repeats=1", "--set", "sample.method=pndm2", NULL};
    ck_assert_int_eq(run_sample(out, b), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "--force"));
    ck_assert_ptr_nonnull(strstr(last_stderr(), "method"));
    const char *c[] = {"--limit", "6", LV2, "--set", "sample.repeats=1", "--set", "sample.method=pndm2", "--force", NULL};
    ck_assert_int_eq(run_sample(out, c), 0);
    ck_assert_int_eq(last_computed(), 6 * 2);
    // seeds one double cannot tell apart (2^53, 2^53 + 1) are other samples: refused
    const char *d[] = {"--limit", "1", "--set", "sample.timesteps=[0]", "--set", "sample.repeats=1", "--set",
                       "sample.seed=9007199254740992", NULL};
    ck_assert_int_eq(run_sample(tu_path("s.store"), d), 0);
    const char *e[] = {"--limit", "1", "--set", "sample.timesteps=[0]", "--set", "sample.repeats=1", "--set",
                       "sample.seed=9007199254740993", NULL};
    ck_assert_msg(run_sample(tu_path("s.store"), e) == 2, "seed 2^53 + 1 was taken for seed 2^53");
    ck_assert_ptr_nonnull(strstr(last_stderr(), "9007199254740993"));
}
END_TEST

START_TEST(test_sample_shards_merge) {
    const char *a[] = {"--limit", "30", LV2, "--set", "sample.repeats=2", NULL};
    ck_assert_int_eq(run_sample(tu_path("all.store"), a), 0);
    char name[32];
    for (int i = 0; i < 3; i++) {
        char sh[8];
        snprintf(sh, sizeof sh, "%d/3", i);
        snprintf(name, sizeof name, "sh%d.store", i);
        const char *b[] = {"--limit", "30", LV2, "--set", "sample.repeats=2", "--shard", sh, NULL};
        ck_assert_int_eq(run_sample(tu_path(name), b), 0);
        ck_assert_int_eq(last_computed(), 10 * 2 * 2);
    }
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s/dstore merge %s %s %s %s", tu_bin(), tu_path("m.store"), tu_path("sh0.store"),
             tu_path("sh1.store"), tu_path("sh2.store"));
    ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_int_eq(stores_differ(tu_path("m.store"), tu_path("all.store")), 0);
}
END_TEST

// extract-features shards: of clean images (--shard), and of samples shards (sample --shard,
// sharing one --cache entry): merged, each equals the unsharded run's store.
#define FE_CMD "%s/extract-features --classifier %s --config tiny --threads 1 --quiet %s %s --out %s %s"
START_TEST(test_sample_shards_features) {
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd, FE_CMD, tu_bin(), fx_path("cls.store"), "--images", fx_path("test.store"), tu_path("fi.store"), "");
    ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
    const char *a[] = {"--limit", "20", LV2, "--set", "sample.repeats=2", "--cache", tu_path("cache"), NULL};
    ck_assert_int_eq(run_sample(tu_path("all.store"), a), 0);
    snprintf(cmd, sizeof cmd, FE_CMD, tu_bin(), fx_path("cls.store"), "--samples", tu_path("all.store"), tu_path("fs.store"), "");
    ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
    char mi[2048] = "", ms[2048] = "", mf[2048] = "";
    for (int i = 0; i < 3; i++) {
        char sh[8], name[32], fname[32], iname[32];
        snprintf(sh, sizeof sh, "%d/3", i);
        snprintf(name, sizeof name, "sh%d.store", i);
        snprintf(fname, sizeof fname, "fsh%d.store", i);
        snprintf(iname, sizeof iname, "fih%d.store", i);
        const char *b[] = {"--limit", "20", LV2, "--set", "sample.repeats=2", "--cache", tu_path("cache"), "--shard", sh, NULL};
        ck_assert_int_eq(run_sample(tu_path(name), b), 0);
        ck_assert_int_eq(last_computed(), 0); // the unsharded run filled the shared entry
        snprintf(cmd, sizeof cmd, FE_CMD, tu_bin(), fx_path("cls.store"), "--samples", tu_path(name), tu_path(fname), "");
        ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
        char opt[32];
        snprintf(opt, sizeof opt, "--shard %s", sh);
        snprintf(cmd, sizeof cmd, FE_CMD, tu_bin(), fx_path("cls.store"), "--images", fx_path("test.store"), tu_path(iname), opt);
        ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
        strcat(ms, " "), strcat(ms, tu_path(name));
        strcat(mf, " "), strcat(mf, tu_path(fname));
        strcat(mi, " "), strcat(mi, tu_path(iname));
    }
    // a samples shard is already a part: its features take no --shard
    snprintf(cmd, sizeof cmd, FE_CMD, tu_bin(), fx_path("cls.store"), "--samples", tu_path("sh1.store"), tu_path("x.store"),
             "--shard 0/2");
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "shard 1/3"));
    const char *const joins[][3] = {{"ms.store", ms, "all.store"}, {"mf.store", mf, "fs.store"}, {"mi.store", mi, "fi.store"}};
    for (int j = 0; j < 3; j++) {
        snprintf(cmd, sizeof cmd, "%s/dstore merge %s%s", tu_bin(), tu_path(joins[j][0]), joins[j][1]);
        ck_assert_msg(tu_capture(cmd, out, sizeof out) == 0, "%s", out);
        ck_assert_msg(strstr(out, "joined 3 shards"), "%s", out);
        ck_assert_int_eq(stores_differ(tu_path(joins[j][0]), tu_path(joins[j][2])), 0);
    }
}
END_TEST

START_TEST(test_sample_bad_input) {
    const char *out = tu_path("bad.store");
    struct {
        const char *extra[8];
        const char *says;
    } cases[] = {
        {{"--set", "sample.repeats=0", NULL}, "sample.repeats"},
        {{"--set", "sample.method=euler", NULL}, "euler"},
        {{"--set", "sample.timesteps=[0,1000]", NULL}, "level 1000"},
        {{"--set", "sample.timesteps=[40,0]", NULL}, "ascending"},
        {{"--shard", "3/3", NULL}, "--shard"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(run_sample(out, cases[i].extra), 2);
        ck_assert_msg(strstr(last_stderr(), cases[i].says), "case %zu: stderr lacks '%s':\n%s", i, cases[i].says,
                      last_stderr());
    }
    // a classifier of another class count than the denoiser
    const char *k[] = {"--images", fx_path("test.store"), "--denoiser", fx_path("den.store"), "--classifier",
                       fx_path("cls12.store"), "--out", out, "--config", "tiny", NULL};
    ck_assert_int_eq(tu_run("sample", k, NULL), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "classes"));
    // a missing store; the denoiser given as classifier
    const char *m[] = {"--images", tu_path("nothing.store"), "--denoiser", fx_path("den.store"), "--classifier",
                       fx_path("cls.store"), "--out", out, "--config", "tiny", NULL};
    ck_assert_int_eq(tu_run("sample", m, NULL), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "nothing.store"));
    const char *w[] = {"--images", fx_path("test.store"), "--denoiser", fx_path("den.store"), "--classifier",
                       fx_path("den.store"), "--out", out, "--config", "tiny", NULL};
    ck_assert_int_eq(tu_run("sample", w, NULL), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "den.store"));
    // an incomplete denoiser checkpoint
    char cmd[2048], o[4096];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", fx_path("den.store"), tu_path("half.store"));
    ck_assert_int_eq(tu_capture(cmd, o, sizeof o), 0);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, tu_path("half.store"), 0), 0);
    ck_assert_int_eq(ts_meta_put(s, "complete", "false"), 0);
    ts_close(s);
    const char *h[] = {"--images", fx_path("test.store"), "--denoiser", tu_path("half.store"), "--classifier",
                       fx_path("cls.store"), "--out", out, "--config", "tiny", NULL};
    ck_assert_int_eq(tu_run("sample", h, NULL), 2);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "incomplete"));
    ck_assert_int_eq(access(out, F_OK), -1); // nothing was created
}
END_TEST

START_TEST(test_sample_generate) {
    const char *out = tu_path("g.store");
    const char *a[] = {"--generate", "6", "--label", "3", "--denoiser", fx_path("den.store"), "--out", out,
                       "--config", "tiny", "--threads", "1", NULL};
    ck_assert_int_eq(tu_run("sample", a, NULL), 0);
    ck_assert_uint_eq(count_records(out, "generated"), 6);
    char p[600];
    snprintf(p, sizeof p, "%s.grid.png", out); // beside the store, never inside it
    ck_assert_int_eq(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/grid.png", out);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(tu_run("sample", a, NULL), 0);
    ck_assert_ptr_nonnull(strstr(last_stderr(), "up to date"));
    const char *b[] = {"--generate", "2", "--label", "10", "--denoiser", fx_path("den.store"), "--out",
                       tu_path("g2.store"), "--config", "tiny", NULL};
    ck_assert_int_eq(tu_run("sample", b, NULL), 2);
}
END_TEST

Suite *suite_sample(void) {
    Suite *s = suite_create("sample");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_sample_up_to_date_and_incremental);
    tcase_add_test(tc, test_sample_records_are_the_method);
    tcase_add_test(tc, test_sample_kill_resume);
    tcase_add_test(tc, test_sample_cache_across_experiments);
    tcase_add_test(tc, test_sample_changed_params_refused);
    tcase_add_test(tc, test_sample_shards_merge);
    tcase_add_test(tc, test_sample_shards_features);
    tcase_add_test(tc, test_sample_bad_input);
    tcase_add_test(tc, test_sample_generate);
    suite_add_tcase(s, tc);
    return s;
}
