// Tests of the CUDA backend's plumbing that run without a GPU, and of the GPU itself where one
// is present: device selection errors and the auto fallback, the shared object's exports and its
// clean failure without a GPU (message carried back through err.h), the gpu-check-ops comparison
// harness (dry run, injected error, usage), the CPU-only build plan (make -n NVCC=), the backend's
// sources run through the host emulator (kernels/cuda/emu/) against the CPU, and, on a GPU
// machine only, CPU-vs-CUDA parity. Tests that need what this machine lacks are not
// registered; the suite prints "SKIPPED: ..." lines to stderr for them instead.
#include <check.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

static char cuda_so[PATH_MAX]; // the CUDA shared object of this build ("" when none)
static char cuda_emu[PATH_MAX]; // the same sources built against the host emulator ("" when none)
static int cuda_gpu;           // 1 when a CUDA context can be created here

// --- helpers ----------------------------------------------------------------------------------

static int file_readable(const char *p) { return access(p, R_OK) == 0; }

// The build's lib/libdiffood_cuda.so: $DIFFOOD_CUDA_LIB, $DIFFOOD_BIN/../lib, the runner's ../lib,
// ./lib.
static void find_cuda_so(void) {
    const char *env = getenv("DIFFOOD_CUDA_LIB"), *bin = getenv("DIFFOOD_BIN");
    char cand[PATH_MAX];
    cuda_so[0] = 0;
    if (env && *env && file_readable(env)) {
        snprintf(cuda_so, sizeof cuda_so, "%s", env);
        return;
    }
    if (bin && *bin) {
        snprintf(cand, sizeof cand, "%.*s/../lib/libdiffood_cuda.so", PATH_MAX - 64, bin);
        if (file_readable(cand)) {
            snprintf(cuda_so, sizeof cuda_so, "%s", cand);
            return;
        }
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) { // where kernels/ops.c itself looks: beside the runner, in ../lib
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand, sizeof cand, "%.*s/../lib/libdiffood_cuda.so", PATH_MAX - 64, exe);
        if (file_readable(cand)) {
            snprintf(cuda_so, sizeof cuda_so, "%s", cand);
            return;
        }
    }
    if (file_readable("lib/libdiffood_cuda.so") && realpath("lib/libdiffood_cuda.so", cand))
        snprintf(cuda_so, sizeof cuda_so, "%s", cand);
}

// The emulated backend (kernels/cuda/emu/, built by make into BUILD/cuda-emu/):
// $DIFFOOD_CUDA_EMU_LIB, else beside the runner in ../cuda-emu/.
static void find_cuda_emu(void) {
    const char *env = getenv("DIFFOOD_CUDA_EMU_LIB");
    cuda_emu[0] = 0;
    if (env && *env && file_readable(env)) {
        snprintf(cuda_emu, sizeof cuda_emu, "%s", env);
        return;
    }
    char exe[PATH_MAX], cand[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(cand, sizeof cand, "%.*s/../cuda-emu/libdiffood_cuda.so", PATH_MAX - 64, exe);
    if (file_readable(cand)) snprintf(cuda_emu, sizeof cuda_emu, "%s", cand);
}

// --- without a GPU ----------------------------------------------------------------------------

START_TEST(test_cuda_ctx_without_gpu_is_device_error) {
    ops_ctx *ctx = (ops_ctx *)0x1;
    err_clear();
    int rc = ops_ctx_create(&ctx, OPS_DEV_CUDA, NULL);
    ck_assert_int_eq(rc, ERR_DEVICE);
    ck_assert_ptr_null(ctx);
    const char *m = err_msg();
    ck_assert_msg(strstr(m, "CUDA") != NULL, "message does not name CUDA: '%s'", m);
    if (cuda_so[0]) // the library loads; the runtime finds no GPU, and says so through err.h
        ck_assert_msg(strstr(m, "no usable CUDA GPU") != NULL, "unclear message: '%s'", m);
    else
        ck_assert_msg(strstr(m, "no CUDA backend") != NULL, "unclear message: '%s'", m);
}
END_TEST

START_TEST(test_cuda_named_devices_without_gpu) {
    ops_ctx *ctx = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "auto", NULL), 0);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ops_ctx_device(ctx), OPS_DEV_CPU);
    float *y = NULL, h[3] = {0};
    ck_assert_int_eq(ops_alloc(ctx, (void **)&y, sizeof h), 0);
    ck_assert_int_eq(ops_fill(ctx, y, 2.5f, 3), 0);
    ck_assert_int_eq(ops_download(ctx, h, y, sizeof h), 0);
    ck_assert(h[0] == 2.5f && h[2] == 2.5f);
    ops_free(ctx, y);
    ops_ctx_destroy(ctx);
    ctx = NULL;
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "cuda", NULL), ERR_DEVICE);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(ops_ctx_create_named(&ctx, "gpu", NULL), ERR_USAGE);
    ck_assert_msg(strstr(err_msg(), "gpu") != NULL, "message does not name the word: '%s'", err_msg());
}
END_TEST

