// Tests of what the CUDA backend loads and how it meets the host, all runnable without a GPU:
// * every function the backend looks up with dlsym (kernels/cuda/cuda_dlsym.h, the table the
//   backend itself is filled from) resolves in the real libcublas of CUDA_HOME, and the real
//   lib/libdiffood_cuda.so loads it by its own soname and RPATH, and cuDNN's sub-libraries
//   (ops_cuda_load_libraries);
// * --device auto falls back to the CPU with a warning naming what failed to load, and quietly
//   when there is simply no CUDA here;
// * the TF32 switches: through the emulated backend (kernels/cuda/emu/, whose cuDNN offers a
//   converting algorithm first and refuses to run it, and counts the convolutions per math type),
//   no algorithm that down-converts float32 is ever run, tensor-op math only with tf32 on, and
//   cuBLAS TF32 follows its own switch and environment variable;
// * deferred input checks (a bad id or label is reported at the next synchronisation point,
//   naming the first) and staged uploads (the emulator fails any copy whose pinned source the
//   backend changes before waiting for it), and axpby_rows giving the numbers of one axpby per row.
// What the emulator cannot check: real cuDNN's algorithm lists and TF32 rounding, the timing of
// real asynchronous copies, and that the stalls are gone (no GPU here to time).
#include <check.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_dlsym.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

static char cuda_home[PATH_MAX];  // CUDA_HOME or /usr/local/cuda
static char cublas_path[PATH_MAX]; // CUDA_HOME/lib64/libcublas.so.<CUBLAS_VER_MAJOR> ("" when absent)
static char real_so[PATH_MAX];    // this build's lib/libdiffood_cuda.so ("" for a CPU-only build)
static char emu_so[PATH_MAX];     // BUILD/cuda-emu/libdiffood_cuda.so ("" when not built)
static int have_driver;           // libcuda.so.1 loads here

// cuDNN's math types and cuBLAS's TF32 mode (the real headers' values, which the emulator's share)
enum { MATH_DEFAULT, MATH_TENSOR_OP, MATH_ALLOW_CONVERSION, MATH_FMA };
enum { CUBLAS_TF32_MODE = 3 };

// --- finding things ---------------------------------------------------------------------------

static int readable(const char *p) { return access(p, R_OK) == 0; }

// The directory of the test runner.
static int runner_dir(char *dir, size_t cap) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return -1;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(dir, cap, "%s", exe);
    return 0;
}

// CUBLAS_VER_MAJOR of CUDA_HOME/include/cublas_api.h, or -1.
static int cublas_major(void) {
    char p[PATH_MAX + 32], line[512];
    snprintf(p, sizeof p, "%s/include/cublas_api.h", cuda_home);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int major = -1;
    while (major < 0 && fgets(line, sizeof line, f)) sscanf(line, "#define CUBLAS_VER_MAJOR %d", &major);
    fclose(f);
    return major;
}

static void find_libraries(void) {
    const char *h = getenv("CUDA_HOME");
    snprintf(cuda_home, sizeof cuda_home, "%s", h && *h ? h : "/usr/local/cuda");
    int major = cublas_major();
    cublas_path[0] = 0;
    if (major >= 0) {
        snprintf(cublas_path, sizeof cublas_path, "%.*s/lib64/libcublas.so.%d", PATH_MAX - 40, cuda_home, major);
        if (!readable(cublas_path)) cublas_path[0] = 0;
    }
    char dir[PATH_MAX], cand[PATH_MAX + 64];
    const char *bin = getenv("DIFFOOD_BIN");
    real_so[0] = emu_so[0] = 0;
    if (bin && *bin) {
        snprintf(cand, sizeof cand, "%.*s/../lib/libdiffood_cuda.so", PATH_MAX - 64, bin);
        if (readable(cand) && realpath(cand, dir)) snprintf(real_so, sizeof real_so, "%s", dir);
    }
    if (runner_dir(dir, sizeof dir) == 0) {
        snprintf(cand, sizeof cand, "%.*s/../cuda-emu/libdiffood_cuda.so", PATH_MAX - 64, dir);
        if (readable(cand)) snprintf(emu_so, sizeof emu_so, "%.*s", PATH_MAX - 1, cand);
    }
    void *d = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    have_driver = d != NULL; // left open: the CUDA driver is not meant to be unloaded
}

// --- the dlsym table against the real libraries -------------------------------------------------

