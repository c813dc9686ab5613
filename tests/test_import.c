// Tests of $DIFFOOD_BIN/import-weights (issue 14) on checkpoints written by Debian's PyTorch
// (tools/torchref/import_check.py: torch.save of the reference networks of models.py): the EMA
// dict, a state_dict, a train.ckpt-shaped list with DDP names and Adam state, safetensors,
// OpenOOD-style ResNet-18 state_dicts with and without num_batches_tracked, the paper
// configurations. The imported stores are opened the way sample and extract-features open them
// (ckpt_denoiser_open, ckpt_classifier_open) and their forward passes compared with PyTorch's
// on the same inputs (relative error <= 1e-4); sample and extract-features run on them; the
// exports load into the reference modules with load_state_dict(strict=True) and give PyTorch's
// outputs; bad and hostile files exit 2 with messages naming the problem, and mutated files
// never crash the parsers (wio_fuzz_one in process); the tiny workflow runs on imported weights.
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/npy.h"
#include "common/store.h"
#include "common/train/ckpt.h"
#include "common/wio/wio.h"
#include "kernels/ops.h"
#include "tests/test_train_util.h"
#include "tests/test_util.h"

static char iw_dir[256];  // the PyTorch files, written once per test case (unchecked fixture)
static char iw_err[2600]; // why writing them failed ("" when it did not)
static const char *const iw_env[] = {"DIFFOOD_PROGRESS_INTERVAL=0", NULL};

// tools/torchref/import_check.py from the working directory or DIFFOOD_BIN's parents.
static const char *iw_script(void) {
    static char p[1024];
    const char *bin = getenv("DIFFOOD_BIN");
    const char *ups[] = {"", "/..", "/../..", "/../../.."};
    for (int i = 0; i < 4; i++) {
        if (i == 0) snprintf(p, sizeof p, "tools/torchref/import_check.py");
        else if (bin) snprintf(p, sizeof p, "%s%s/tools/torchref/import_check.py", bin, ups[i]);
        else continue;
        if (access(p, R_OK) == 0) return p;
    }
    return NULL;
}

static const char *iw_py(void) {
    const char *py = getenv("DIFFOOD_PYTHON");
    return py && *py ? py : "/usr/bin/python3";
}

// Unchecked fixture: a fresh directory with the files of `what` ("small hostile", "paper").
static void iw_write(const char *what) {
    iw_err[0] = '\0';
    snprintf(iw_dir, sizeof iw_dir, "/tmp/diffood-import-XXXXXX");
    const char *script = iw_script();
    if (!mkdtemp(iw_dir) || !script) {
        snprintf(iw_err, sizeof iw_err, "no temporary directory or no tools/torchref/import_check.py");
        return;
    }
    char words[64], cmd[2048];
    snprintf(words, sizeof words, "%s", what);
    for (char *w = strtok(words, " "); w; w = strtok(NULL, " ")) {
        snprintf(cmd, sizeof cmd, "'%s' '%s' write '%s' %s > '%s/py.log' 2>&1", iw_py(), script, iw_dir, w, iw_dir);
        if (system(cmd) != 0) snprintf(iw_err, sizeof iw_err, "%s failed: see %s/py.log", cmd, iw_dir);
    }
}
static void iw_write_small(void) { iw_write("small hostile tiny"); }
static void iw_write_paper(void) { iw_write("paper"); }
static void iw_remove(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", iw_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", iw_dir);
}

static const char *iw_in(const char *name) {
    static char ring[16][512];
    static int at;
    char *p = ring[at++ % 16];
    snprintf(p, 512, "%.255s/%.200s", iw_dir, name);
    return p;
}

static void iw_setup(void) {
    ck_assert_msg(iw_err[0] == '\0', "%s", iw_err);
    trt_setup();
}

// Runs import-weights with args (NULL-terminated); the exit status; stderr in iw_stderr().
static int iw_run(const char *const *args) { return tu_run("import-weights", args, iw_env); }
static const char *iw_stderr(void) { return trt_stderr(); }