// --- the shared object ------------------------------------------------------------------------

START_TEST(test_cuda_so_exports_and_fails_cleanly) {
    void *h = dlopen(cuda_so, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", cuda_so, dlerror());
    ops_cuda_backend_fn be = (ops_cuda_backend_fn)dlsym(h, OPS_CUDA_BACKEND_SYMBOL);
    ops_cuda_ctx_init_fn init = (ops_cuda_ctx_init_fn)dlsym(h, OPS_CUDA_INIT_SYMBOL);
    ck_assert_msg(be && init, "%s lacks its entry points", cuda_so);
    ck_assert_ptr_nonnull(dlsym(h, "ops_cuda_ctx_fini"));
    ck_assert_ptr_null(dlsym(h, "cuda_fill")); // internals stay hidden
    const ops_backend *t = be();
    ck_assert_str_eq(t->name, "cuda");
#define CHECK_OP(op, params, args) ck_assert_msg(t->op != NULL, "op %s missing from the CUDA table", #op);
    OPS_LIST(CHECK_OP)
#undef CHECK_OP
    ops_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.be = t;
    ctx.dev = OPS_DEV_CUDA;
    ctx.opt = ops_options_default();
    err_clear();
    int rc = init(&ctx);
    if (!cuda_gpu) {
        ck_assert_int_eq(rc, ERR_DEVICE);
        ck_assert_ptr_null(ctx.impl);
        ck_assert_ptr_null((void *)ctx.fini);
        ck_assert_msg(strstr(err_msg(), "cudaGetDeviceCount") != NULL, "message did not reach err.h: '%s'", err_msg());
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_nonnull(ctx.impl);
        ctx.fini(&ctx);
    }
    dlclose(h);
}
END_TEST

// --- the comparison harness -------------------------------------------------------------------

static char out[1 << 20];

START_TEST(test_cuda_gpu_check_dry_run) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --dry-run", tu_bin());
    int st = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(st == 0, "exit %d:\n%s", st, out);
    // every compute op of OPS_LIST has rows (memory ops are exercised by every row)
    static const char *const skip[] = {"alloc", "free", "upload", "download", "sync", NULL};
#define CHECK_ROW(op, params, args)                                                           \
    do {                                                                                       \
        int s_ = 0;                                                                            \
        for (int i_ = 0; skip[i_]; i_++) s_ |= !strcmp(skip[i_], #op);                         \
        char pat_[64];                                                                         \
        snprintf(pat_, sizeof pat_, "\n%s ", #op);                                             \
        ck_assert_msg(s_ || strstr(out, pat_) != NULL, "no row for op %s in:\n%.2000s", #op, out); \
    } while (0);
    OPS_LIST(CHECK_ROW)
#undef CHECK_ROW
    ck_assert_msg(strstr(out, " FAIL") == NULL, "a dry-run row failed:\n%s", out);
    ck_assert_msg(strstr(out, " tf32 ") != NULL, "no TF32 phase rows");
    ck_assert_msg(strstr(out, ", 0 failed") != NULL, "no summary line");
}
END_TEST

START_TEST(test_cuda_gpu_check_catches_error) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --dry-run --inject-error --only add", tu_bin());
    int st = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(st == 1, "an injected error must fail the run (exit %d):\n%s", st, out);
    ck_assert_msg(strstr(out, "FAIL") != NULL, "no FAIL row:\n%s", out);
    ck_assert_msg(strstr(out, ", 1 failed") != NULL, "exactly one row must fail:\n%s", out);
}
END_TEST

START_TEST(test_cuda_gpu_check_usage) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --frobnicate", tu_bin());
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--frobnicate") != NULL, "message does not name the option: %s", out);
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --seed x", tu_bin());
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --help", tu_bin());
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "--dry-run") != NULL, "help lacks --dry-run");
    if (!cuda_gpu) { // a real run without a GPU fails with the reason
        snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops' --only fill", tu_bin());
        ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 1);
        ck_assert_msg(strstr(out, "CUDA") != NULL, "no reason given: %s", out);
    }
}
END_TEST