START_TEST(test_cuda_load_cublas_table_resolves) {
    void *h = dlopen(cublas_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", cublas_path, dlerror());
    char missing[2048] = "";
    int n = 0;
#define RESOLVE(field, fn)                                                                        \
    n++;                                                                                          \
    if (!dlsym(h, #fn)) snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", #fn);
    CUDA_CUBLAS_SYMBOLS(RESOLVE)
#undef RESOLVE
    ck_assert_msg(!missing[0], "%s lacks what the CUDA backend looks up:%s", cublas_path, missing);
    ck_assert_int_ge(n, 6);
    ck_assert_msg(dlsym(h, "cublasNoSuchFunction_v2") == NULL, "dlsym finds anything: the check above proves nothing");
    // the soname the backend derives from the same header
    char soname[64];
    snprintf(soname, sizeof soname, "%s%d", CUDA_CUBLAS_SONAME_PREFIX, cublas_major());
    ck_assert_msg(strstr(cublas_path, soname) != NULL, "%s is not %s", cublas_path, soname);
}
END_TEST

// The real backend loads cuBLAS its own way (soname, RPATH) and fills its table, no GPU needed.
START_TEST(test_cuda_load_backend_loads_cublas) {
    void *h = dlopen(real_so, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", real_so, dlerror());
    static const char *const entry[] = {OPS_CUDA_BACKEND_SYMBOL, OPS_CUDA_INIT_SYMBOL, OPS_CUDA_FINI_SYMBOL,
                                        OPS_CUDA_LOAD_SYMBOL};
    for (size_t i = 0; i < sizeof entry / sizeof entry[0]; i++)
        ck_assert_msg(dlsym(h, entry[i]) != NULL, "%s lacks %s", real_so, entry[i]);
    ops_cuda_load_fn load = (ops_cuda_load_fn)dlsym(h, OPS_CUDA_LOAD_SYMBOL);
    err_clear();
    int rc = load();
    ck_assert_msg(rc == 0, "%s could not load cuBLAS or cuDNN's sub-libraries: %s", real_so, err_msg());
}
END_TEST

START_TEST(test_cuda_load_emulated_cublas_has_the_table) {
    void *h = dlopen(emu_so, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", emu_so, dlerror());
    ops_cuda_load_fn load = (ops_cuda_load_fn)dlsym(h, OPS_CUDA_LOAD_SYMBOL);
    ck_assert_ptr_nonnull(load);
    err_clear();
    ck_assert_msg(load() == 0, "the emulated cuBLAS lacks a function of the table: %s", err_msg());
}
END_TEST

// --- --device auto ------------------------------------------------------------------------------

static char logbuf[8192];

// ops_ctx_create_named("auto") with DIFFOOD_CUDA_LIB = lib (NULL: unset); the log (warnings and
// debug lines) into logbuf. Returns the context's device, or -1 when creation failed.
static int auto_device(const char *lib) {
    if (lib) setenv("DIFFOOD_CUDA_LIB", lib, 1);
    else unsetenv("DIFFOOD_CUDA_LIB");
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    log_set_stream(f);
    log_set_level(LOG_DEBUG);
    ops_ctx *ctx = NULL;
    int rc = ops_ctx_create_named(&ctx, "auto", NULL);
    log_set_stream(NULL);
    log_set_level(LOG_INFO);
    rewind(f);
    size_t n = fread(logbuf, 1, sizeof logbuf - 1, f);
    logbuf[n] = 0;
    fclose(f);
    if (rc < 0) return -1;
    int dev = (int)ops_ctx_device(ctx);
    ops_ctx_destroy(ctx);
    return dev;
}

START_TEST(test_cuda_load_auto_warns_on_unloadable_library) {
    tu_setup();
    const char *bad = tu_put("libdiffood_cuda.so", "not an ELF file\n");
    ck_assert_int_eq(auto_device(bad), OPS_DEV_CPU);
    ck_assert_msg(strstr(logbuf, "warning") && strstr(logbuf, bad) && strstr(logbuf, "CPU"),
                  "no warning naming %s:\n%s", bad, logbuf);
    // a DIFFOOD_CUDA_LIB that is not there is a failure too, named
    ck_assert_int_eq(auto_device(tu_path("nowhere.so")), OPS_DEV_CPU);
    ck_assert_msg(strstr(logbuf, "warning") && strstr(logbuf, "DIFFOOD_CUDA_LIB") && strstr(logbuf, "nowhere.so"),
                  "no warning naming the variable:\n%s", logbuf);
    ops_ctx *ctx = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cuda", NULL), ERR_DEVICE); // cuda says it as an error
    ck_assert_msg(strstr(err_msg(), "nowhere.so") != NULL, "message: %s", err_msg());
    tu_teardown();
}
END_TEST

// The emulated backend copied where its cuBLAS (libcublas.so.emu) is not: it loads, finds its
// "GPU", then cannot load cuBLAS; auto must say so (a GPU host missing a CUDA library).
START_TEST(test_cuda_load_auto_warns_on_missing_cublas) {
    tu_setup();
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", emu_so, tu_path("libdiffood_cuda.so"));
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(auto_device(tu_path("libdiffood_cuda.so")), OPS_DEV_CPU);
    ck_assert_msg(strstr(logbuf, "warning") && strstr(logbuf, "libcublas.so.emu"), "no warning naming cuBLAS:\n%s",
                  logbuf);
    tu_teardown();
}
END_TEST

// This machine has the CUDA libraries but no driver: auto uses the CPU without a warning.
START_TEST(test_cuda_load_auto_quiet_without_driver) {
    ck_assert_int_eq(auto_device(real_so), OPS_DEV_CPU);
    ck_assert_msg(strstr(logbuf, "warning") == NULL, "a warning on a machine without a GPU:\n%s", logbuf);
    ck_assert_msg(strstr(logbuf, "no NVIDIA driver") != NULL, "the debug line does not say why:\n%s", logbuf);
    // and a build without a CUDA backend is quiet too (nothing beside the runner, no variable)
    ck_assert_int_eq(auto_device(NULL), OPS_DEV_CPU);
    ck_assert_msg(strstr(logbuf, "warning") == NULL, "a warning without a CUDA backend:\n%s", logbuf);
}
END_TEST

// --- TF32 switches ------------------------------------------------------------------------------

typedef long (*runs_fn)(int math);
typedef int (*mode_fn)(void);

// A context on the emulated backend with the given switches (-1: environment/default).
static ops_ctx *emu_ctx(int tf32, int tf32_matmul) {
    setenv("DIFFOOD_CUDA_LIB", emu_so, 1);
    ops_options o = ops_options_default();
    o.threads = 1;
    o.tf32 = tf32;
    o.tf32_matmul = tf32_matmul;
    ops_ctx *ctx = NULL;
    int rc = ops_ctx_create(&ctx, OPS_DEV_CUDA, &o);
    ck_assert_msg(rc == 0, "emulated CUDA context: %s", err_msg());
    return ctx;
}

// The emulator's counters, from the libraries the context has loaded (RTLD_NOLOAD: the same ones).
static runs_fn emu_runs(void) {
    void *h = dlopen(emu_so, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_ptr_nonnull(h);
    runs_fn f = (runs_fn)dlsym(h, "emu_cudnn_runs");
    ck_assert_ptr_nonnull(f);
    return f;
}

static int emu_cublas_mode(void) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%.*s", PATH_MAX, emu_so);
    *strrchr(p, '/') = 0;
    strcat(p, "/libcublas.so.emu");
    void *h = dlopen(p, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_msg(h != NULL, "%s is not loaded", p);
    mode_fn f = (mode_fn)dlsym(h, "emu_cublas_math_mode");
    ck_assert_ptr_nonnull(f);
    return f();
}

// Forward, backward-data and backward-filter of a small convolution, padded asymmetrically.
static void run_conv(ops_ctx *g) {
    ops_conv_shape s = {2, 3, 6, 6, 4, 3, 3, 2, 0, 0, 1, 1};
    size_t nx = 2 * 3 * 6 * 6, ny = (size_t)2 * 4 * ops_conv_out_h(&s) * ops_conv_out_w(&s), nw = 4 * 3 * 9;
    float *x, *w, *y, *dx, *dw, h[256];
    for (int i = 0; i < 256; i++) h[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    ck_assert_int_eq(ops_alloc(g, (void **)&x, nx * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&w, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&y, ny * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dx, nx * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dw, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_upload(g, x, h, nx * sizeof(float)), 0);
    ck_assert_int_eq(ops_upload(g, w, h + 3, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_fill(g, dx, 0.f, nx), 0);
    ck_assert_int_eq(ops_fill(g, dw, 0.f, nw), 0);
    ck_assert_msg(ops_conv2d_fwd(g, &s, y, x, w, NULL) == 0, "conv2d_fwd: %s", err_msg());
    ck_assert_msg(ops_conv2d_bwd_data(g, &s, dx, y, w) == 0, "conv2d_bwd_data: %s", err_msg());
    ck_assert_msg(ops_conv2d_bwd_weight(g, &s, dw, NULL, y, x) == 0, "conv2d_bwd_weight: %s", err_msg());
    ck_assert_int_eq(ops_sync(g), 0);
    float *all[] = {x, w, y, dx, dw};
    for (int i = 0; i < 5; i++) ops_free(g, all[i]);
}

START_TEST(test_cuda_load_tf32_never_converts) {
    unsetenv("DIFFOOD_CUDNN_TF32");
    unsetenv("DIFFOOD_CUBLAS_TF32");
    for (int tf32 = 0; tf32 < 2; tf32++) {
        ops_ctx *g = emu_ctx(tf32, -1);
        runs_fn runs = emu_runs();
        long before[4], after[4];
        for (int m = 0; m < 4; m++) before[m] = runs(m);
        run_conv(g); // the emulator fails any run of the converting algorithm
        for (int m = 0; m < 4; m++) after[m] = runs(m);
        ck_assert_int_eq(after[MATH_ALLOW_CONVERSION], before[MATH_ALLOW_CONVERSION]);
        if (tf32) { // tensor-op math for all three directions
            ck_assert_int_eq(after[MATH_TENSOR_OP] - before[MATH_TENSOR_OP], 3);
            ck_assert_int_eq(after[MATH_FMA], before[MATH_FMA]);
        } else {
            ck_assert_int_eq(after[MATH_TENSOR_OP], before[MATH_TENSOR_OP]);
            ck_assert_int_eq(after[MATH_FMA] - before[MATH_FMA], 3);
        }
        ops_ctx_destroy(g);
    }
}
END_TEST

START_TEST(test_cuda_load_tf32_switches) {
    unsetenv("DIFFOOD_CUDNN_TF32");
    unsetenv("DIFFOOD_CUBLAS_TF32");
    ops_ctx *g = emu_ctx(-1, -1); // PyTorch's defaults: convolutions TF32, GEMMs not
    ck_assert_int_eq(emu_cublas_mode(), 0);
    runs_fn runs = emu_runs();
    long t0 = runs(MATH_TENSOR_OP);
    run_conv(g);
    ck_assert_int_eq(runs(MATH_TENSOR_OP) - t0, 3);
    ops_ctx_destroy(g);
    g = emu_ctx(0, 1); // the caller's explicit values
    ck_assert_int_eq(emu_cublas_mode(), CUBLAS_TF32_MODE);
    ops_ctx_destroy(g);
    setenv("DIFFOOD_CUBLAS_TF32", "1", 1); // the environment, when the caller leaves it open
    setenv("DIFFOOD_CUDNN_TF32", "0", 1);
    g = emu_ctx(-1, -1);
    ck_assert_int_eq(emu_cublas_mode(), CUBLAS_TF32_MODE);
    runs = emu_runs();
    t0 = runs(MATH_TENSOR_OP);
    run_conv(g);
    ck_assert_int_eq(runs(MATH_TENSOR_OP), t0);
    ops_ctx_destroy(g);
    g = emu_ctx(-1, 0); // an explicit 0 wins over the environment
    ck_assert_int_eq(emu_cublas_mode(), 0);
    ops_ctx_destroy(g);
    setenv("DIFFOOD_CUBLAS_TF32", "yes", 1); // anything but 0/1 is a usage error, not a fallback
    ops_ctx *c = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&c, "auto", NULL), ERR_USAGE);
    ck_assert_msg(strstr(err_msg(), "DIFFOOD_CUBLAS_TF32") && strstr(err_msg(), "yes"), "message: %s", err_msg());
    ck_assert_int_eq(ops_ctx_create(&c, OPS_DEV_CPU, NULL), ERR_USAGE);
    unsetenv("DIFFOOD_CUBLAS_TF32");
    unsetenv("DIFFOOD_CUDNN_TF32");
}
END_TEST

// --- deferred checks, staged uploads, axpby_rows --------------------------------------------------

START_TEST(test_cuda_load_deferred_input_checks) {
    ops_ctx *g = emu_ctx(-1, -1);
    enum { N = 6, ROWS = 5, DIM = 3, K = 4 };
    int32_t ids[N] = {0, 1, 7, 2, -3, 4}, labels[N] = {0, 1, 2, 3, 9, 1};
    float *table, *y, *logits, *loss, *dl, h[N * DIM];
    int32_t *dids, *dlab;
    ck_assert_int_eq(ops_alloc(g, (void **)&table, ROWS * DIM * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&y, N * DIM * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&logits, N * K * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dl, N * K * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&loss, sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dids, sizeof ids), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dlab, sizeof labels), 0);
    ck_assert_int_eq(ops_fill(g, table, 1.f, ROWS * DIM), 0);
    ck_assert_int_eq(ops_fill(g, logits, 0.5f, N * K), 0);
    ck_assert_int_eq(ops_upload(g, dids, ids, sizeof ids), 0);
    ck_assert_int_eq(ops_upload(g, dlab, labels, sizeof labels), 0);
    // the calls return at once; the next synchronisation point names the first bad value of the
    // first launch that found one
    ck_assert_int_eq(ops_embedding_fwd(g, y, table, dids, N, ROWS, DIM), 0);
    ck_assert_int_eq(ops_softmax_xent_loss(g, loss, dl, logits, dlab, N, K), 0);
    ck_assert_int_eq(ops_download(g, h, y, sizeof h), ERR_INPUT);
    ck_assert_msg(strstr(err_msg(), "embedding_fwd: id 7 at position 2 is outside 0..4"), "message: %s", err_msg());
    ck_assert_int_eq(ops_sync(g), 0); // reported once; the context goes on
    ck_assert_int_eq(ops_softmax_xent_loss(g, loss, dl, logits, dlab, N, K), 0);
    ck_assert_int_eq(ops_sync(g), ERR_INPUT);
    ck_assert_msg(strstr(err_msg(), "softmax_xent_loss: label 9 of row 4 is outside the 4 classes"), "message: %s",
                  err_msg());
    ck_assert_int_eq(ops_embedding_bwd(g, table, y, dids, N, ROWS, DIM), 0);
    ck_assert_int_eq(ops_sync(g), ERR_INPUT);
    ck_assert_msg(strstr(err_msg(), "embedding_bwd: id 7 at position 2"), "message: %s", err_msg());
    // more checking launches than check words between two synchronisation points: the good ones
    // pass, and the one bad launch among them is still found, named
    int32_t good[N] = {0, 1, 2, 3, 4, 0};
    ck_assert_int_eq(ops_upload(g, dids, good, sizeof good), 0);
    int rc = 0;
    for (int i = 0; i < 150 && rc == 0; i++) rc = ops_embedding_fwd(g, y, table, dids, N, ROWS, DIM);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ops_sync(g), 0);
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = ops_embedding_fwd(g, y, table, dids, i == 70 ? N - 1 : N, i == 70 ? 4 : ROWS, DIM);
    if (rc == 0) rc = ops_sync(g);
    ck_assert_int_eq(rc, ERR_INPUT);
    ck_assert_msg(strstr(err_msg(), "id 4 at position 4 is outside 0..3"), "message: %s", err_msg());
    float *all[] = {table, y, logits, dl, loss, (float *)dids, (float *)dlab};
    for (int i = 0; i < 7; i++) ops_free(g, all[i]);
    ops_ctx_destroy(g);
}
END_TEST

// Many uploads from one host buffer that changes between them, without a synchronisation: more
// bytes than the first staging ring, more than its events, and one upload that makes it grow.
START_TEST(test_cuda_load_staged_uploads) {
    ops_ctx *g = emu_ctx(-1, -1);
    enum { NB = 200, PER = 3000, BIG = 800000 };
    float *dev[NB + 1], *host = malloc(sizeof(float) * BIG), *back = malloc(sizeof(float) * BIG);
    ck_assert(host && back);
    for (int b = 0; b <= NB; b++) {
        size_t n = b == NB / 2 ? BIG : PER; // 3.2 MB in the middle: larger than the first ring
        ck_assert_int_eq(ops_alloc(g, (void **)&dev[b], n * sizeof(float)), 0);
        for (size_t i = 0; i < n; i++) host[i] = (float)b + (float)i * 1e-3f;
        ck_assert_msg(ops_upload(g, dev[b], host, n * sizeof(float)) == 0, "upload %d: %s", b, err_msg());
        ck_assert_int_eq(ops_scale(g, dev[b], 2.f, n), 0);
    }
    for (int b = 0; b <= NB; b++) {
        size_t n = b == NB / 2 ? BIG : PER;
        ck_assert_int_eq(ops_download(g, back, dev[b], n * sizeof(float)), 0);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(back[i] == 2.f * ((float)b + (float)i * 1e-3f), "buffer %d element %zu: %g", b, i,
                          (double)back[i]);
        ops_free(g, dev[b]);
    }
    free(host);
    free(back);
    ops_ctx_destroy(g);
}
END_TEST

// axpby_rows gives the bits of one axpby per row, on the CPU and on the emulated backend.
static void rows_equal_axpby(ops_ctx *g) {
    enum { R = 300, P = 37, N = R * P };
    static float x[N], z[N], a[R], b[R], y1[N], y2[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)((i * 7919) % 1000) / 333.f - 1.5f;
        z[i] = (float)((i * 104729) % 1000) / 250.f - 2.f;
    }
    for (int r = 0; r < R; r++) {
        a[r] = sqrtf((float)(r + 1) / R);
        b[r] = sqrtf(1.f - (float)r / R);
    }
    float *dx, *dz, *dy;
    ck_assert_int_eq(ops_alloc(g, (void **)&dx, sizeof x), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dz, sizeof z), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dy, sizeof y1), 0);
    ck_assert_int_eq(ops_upload(g, dx, x, sizeof x), 0);
    ck_assert_int_eq(ops_upload(g, dz, z, sizeof z), 0);
    ck_assert_int_eq(ops_axpby_rows(g, dy, a, dx, b, dz, R, P), 0);
    ck_assert_int_eq(ops_download(g, y1, dy, sizeof y1), 0);
    for (int r = 0; r < R; r++) ck_assert_int_eq(ops_axpby(g, dy + r * P, a[r], dx + r * P, b[r], dz + r * P, P), 0);
    ck_assert_int_eq(ops_download(g, y2, dy, sizeof y2), 0);
    ck_assert_msg(!memcmp(y1, y2, sizeof y1), "axpby_rows differs from axpby per row on %s",
                  ops_device_name(ops_ctx_device(g)));
    ck_assert_int_eq(ops_axpby_rows(g, dy, a, dx, b, dz, -1, P), ERR_USAGE);
    ops_free(g, dx);
    ops_free(g, dz);
    ops_free(g, dy);
}

START_TEST(test_cuda_load_axpby_rows) {
    ops_ctx *c = NULL;
    ck_assert_int_eq(ops_ctx_create(&c, OPS_DEV_CPU, NULL), 0);
    rows_equal_axpby(c);
    ops_ctx_destroy(c);
    if (emu_so[0]) {
        ops_ctx *g = emu_ctx(-1, -1);
        rows_equal_axpby(g);
        ops_ctx_destroy(g);
    }
}
END_TEST

// --- suite --------------------------------------------------------------------------------------

Suite *suite_cuda_load(void) {
    Suite *s = suite_create("cuda_load");
    const char *only = getenv("CK_RUN_SUITE");
    int selected = !only || !*only || !strcmp(only, "cuda_load");
    if (selected) find_libraries();
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 120);
    if (cublas_path[0]) tcase_add_test(tc, test_cuda_load_cublas_table_resolves);
    else if (selected)
        fprintf(stderr, "SKIPPED: 1 cuBLAS symbol test (no %s/lib64/libcublas.so.<major> with include/cublas_api.h; "
                        "set CUDA_HOME)\n", cuda_home);
    if (real_so[0]) tcase_add_test(tc, test_cuda_load_backend_loads_cublas);
    else if (selected) fprintf(stderr, "SKIPPED: 1 CUDA library load test (no lib/libdiffood_cuda.so: CPU-only build)\n");
    tcase_add_test(tc, test_cuda_load_auto_warns_on_unloadable_library);
    if (real_so[0] && !have_driver) tcase_add_test(tc, test_cuda_load_auto_quiet_without_driver);
    else if (selected) fprintf(stderr, "SKIPPED: 1 quiet-fallback test (needs the CUDA library and no NVIDIA driver)\n");
    tcase_add_test(tc, test_cuda_load_axpby_rows);
    if (emu_so[0]) {
        tcase_add_test(tc, test_cuda_load_emulated_cublas_has_the_table);
        tcase_add_test(tc, test_cuda_load_auto_warns_on_missing_cublas);
        tcase_add_test(tc, test_cuda_load_tf32_never_converts);
        tcase_add_test(tc, test_cuda_load_tf32_switches);
        tcase_add_test(tc, test_cuda_load_deferred_input_checks);
        tcase_add_test(tc, test_cuda_load_staged_uploads);
    } else if (selected) {
        fprintf(stderr, "SKIPPED: 6 emulated-backend tests (no BUILD/cuda-emu/libdiffood_cuda.so: make builds it)\n");
    }
    suite_add_tcase(s, tc);
    return s;
}