static float *iw_npy(const char *name, int64_t *n) {
    npy_header h;
    void *data = NULL;
    char file[600];
    snprintf(file, sizeof file, "%.255s/%.200s.npy", iw_dir, name);
    ck_assert_msg(npy_load(file, &h, &data) == 0, "%s: %s", file, err_msg());
    *n = npy_numel(&h);
    return data;
}

static double iw_relerr(const float *got, const float *want, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = got[i] - want[i];
        if (e < 0) e = -e;
        if (e > d || e != e) d = e != e ? 1e30 : e;
        double w = want[i] < 0 ? -want[i] : want[i];
        if (w > m) m = w;
    }
    return d / (m > 0 ? m : 1);
}

// The denoiser of `store` (opened as sample opens it) on PREFIX_x/t/y equals PREFIX_eps_WHICH.
static void iw_check_unet(const char *store, const char *prefix, const char *which) {
    ops_options oo = ops_options_default();
    oo.threads = 2;
    ops_ctx *ctx = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    char name[128];
    int64_t nx, nt, ny, ne;
    snprintf(name, sizeof name, "%s_x", prefix);
    float *x = iw_npy(name, &nx);
    snprintf(name, sizeof name, "%s_t", prefix);
    float *t = iw_npy(name, &nt);
    snprintf(name, sizeof name, "%s_y", prefix);
    int32_t *y = (int32_t *)iw_npy(name, &ny);
    snprintf(name, sizeof name, "%s_eps_%s", prefix, which);
    float *want = iw_npy(name, &ne);
    int n = (int)nt;
    ckpt_denoiser d;
    ck_assert_msg(ckpt_denoiser_open(&d, store, ctx, n) == 0, "%s: %s", store, err_msg());
    float *dx = NULL, *dt = NULL, *de = NULL, *got = malloc(sizeof(float) * (size_t)ne);
    int32_t *dy = NULL;
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dx, sizeof(float) * (size_t)nx), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dt, sizeof(float) * (size_t)nt), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&dy, sizeof(int32_t) * (size_t)ny), 0);
    ck_assert_int_eq(ops_alloc(ctx, (void **)&de, sizeof(float) * (size_t)ne), 0);
    ck_assert_int_eq(ops_upload(ctx, dx, x, sizeof(float) * (size_t)nx), 0);
    ck_assert_int_eq(ops_upload(ctx, dt, t, sizeof(float) * (size_t)nt), 0);
    ck_assert_int_eq(ops_upload(ctx, dy, y, sizeof(int32_t) * (size_t)ny), 0);
    philox_key key = {0, 0, 0, 0};
    ck_assert_msg(unet_forward(d.model, de, dx, dt, dy, n, 0, key) == 0, "%s", err_msg());
    ck_assert_int_eq(ops_download(ctx, got, de, sizeof(float) * (size_t)ne), 0);
    double e = iw_relerr(got, want, ne);
    ck_assert_msg(e <= 1e-4, "%s vs PyTorch's %s: relative error %g", store, name, e);
    ops_free(ctx, dx);
    ops_free(ctx, dt);
    ops_free(ctx, dy);
    ops_free(ctx, de);
    ckpt_denoiser_close(&d);
    ops_ctx_destroy(ctx);
    free(x);
    free(t);
    free(y);
    free(want);
    free(got);
}