// --- the build plan ---------------------------------------------------------------------------

START_TEST(test_cuda_make_plans) {
    tu_setup();
    const char *dir = tu_dir;
    char cmd[PATH_MAX * 2];
    // a clean environment: `make X=... test` passes its variables down through MAKEFLAGS
    snprintf(cmd, sizeof cmd, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n NVCC= BUILD=%s/b BIN=%s/b/bin all", dir,
             dir);
    int st = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(st == 0, "make -n NVCC= failed (%d):\n%.3000s", st, out);
    ck_assert_msg(strstr(out, "/b/lib/libdiffood_cuda.so") == NULL && strstr(out, "-gencode") == NULL,
                  "a CPU-only build plans CUDA work:\n%.3000s", out);
    ck_assert_msg(strstr(out, "kernels/cuda/emu/build.sh") != NULL, "the emulated backend is not planned");
    ck_assert_msg(strstr(out, "CPU-only build") != NULL, "the build does not say it is CPU-only");
    if (system("command -v nvcc >/dev/null 2>&1 || test -x /usr/local/cuda/bin/nvcc") == 0 &&
        system("test -e /usr/local/cuda/include/cudnn.h") == 0) {
        snprintf(cmd, sizeof cmd, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n BUILD=%s/b BIN=%s/b/bin SM='80 90' all",
                 dir, dir);
        st = tu_capture(cmd, out, sizeof out);
        ck_assert_msg(st == 0, "make -n failed (%d):\n%.3000s", st, out);
        ck_assert_msg(strstr(out, "/b/lib/libdiffood_cuda.so") != NULL, "no CUDA library beside BIN:\n%.3000s", out);
        ck_assert_msg(strstr(out, "code=sm_80") && strstr(out, "code=sm_90") && strstr(out, "code=compute_90"),
                      "SM list not honoured:\n%.3000s", out);
    }
    // STATIC_DEPS=1: Debian archives, libgomp static, cJSON copied beside, programs look in ../lib
    snprintf(cmd, sizeof cmd, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n STATIC_DEPS=1 BUILD=%s/b BIN=%s/b/bin all",
             dir, dir);
    st = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(st == 0, "make -n STATIC_DEPS=1 failed (%d):\n%.3000s", st, out);
    ck_assert_msg(strstr(out, "-Wl,-Bstatic -llmdb") && strstr(out, "-lopenblas") && strstr(out, "-lgomp") &&
                      strstr(out, "/b/lib/libcjson.so.1") && strstr(out, "$ORIGIN/../lib"),
                  "STATIC_DEPS=1 plan incomplete:\n%.3000s", out);
    tu_teardown();
}
END_TEST

// --- with a GPU -------------------------------------------------------------------------------

// CUDA (real or emulated, whichever DIFFOOD_CUDA_LIB names) against the CPU: Philox streams equal
// bit for bit.
static void randn_bitexact_body(void) {
    ops_ctx *c = NULL, *g = NULL;
    ck_assert_int_eq(ops_ctx_create(&c, OPS_DEV_CPU, NULL), 0);
    ck_assert_int_eq(ops_ctx_create(&g, OPS_DEV_CUDA, NULL), 0);
    enum { N = 4099 };
    static float a[N], b[N], x[N], da[N], db[N];
    for (int i = 0; i < N; i++) x[i] = (float)i / N - 0.5f;
    float *ya, *yb, *xb;
    philox_key key = {11u, 22u, 3u, 4u};
    ck_assert_int_eq(ops_alloc(c, (void **)&ya, sizeof a), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&yb, sizeof b), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&xb, sizeof x), 0);
    ck_assert_int_eq(ops_randn(c, ya, N, key, 5), 0);
    ck_assert_int_eq(ops_randn(g, yb, N, key, 5), 0);
    ck_assert_int_eq(ops_download(c, a, ya, sizeof a), 0);
    ck_assert_int_eq(ops_download(g, b, yb, sizeof b), 0);
    ck_assert_msg(!memcmp(a, b, sizeof a), "randn differs between CPU and CUDA");
    ck_assert_int_eq(ops_dropout_fwd(c, ya, x, N, 0.3f, key, 7), 0); // CPU memory is host memory
    ck_assert_int_eq(ops_upload(g, xb, x, sizeof x), 0);
    ck_assert_int_eq(ops_dropout_fwd(g, yb, xb, N, 0.3f, key, 7), 0);
    ck_assert_int_eq(ops_download(c, da, ya, sizeof da), 0);
    ck_assert_int_eq(ops_download(g, db, yb, sizeof db), 0);
    ck_assert_msg(!memcmp(da, db, sizeof da), "dropout mask differs between CPU and CUDA");
    ops_free(c, ya);
    ops_free(g, yb);
    ops_free(g, xb);
    ops_ctx_destroy(g);
    ops_ctx_destroy(c);
}

// Bad shapes and ids give the documented codes with messages; the context stays usable.
static void bad_input_body(void) {
    ops_ctx *g = NULL;
    ck_assert_int_eq(ops_ctx_create(&g, OPS_DEV_CUDA, NULL), 0);
    ops_conv_shape s = {1, 1, 4, 4, 1, 3, 3, 0, 1, 1, 1, 1}; // stride 0
    float *buf;
    ck_assert_int_eq(ops_alloc(g, (void **)&buf, 64 * sizeof(float)), 0);
    ck_assert_int_eq(ops_conv2d_fwd(g, &s, buf, buf, buf, NULL), ERR_USAGE);
    ck_assert_msg(strstr(err_msg(), "conv2d") != NULL, "message: %s", err_msg());
    int32_t ids[2] = {0, 9}, *dids;
    ck_assert_int_eq(ops_alloc(g, (void **)&dids, sizeof ids), 0);
    ck_assert_int_eq(ops_upload(g, dids, ids, sizeof ids), 0);
    // checked on the device, reported at the next synchronisation point (ops.h)
    int rc = ops_embedding_fwd(g, buf, buf, dids, 2, 4, 2);
    if (rc == 0) rc = ops_sync(g);
    ck_assert_int_eq(rc, ERR_INPUT);
    ck_assert_msg(strstr(err_msg(), "id 9 at position 1") != NULL, "message: %s", err_msg());
    ck_assert_int_eq(ops_fill(g, buf, 1.f, 64), 0); // the context still works
    ck_assert_int_eq(ops_sync(g), 0);
    ops_free(g, dids);
    ops_free(g, buf);
    ops_ctx_destroy(g);
}