// The classifier of `store` (opened as extract-features opens it, with its mean/std) on
// PREFIX_x (in [0, 1]) gives PREFIX_logits and PREFIX_feature.
static void iw_check_resnet(const char *store, const char *prefix) {
    ops_options oo = ops_options_default();
    oo.threads = 2;
    ops_ctx *ctx = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cpu", &oo), 0);
    char name[128];
    int64_t nx, nl, nf;
    snprintf(name, sizeof name, "%s_x", prefix);
    float *x = iw_npy(name, &nx);
    snprintf(name, sizeof name, "%s_logits", prefix);
    float *wl = iw_npy(name, &nl);
    snprintf(name, sizeof name, "%s_feature", prefix);
    float *wf = iw_npy(name, &nf);
    int n = (int)(nx / (3 * 32 * 32));
    ckpt_classifier c;
    ck_assert_msg(ckpt_classifier_open(&c, store, ctx, 3, 32, n) == 0, "%s: %s", store, err_msg());
    ck_assert_int_eq(ckpt_classifier_classes(&c) * n, nl);
    ck_assert_int_eq(ckpt_classifier_feature_dim(&c) * n, nf);
    float *gl = malloc(sizeof(float) * (size_t)nl), *gf = malloc(sizeof(float) * (size_t)nf);
    ck_assert_msg(ckpt_classifier_run(&c, NULL, x, n, gl, gf) == 0, "%s", err_msg());
    double el = iw_relerr(gl, wl, nl), ef = iw_relerr(gf, wf, nf);
    ck_assert_msg(el <= 1e-4 && ef <= 1e-4, "%s vs PyTorch: relative error logits %g, features %g", store, el, ef);
    ckpt_classifier_close(&c);
    ops_ctx_destroy(ctx);
    free(x);
    free(wl);
    free(wf);
    free(gl);
    free(gf);
}

static char *iw_meta(const char *store, const char *key) {
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, store, TS_RDONLY), 0);
    char *v = tu_meta(s, key);
    ts_close(s);
    return v;
}

// Exports `store` to safetensors and has PyTorch load it strictly and compare the outputs.
static void iw_check_export(const char *store, const char *model, const char *config, const char *prefix) {
    char st[300];
    snprintf(st, sizeof st, "%s.safetensors", store);
    const char *args[] = {"--export", store, "--safetensors", st, "--quiet", NULL};
    ck_assert_msg(iw_run(args) == 0, "export %s: %s", store, iw_stderr());
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' check '%s' %s %s '%s' %s", iw_py(), iw_script(), iw_dir, model, config, st,
             prefix);
    int rc = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "PyTorch on the export of %s: %s", store, out);
    ck_assert_msg(strstr(out, "strict load ok"), "%s", out);
}

// --- the denoiser -------------------------------------------------------------------------------