// One pass of the determinism check: convolution (all directions), GroupNorm forward and
// backward, BatchNorm training, bmm, the MSE loss and sumsq; the outputs that the ops assign
// (y, m, r, loss) are filled with `out_fill` first, the accumulated gradients zeroed.
static void determinism_pass(ops_ctx *g, const ops_conv_shape *s, int N, int C, int H, int W, size_t nw, float *x,
                             float *w, float *y, float *dx, float *dw, float *db, float *m, float *r, float *gb,
                             float *loss, float out_fill, float *res) {
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * ops_conv_out_h(s) * ops_conv_out_w(s);
    ck_assert_int_eq(ops_fill(g, y, out_fill, nx), 0);
    ck_assert_int_eq(ops_fill(g, m, out_fill, (size_t)C * N), 0);
    ck_assert_int_eq(ops_fill(g, r, out_fill, (size_t)C * N), 0);
    ck_assert_int_eq(ops_fill(g, loss, out_fill, 2), 0);
    ck_assert_int_eq(ops_fill(g, dx, 0.f, nx), 0);
    ck_assert_int_eq(ops_fill(g, dw, 0.f, nw), 0);
    ck_assert_int_eq(ops_fill(g, db, 0.f, C), 0);
    ck_assert_int_eq(ops_fill(g, gb, 0.f, 2 * C), 0);
    ck_assert_int_eq(ops_conv2d_fwd(g, s, y, x, w, db), 0);
    ck_assert_int_eq(ops_conv2d_bwd_data(g, s, dx, y, w), 0);
    ck_assert_int_eq(ops_conv2d_bwd_weight(g, s, dw, db, y, x), 0);
    ck_assert_int_eq(ops_groupnorm_fwd(g, OPS_ACT_SWISH, y, m, r, x, NULL, NULL, N, C, H * W, 8, 1e-6f), 0);
    ck_assert_int_eq(ops_groupnorm_bwd(g, OPS_ACT_SWISH, dx, gb, gb + C, y, x, m, r, NULL, NULL, N, C, H * W, 8), 0);
    ck_assert_int_eq(ops_batchnorm_fwd_train(g, OPS_ACT_RELU, y, m, r, NULL, NULL, dx, NULL, NULL, N, C, H * W, 0.1f,
                                             1e-5f), 0);
    ck_assert_int_eq(ops_bmm(g, y, x, dx, N, 40, 40, 80, 0, 1, 1.f, 0.f), 0);
    ck_assert_int_eq(ops_mse_sum_loss(g, loss, NULL, y, x, N, (int)(ny / N)), 0);
    ck_assert_int_eq(ops_sumsq(g, loss + 1, dx, nx), 0);
    if (!res) return;
    ck_assert_int_eq(ops_download(g, res, dx, nx * sizeof(float)), 0);
    ck_assert_int_eq(ops_download(g, res + nx, y, nx * sizeof(float)), 0);
    ck_assert_int_eq(ops_download(g, res + 2 * nx, dw, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_download(g, res + 2 * nx + nw, gb, 2 * C * sizeof(float)), 0);
    ck_assert_int_eq(ops_download(g, res + 2 * nx + nw + 2 * C, loss, 2 * sizeof(float)), 0);
}

// The same calls on the same inputs give the same bits, after other calls on other inputs ran in
// between and with the assigned outputs poisoned (NaN) beforehand.
//
// What this can check depends on the backend. On a GPU (test_cuda_gpu_determinism) it is the
// real determinism test of ops.h: blocks run concurrently, atomics and reductions can meet in
// any order, cuDNN may pick nondeterministic algorithms; any of those shows as differing bits.
// In the host emulator (test_cuda_emu_no_carried_state) blocks run one after another and the
// cuDNN algorithm list is fixed, so scheduling and algorithm choice cannot differ between two
// runs: there it CANNOT find races, atomics-order or algorithm nondeterminism, and does not try.
// What it does check there (and on a GPU) is the backend's own code: an op that reads an output
// before writing it, leaves part of an output unwritten, or carries state from one call to the
// next (a workspace, a reduction buffer or a cached descriptor reused without clearing) gives
// NaN or the perturbing pass's values in the second result.
static void determinism_body(void) {
    ops_ctx *g = NULL;
    ck_assert_int_eq(ops_ctx_create(&g, OPS_DEV_CUDA, NULL), 0);
    enum { N = 4, C = 32, H = 20, W = 20, NX = N * C * H * W };
    ops_conv_shape s = {N, C, H, W, C, 3, 3, 2, 0, 0, 1, 1};
    size_t nw = (size_t)C * C * 9;
    static float hx[NX], res[2][NX * 3];
    uint32_t st = 12345u;
    for (int i = 0; i < NX; i++) {
        st = st * 1664525u + 1013904223u;
        hx[i] = (float)(st >> 8) / 16777216.0f - 0.5f;
    }
    float *x, *w, *y, *dx, *dw, *db, *m, *r, *gb, *loss;
    ck_assert_int_eq(ops_alloc(g, (void **)&x, sizeof hx), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&w, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&y, sizeof hx), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dx, sizeof hx), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&dw, nw * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&db, C * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&m, C * N * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&r, C * N * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&gb, 2 * C * sizeof(float)), 0);
    ck_assert_int_eq(ops_alloc(g, (void **)&loss, 2 * sizeof(float)), 0);
    ck_assert_int_eq(ops_upload(g, x, hx, sizeof hx), 0);
    ck_assert_int_eq(ops_upload(g, w, hx, nw * sizeof(float)), 0);
    determinism_pass(g, &s, N, C, H, W, nw, x, w, y, dx, dw, db, m, r, gb, loss, 0.f, res[0]);
    // other inputs through the same calls (workspaces and buffers now hold other values)
    static float hp[NX];
    for (int i = 0; i < NX; i++) hp[i] = -3.f * hx[i] + 0.25f;
    ck_assert_int_eq(ops_upload(g, x, hp, sizeof hp), 0);
    ck_assert_int_eq(ops_upload(g, w, hp + 7, nw * sizeof(float)), 0);
    determinism_pass(g, &s, N, C, H, W, nw, x, w, y, dx, dw, db, m, r, gb, loss, 0.f, NULL);
    ck_assert_int_eq(ops_upload(g, x, hx, sizeof hx), 0);
    ck_assert_int_eq(ops_upload(g, w, hx, nw * sizeof(float)), 0);
    determinism_pass(g, &s, N, C, H, W, nw, x, w, y, dx, dw, db, m, r, gb, loss, NAN, res[1]);
    size_t nres = sizeof res[0] / sizeof res[0][0], first = 0;
    while (first < nres && !memcmp(&res[0][first], &res[1][first], sizeof(float))) first++;
    ck_assert_msg(first == nres,
                  "the same calls on the same inputs gave other bits the second time (first at float %zu: %g vs %g): "
                  "nondeterminism, an output read before it was written, or state carried between calls",
                  first, first < nres ? (double)res[0][first] : 0.0, first < nres ? (double)res[1][first] : 0.0);
    float *all[] = {x, w, y, dx, dw, db, m, r, gb, loss};
    for (int i = 0; i < 10; i++) ops_free(g, all[i]);
    ops_ctx_destroy(g);
}

START_TEST(test_cuda_gpu_determinism) { determinism_body(); }
END_TEST

START_TEST(test_cuda_emu_no_carried_state) {
    setenv("DIFFOOD_CUDA_LIB", cuda_emu, 1);
    determinism_body();
}
END_TEST

START_TEST(test_cuda_gpu_randn_bitexact) { randn_bitexact_body(); }
END_TEST

START_TEST(test_cuda_gpu_bad_input_messages) { bad_input_body(); }
END_TEST

// --- the emulated backend (any machine) -------------------------------------------------------

START_TEST(test_cuda_emu_randn_bitexact) {
    setenv("DIFFOOD_CUDA_LIB", cuda_emu, 1);
    randn_bitexact_body();
}
END_TEST

START_TEST(test_cuda_emu_bad_input_messages) {
    setenv("DIFFOOD_CUDA_LIB", cuda_emu, 1);
    bad_input_body();
}
END_TEST

// Every op of the backend's sources (own kernels, cuBLAS mapping, cuDNN plumbing and padding)
// against the CPU through the emulator, small cases.
START_TEST(test_cuda_emu_every_op) {
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "DIFFOOD_CUDA_LIB='%s' '%s/gpu-check-ops' --quick", cuda_emu, tu_bin());
    int st = tu_capture(cmd, out, sizeof out);
    size_t len = strlen(out);
    const char *tail = len > 3000 ? out + len - 3000 : out; // Check messages are limited
    ck_assert_msg(st == 0, "gpu-check-ops on the emulated backend failed (%d):\n%s", st, tail);
    ck_assert_msg(strstr(out, "cuda vs cpu") && strstr(out, ", 0 failed (0 call errors)"), "unexpected output:\n%s", tail);
}
END_TEST