START_TEST(test_import_unet_files) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", iw_in("unet_small.yml"));
    struct {
        const char *file, *ema, *which;
    } cases[] = {
        {"unet_ema.ckpt", NULL, "ema"},         // EMAHelper.state_dict(): a plain dict
        {"unet_model.ckpt", NULL, "model"},     // model-N.ckpt: an OrderedDict state_dict
        {"unet_train.ckpt", NULL, "model"},     // [DDP state_dict, optimizer, scheduler, epoch, step, time]
        {"unet_train.ckpt", "unet_ema.ckpt", "ema"},
        {"unet.safetensors", NULL, "ema"},      // written by the test's own small writer
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        snprintf(out, sizeof out, "unet%zu", i);
        const char *args[] = {iw_in(cases[i].file), "--model", "unet", "--config", cfg, "--out", trt_path(out),
                              cases[i].ema ? "--ema" : NULL, cases[i].ema ? iw_in(cases[i].ema) : NULL, NULL};
        ck_assert_msg(iw_run(args) == 0, "%s: %s", cases[i].file, iw_stderr());
        // train.ckpt: DDP names seen
        ck_assert_msg(strstr(trt_stdout(), i == 2 || i == 3 ? "\"ddp_prefix\":true" : "\"ddp_prefix\":false"), "%zu: %s", i,
                      trt_stdout());
        iw_check_unet(trt_path(out), "unet_small", cases[i].which);
    }
    // train.ckpt's step recorded; the store is complete for detection
    char *v = iw_meta(trt_path("unet3"), "source_step");
    ck_assert_str_eq(v, "1234");
    free(v);
    v = iw_meta(trt_path("unet3"), "complete");
    ck_assert_str_eq(v, "true");
    free(v);
    // the same command again: up to date; other weights into the same store: a conflict
    const char *again[] = {iw_in("unet_ema.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("unet0"), NULL};
    ck_assert_int_eq(iw_run(again), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "up to date"));
    // training settings mean nothing to imported weights; the schedule does (sample reads it)
    const char *lr[] = {iw_in("unet_ema.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("unet0"),
                        "--set", "train_diffusion.lr=1e-3", NULL};
    ck_assert_int_eq(iw_run(lr), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "up to date"));
    const char *sch[] = {iw_in("unet_ema.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("unet0"),
                         "--set", "diffusion.beta_end=0.03", NULL};
    ck_assert_int_eq(iw_run(sch), 2);
    const char *other[] = {iw_in("unet_model.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("unet0"), NULL};
    ck_assert_int_eq(iw_run(other), 2);
    ck_assert_ptr_nonnull(strstr(iw_stderr(), "--force"));
    // exported with the reference names: PyTorch loads it strictly and gets the same outputs
    iw_check_export(trt_path("unet0"), "ema", "unet_small", "unet_small");
    // and the export imports back to the same network
    char st[300];
    snprintf(st, sizeof st, "%s.safetensors", trt_path("unet0"));
    const char *back[] = {st, "--model", "unet", "--config", cfg, "--out", trt_path("back"), NULL};
    ck_assert_msg(iw_run(back) == 0, "%s", iw_stderr());
    iw_check_unet(trt_path("back"), "unet_small", "ema");
}
END_TEST

static void iw_check_moment(const char *store, const char *key, const char *npy) {
    int64_t n;
    float *want = iw_npy(npy, &n);
    ts_store *s = NULL;
    ts_key k;
    ts_tensor t;
    ck_assert_int_eq(ts_open(&s, store, TS_RDONLY), 0);
    ck_assert_int_eq(ts_key_str(&k, key), 0);
    ck_assert_msg(ts_get(s, "optim", &k, &t) == 0, "%s: %s", key, err_msg());
    ck_assert_int_eq(ts_tensor_numel(&t), n);
    ck_assert_msg(iw_relerr(t.data, want, n) == 0, "%s differs from PyTorch's Adam state", key);
    ts_tensor_free(&t);
    ts_close(s);
    free(want);
}

START_TEST(test_import_unet_optim_train_continues) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", iw_in("unet_small.yml"));
    // --optim alone: the Adam moments of train.ckpt's optimizer state, complete for detection
    const char *a1[] = {iw_in("unet_train.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("o1"),
                        "--ema", iw_in("unet_ema.ckpt"), "--optim", NULL};
    ck_assert_msg(iw_run(a1) == 0, "%s", iw_stderr());
    iw_check_moment(trt_path("o1"), "exp_avg.temb.dense.0.weight", "unet_exp_avg0");
    iw_check_moment(trt_path("o1"), "exp_avg_sq.temb.dense.0.weight", "unet_exp_avg_sq0");
    ck_assert_int_eq(trt_meta_long(trt_path("o1"), "step"), 1234);
    ck_assert_int_eq(trt_meta_long(trt_path("o1"), "epoch"), 3);
    // --optim --data TRAIN_STORE: an unfinished train checkpoint that train continues
    trt_make_store(trt_path("data"), 16, 3, 16, 1);
    const char *a2[] = {iw_in("unet_train.ckpt"), "--model", "unet", "--config", cfg, "--out", trt_path("o2"), "--ema",
                        iw_in("unet_ema.ckpt"), "--optim", "--data", trt_path("data"), "--set",
                        "train_diffusion.steps=1236", "--set", "train_diffusion.batch=4", NULL};
    ck_assert_msg(iw_run(a2) == 0, "%s", iw_stderr());
    char *v = iw_meta(trt_path("o2"), "complete");
    ck_assert_str_eq(v, "false");
    free(v);
    const char *tr[] = {"--model", "diffusion", "--data", trt_path("data"), "--out", trt_path("o2"), "--config", cfg,
                        "--set", "train_diffusion.steps=1236", "--set", "train_diffusion.batch=4", "--threads", "1",
                        NULL};
    ck_assert_msg(trt_run(tr) == 0, "train did not continue the imported run: %s", trt_stderr());
    ck_assert_msg(strstr(trt_stderr(), "resume"), "train did not resume: %s", trt_stderr());
    ck_assert_int_eq(trt_meta_long(trt_path("o2"), "step"), 1236);
    v = iw_meta(trt_path("o2"), "complete");
    ck_assert_str_eq(v, "true");
    free(v);
    // importing over it again would throw that progress away: refused without --force
    ck_assert_int_eq(iw_run(a2), 2);
    ck_assert_ptr_nonnull(strstr(iw_stderr(), "--force"));
}
END_TEST

// --- the classifier -------------------------------------------------------------------------------

START_TEST(test_import_resnet) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", iw_in("resnet_small.yml"));
    const char *files[] = {"resnet_best.ckpt", "resnet_nonbt.ckpt"};
    for (int i = 0; i < 2; i++) {
        char out[32];
        snprintf(out, sizeof out, "res%d", i);
        const char *args[] = {iw_in(files[i]), "--model", "resnet18", "--config", cfg, "--out", trt_path(out), "--mean",
                              "0.4914,0.4822,0.4465", "--std", "0.2470,0.2435,0.2616", NULL};
        ck_assert_msg(iw_run(args) == 0, "%s: %s", files[i], iw_stderr());
        iw_check_resnet(trt_path(out), "resnet_small");
    }
    iw_check_export(trt_path("res0"), "model", "resnet_small", "resnet_small");
    // the normalisation of an image store (--data); extract-features and sample run on the imports
    trt_make_store(trt_path("img"), 6, 3, 16, 1);
    const char *a3[] = {iw_in("resnet_best.ckpt"), "--model", "resnet18", "--config", cfg, "--out", trt_path("res2"),
                        "--data", trt_path("img"), NULL};
    ck_assert_msg(iw_run(a3) == 0, "%s", iw_stderr());
    const char *fe[] = {"--classifier", trt_path("res2"), "--images", trt_path("img"), "--out", trt_path("feat"),
                        "--threads", "1", NULL};
    ck_assert_msg(tu_run("extract-features", fe, iw_env) == 0, "extract-features: %s", trt_stderr());
    ck_assert_int_eq(trt_meta_long(trt_path("feat"), "feature_dim"), 64);
    const char *a4[] = {iw_in("unet_ema.ckpt"), "--model", "unet", "--config", iw_in("unet_small.yml"), "--out",
                        trt_path("den"), NULL};
    ck_assert_msg(iw_run(a4) == 0, "%s", iw_stderr());
    const char *sm[] = {"--images", trt_path("img"), "--denoiser", trt_path("den"), "--classifier", trt_path("res2"),
                        "--out", trt_path("smp"), "--limit", "2", "--set", "sample.timesteps=[0,20]", "--set",
                        "sample.repeats=1", "--set", "sample.batch=2", "--set", "sample.sample_step=50", "--threads",
                        "1", NULL};
    ck_assert_msg(tu_run("sample", sm, iw_env) == 0, "sample: %s", trt_stderr());
}
END_TEST

// --- refusals ---------------------------------------------------------------------------------------

static void iw_refused(const char *file, const char *model, const char *cfg, const char *set, const char *want) {
    const char *args[] = {file, "--model", model, "--config", cfg, "--out", trt_path("bad"), "--mean", "0.5",
                          "--std", "0.25", set ? "--set" : NULL, set, NULL};
    int rc = iw_run(args);
    ck_assert_msg(rc == 2, "%s: exit %d, expected 2: %s", file, rc, iw_stderr());
    ck_assert_msg(strstr(iw_stderr(), want), "%s: the message lacks '%s': %s", file, want, iw_stderr());
    ck_assert_msg(access(trt_path("bad"), F_OK) != 0, "%s: a store was written", file);
}

START_TEST(test_import_refusals) {
    char u[512], r[512];
    snprintf(u, sizeof u, "%s", iw_in("unet_small.yml"));
    snprintf(r, sizeof r, "%s", iw_in("resnet_small.yml"));
    // names and shapes checked against the configuration
    iw_refused(iw_in("unet_ema.ckpt"), "unet", u, "unet.ch=32", "'temb.dense.0.weight' has shape [64, 16]");
    iw_refused(iw_in("unet_missing.ckpt"), "unet", u, NULL, "1 tensor of the configuration's network missing from "
               "the file, the first 'mid.attn_1.q.bias'");
    iw_refused(iw_in("unet_extra.ckpt"), "unet", u, NULL, "'extra.weight' is not a tensor of the configuration's network");
    iw_refused(iw_in("unet_ema.ckpt"), "unet", u, "unet.attn_resolutions=[4]",
               "is not a tensor of the configuration's network");
    iw_refused(iw_in("resnet_best.ckpt"), "unet", u, NULL, "missing from the file");
    iw_refused(iw_in("unet_ema.ckpt"), "resnet18", r, NULL, "missing from the file");
    // the classifier needs its normalisation
    const char *nonorm[] = {iw_in("resnet_best.ckpt"), "--model", "resnet18", "--config", r, "--out", trt_path("bad"),
                            NULL};
    ck_assert_int_eq(iw_run(nonorm), 2);
    ck_assert_ptr_nonnull(strstr(iw_stderr(), "--mean"));
    // hostile files made with torch.save's layout; ok.ckpt (the control) parses and only misses names
    iw_refused(iw_in("ok.ckpt"), "unet", u, NULL, "missing from the file");
    iw_refused(iw_in("bigstorage.ckpt"), "unet", u, NULL, "claims 600 elements");
    iw_refused(iw_in("negstride.ckpt"), "unet", u, NULL, "negative stride -3");
    iw_refused(iw_in("offset.ckpt"), "unet", u, NULL, "reaches element 9 of its storage of 6");
    iw_refused(iw_in("evil.ckpt"), "unet", u, NULL, "system is not allowed");
    iw_refused(iw_in("nostorage.ckpt"), "unet", u, NULL, "is not in the file");
    iw_refused(trt_path("missing.ckpt"), "unet", u, NULL, "cannot open");
    // truncated and damaged copies of real checkpoints
    size_t n = 0;
    uint8_t *b = tu_read_file(iw_in("unet_train.ckpt"), &n);
    tu_write_file(trt_path("trunc.ckpt"), b, n / 2);
    iw_refused(trt_path("trunc.ckpt"), "unet", u, NULL, "end-of-central-directory");
    free(b);
    b = tu_read_file(iw_in("unet.safetensors"), &n);
    tu_write_file(trt_path("trunc.safetensors"), b, n - 100);
    iw_refused(trt_path("trunc.safetensors"), "unet", u, NULL, "run past the");
    b[0] = 0xff, b[1] = 0xff, b[2] = 0xff; // a header longer than the file
    tu_write_file(trt_path("long.safetensors"), b, n);
    iw_refused(trt_path("long.safetensors"), "unet", u, NULL, "does not fit");
    free(b);
    tu_put("junk.ckpt", "hello, not a checkpoint");
    iw_refused(trt_path("junk.ckpt"), "unet", u, NULL, "neither a torch.save zip");
}
END_TEST

// The expected element (i, j) of dtypes.ckpt's tensor `name` (base = arange(24).reshape(4, 6) / 2).
static float iw_dtype_value(const char *name, int i, int j) {
    if (strcmp(name, "t") == 0) return (float)(j * 6 + i) * 0.5f;
    if (strcmp(name, "s") == 0) return (float)((1 + i) * 6 + 2 + j) * 0.5f;
    float v = (float)(i * 6 + j) * 0.5f;
    if (!strcmp(name, "i64") || !strcmp(name, "i32") || !strcmp(name, "u8")) return (float)(int)v;
    if (!strcmp(name, "b")) return v > 3;
    return v;
}

// torch.save's storages of every type, a transposed view (strides) and a slice (storage offset)
// of one shared storage, a scalar; safetensors of three types: the values PyTorch wrote.
START_TEST(test_wio_dtypes_views) {
    const char *files[] = {"dtypes.ckpt", "dtypes.safetensors"};
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        uint8_t *buf = tu_read_file(iw_in(files[f]), &n);
        wio_file wf;
        ck_assert_msg(wio_parse(&wf, buf, n, files[f]) == 0, "%s", err_msg());
        ck_assert_int_eq(wf.n, f ? 3 : 11);
        for (int k = 0; k < wf.n; k++) {
            const wio_item *it = &wf.items[k];
            ck_assert_int_eq(it->kind, WIO_ITEM_TENSOR);
            float x[24];
            if (strcmp(it->name, "scalar") == 0) {
                ck_assert_int_eq(it->t.rank, 0);
                wio_tensor_f32(&it->t, x);
                ck_assert_float_eq(x[0], 7.25f);
                continue;
            }
            int rows = !strcmp(it->name, "t") ? 6 : !strcmp(it->name, "s") ? 2 : 4;
            int cols = !strcmp(it->name, "t") ? 4 : !strcmp(it->name, "s") ? 3 : 6;
            ck_assert_int_eq(it->t.rank, 2);
            ck_assert_int_eq(it->t.shape[0], rows);
            ck_assert_int_eq(it->t.shape[1], cols);
            wio_tensor_f32(&it->t, x);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    ck_assert_msg(x[i * cols + j] == iw_dtype_value(it->name, i, j), "%s %s[%d][%d] = %g, expected %g",
                                  files[f], it->name, i, j, x[i * cols + j], iw_dtype_value(it->name, i, j));
        }
        const wio_item *t = wio_find(&wf, "t");
        if (t) ck_assert_int_eq(t->t.stride[0], 1); // a view, not a copy
        const wio_item *s = wio_find(&wf, "s");
        if (s) ck_assert_int_eq(s->t.offset, 8);
        wio_file_free(&wf);
        free(buf);
    }
}
END_TEST

// Every truncation and many byte changes of real files: the parsers return (accepting or
// refusing) and never crash; the intact files parse to their tensors.
START_TEST(test_wio_mutations) {
    const char *files[] = {"unet_train.ckpt", "resnet_best.ckpt", "unet.safetensors", "evil.ckpt", "ok.ckpt"};
    uint64_t seed = 12345;
    for (int f = 0; f < 5; f++) {
        size_t n = 0;
        uint8_t *orig = tu_read_file(iw_in(files[f]), &n);
        wio_file wf;
        int rc = wio_parse(&wf, orig, n, files[f]);
        if (f < 3) {
            ck_assert_msg(rc == 0, "%s: %s", files[f], err_msg());
            ck_assert_int_gt(wf.n, 100);
        }
        if (rc == 0) wio_file_free(&wf);
        uint8_t *b = malloc(n);
        for (int k = 1; k <= 64; k++) { // truncations
            memcpy(b, orig, n);
            wio_fuzz_one(b, n * (size_t)k / 65);
        }
        for (int k = 0; k < 300; k++) { // 1..4 bytes changed near the pickle or the directory
            memcpy(b, orig, n);
            for (int j = 0; j <= k % 4; j++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                size_t span = n < 20000 ? n : 20000, at = (size_t)(seed >> 33) % span;
                if (k % 2) at = n - 1 - at;
                b[at] = (uint8_t)(seed >> 20);
            }
            wio_fuzz_one(b, n);
        }
        free(b);
        free(orig);
    }
}
END_TEST

// The tiny workflow (workflows/ci-tiny.mk) with imported networks instead of trained ones: the
// stages chain on them up to the report; a rerun does nothing.
START_TEST(test_import_workflow) {
    const char *script = iw_script();
    static char out[1 << 16];
    char root[600], cmd[2400];
    snprintf(root, sizeof root, "%.*s", (int)(strlen(script) - strlen("/tools/torchref/import_check.py")), script);
    if (strcmp(script, "tools/torchref/import_check.py") == 0) snprintf(root, sizeof root, ".");
    snprintf(cmd, sizeof cmd,
             "make --no-print-directory -f '%s/workflows/ci-tiny.mk' BIN='%s' OUT='%s' CACHE='%s' THREADS=1 "
             "DENOISER_CKPT='%s' CLASSIFIER_CKPT='%s' 2>&1",
             root, tu_bin(), trt_path("run"), trt_path("cache"), iw_in("tiny_ema.ckpt"), iw_in("tiny_best.ckpt"));
    int rc = tu_capture(cmd, out, sizeof out);
    size_t len = strlen(out);
    const char *tail = out + (len > 1500 ? len - 1500 : 0); // check's messages are short
    ck_assert_msg(rc == 0, "workflow with imported weights: ...%s", tail);
    ck_assert_msg(strstr(out, "import-weights") && !strstr(out, "bin/train "), "not imported: ...%s", tail);
    ck_assert_msg(access(trt_path("run/report/report.html"), R_OK) == 0, "no report: ...%s", tail);
    char *v = iw_meta(trt_path("run/denoiser.store"), "source");
    ck_assert_str_eq(v, iw_in("tiny_ema.ckpt"));
    free(v);
    rc = tu_capture(cmd, out, sizeof out);
    len = strlen(out);
    ck_assert_msg(rc == 0 && !strstr(out, "import-weights"), "the rerun did work: ...%s", out + (len > 1500 ? len - 1500 : 0));
}
END_TEST

// --- the paper configurations ---------------------------------------------------------------------

START_TEST(test_import_paper) {
    const char *a1[] = {iw_in("unet_paper.ckpt"), "--model", "unet", "--config", iw_in("unet_paper.yml"), "--out",
                        trt_path("unet"), NULL};
    ck_assert_msg(iw_run(a1) == 0, "%s", iw_stderr());
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"tensors\":329"));
    iw_check_unet(trt_path("unet"), "unet_paper", "model");
    const char *a2[] = {iw_in("resnet_paper.ckpt"), "--model", "resnet18", "--config", iw_in("resnet_paper.yml"),
                        "--out", trt_path("res"), "--mean", "0.4914,0.4822,0.4465", "--std", "0.2470,0.2435,0.2616",
                        NULL};
    ck_assert_msg(iw_run(a2) == 0, "%s", iw_stderr());
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"tensors\":122"));
    iw_check_resnet(trt_path("res"), "resnet_paper");
    iw_check_export(trt_path("unet"), "model", "unet_paper", "unet_paper");
    iw_check_export(trt_path("res"), "model", "resnet_paper", "resnet_paper");
}
END_TEST

Suite *suite_import(void) {
    Suite *s = suite_create("import");
    TCase *tc = tcase_create("small");
    tcase_add_unchecked_fixture(tc, iw_write_small, iw_remove);
    tcase_add_checked_fixture(tc, iw_setup, trt_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_import_unet_files);
    tcase_add_test(tc, test_import_unet_optim_train_continues);
    tcase_add_test(tc, test_import_resnet);
    tcase_add_test(tc, test_import_refusals);
    tcase_add_test(tc, test_wio_mutations);
    tcase_add_test(tc, test_wio_dtypes_views);
    tcase_add_test(tc, test_import_workflow);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("paper");
    tcase_add_unchecked_fixture(tp, iw_write_paper, iw_remove);
    tcase_add_checked_fixture(tp, iw_setup, trt_teardown);
    tcase_set_timeout(tp, 300);
    tcase_add_test(tp, test_import_paper);
    suite_add_tcase(s, tp);
    return s;
}