START_TEST(test_cuda_gpu_check_full) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s/gpu-check-ops'", tu_bin());
    int st = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(st == 0, "gpu-check-ops failed (%d):\n%s", st, out);
}
END_TEST

// --- suite ------------------------------------------------------------------------------------

Suite *suite_cuda(void) {
    Suite *s = suite_create("cuda");
    const char *only = getenv("CK_RUN_SUITE");
    int selected = !only || !*only || !strcmp(only, "cuda");
    if (selected) {
        find_cuda_emu();
        find_cuda_so();
        if (cuda_so[0]) setenv("DIFFOOD_CUDA_LIB", cuda_so, 1);
        ops_ctx *ctx = NULL;
        if (ops_ctx_create(&ctx, OPS_DEV_CUDA, NULL) == 0) {
            cuda_gpu = 1;
            ops_ctx_destroy(ctx);
        }
        err_clear();
    }
    TCase *tc = tcase_create("plumbing");
    tcase_set_timeout(tc, 60);
    if (!cuda_gpu) {
        tcase_add_test(tc, test_cuda_ctx_without_gpu_is_device_error);
        tcase_add_test(tc, test_cuda_named_devices_without_gpu);
    }
    if (cuda_so[0]) tcase_add_test(tc, test_cuda_so_exports_and_fails_cleanly);
    else if (selected) fprintf(stderr, "SKIPPED: 1 CUDA library test (no libdiffood_cuda.so: CPU-only build)\n");
    tcase_add_test(tc, test_cuda_gpu_check_dry_run);
    tcase_add_test(tc, test_cuda_gpu_check_catches_error);
    tcase_add_test(tc, test_cuda_gpu_check_usage);
    if (file_readable("Makefile") && file_readable("kernels/cuda/cuda_internal.h"))
        tcase_add_test(tc, test_cuda_make_plans);
    else if (selected)
        fprintf(stderr, "SKIPPED: 1 build-plan test (not run from the source tree)\n");
    suite_add_tcase(s, tc);
    if (cuda_gpu) {
        TCase *g = tcase_create("gpu");
        tcase_set_timeout(g, 300);
        tcase_add_test(g, test_cuda_gpu_randn_bitexact);
        tcase_add_test(g, test_cuda_gpu_bad_input_messages);
        tcase_add_test(g, test_cuda_gpu_determinism);
        tcase_add_test(g, test_cuda_gpu_check_full);
        suite_add_tcase(s, g);
    } else if (selected) {
        fprintf(stderr, "SKIPPED: 4 GPU tests (no GPU)\n");
    }
    if (cuda_emu[0]) {
        TCase *e = tcase_create("emulated");
        tcase_set_timeout(e, 180);
        tcase_add_test(e, test_cuda_emu_randn_bitexact);
        tcase_add_test(e, test_cuda_emu_bad_input_messages);
        tcase_add_test(e, test_cuda_emu_no_carried_state);
        tcase_add_test(e, test_cuda_emu_every_op);
        suite_add_tcase(s, e);
    } else if (selected) {
        fprintf(stderr, "SKIPPED: 4 emulated-backend tests (no BUILD/cuda-emu/libdiffood_cuda.so: make builds it)\n");
    }
    return s;
}
