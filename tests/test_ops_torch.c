// test_ops_torch: PyTorch spot checks of the trickiest CPU ops: GroupNorm+swish forward and
// backward, BatchNorm training (running statistics included) and eval, convolution with stride 2
// and asymmetric padding, and stride 1 (Winograd) (forward and all gradients), AdamW and SGD over 3 steps, the timestep
// embedding, scaled softmax. The suite's setup writes the inputs as raw float32 files to a
// temporary directory and runs one script under $DIFFOOD_PYTHON (default /usr/bin/python3)
// that writes torch's results next to them; each test compares one op (1e-5 relative).
// A Python without torch is a failure with a clear message (make deps installs it).
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kernels/cpu/ref/ref_ops.h"
#include "kernels/ops.h"
#include "tests/test_ops_ref.h"

#define TTOL 1e-5

static char tdir[256];
static int py_status = -1; // exit status of the script (0 ok, 3 no torch)
static char py_cmd[1024];

// Inputs (sizes shared with the script below).
enum { GN_N = 3, GN_C = 12, GN_HW = 35, GN_G = 4 };
enum { BN_N = 4, BN_C = 6, BN_HW = 15 };
enum { CV_N = 3, CV_CI = 8, CV_H = 9, CV_W = 8, CV_CO = 9 };
enum { OPT_N = 1000, SM_R = 7, SM_C = 33 };
static float gn_x[GN_N * GN_C * GN_HW], gn_g[GN_C], gn_b[GN_C], gn_dy[GN_N * GN_C * GN_HW];
static float bn_x[BN_N * BN_C * BN_HW], bn_g[BN_C], bn_b[BN_C], bn_rm[BN_C], bn_rv[BN_C], bn_dy[BN_N * BN_C * BN_HW];
static float cv_x[CV_N * CV_CI * CV_H * CV_W], cv_w[CV_CO * CV_CI * 9], cv_b[CV_CO], cv_dy[CV_N * CV_CO * CV_H * CV_W];
static float opt_p[OPT_N], opt_g[3][OPT_N];
static float sm_x[SM_R * SM_C], sm_dy[SM_R * SM_C];
static const float ts_t[6] = {0, 1, 17, 250.5f, 500, 999};
// conv geometries: (pad_t, pad_l, pad_b, pad_r, stride)
static const int cv_geo[4][5] = {{0, 0, 1, 1, 2}, {2, 1, 0, 2, 2}, {1, 1, 1, 1, 1}, {0, 2, 2, 0, 1}};

static const char *script =
    "import sys, os\n"
    "try:\n"
    "    import numpy as np, torch, torch.nn.functional as F\n"
    "except ImportError as e:\n"
    "    print('no torch/numpy: %s' % e, file=sys.stderr); sys.exit(3)\n"
    "d = sys.argv[1]\n"
    "def rd(n, *shape): return torch.from_numpy(np.fromfile(os.path.join(d, n), dtype=np.float32).reshape(shape))\n"
    "def wr(n, t): t.detach().contiguous().numpy().astype(np.float32).tofile(os.path.join(d, n))\n"
    "torch.manual_seed(0)\n"
    "# groupnorm + swish\n"
    "x = rd('gn_x', 3, 12, 5, 7).requires_grad_(); g = rd('gn_g', 12).requires_grad_(); b = rd('gn_b', 12).requires_grad_()\n"
    "y = F.silu(F.group_norm(x, 4, g, b, eps=1e-6)); y.backward(rd('gn_dy', 3, 12, 5, 7))\n"
    "wr('gn_y', y); wr('gn_dx', x.grad); wr('gn_dg', g.grad); wr('gn_db', b.grad)\n"
    "# batchnorm training + relu, running stats, then eval\n"
    "x = rd('bn_x', 4, 6, 3, 5).requires_grad_(); g = rd('bn_g', 6).requires_grad_(); b = rd('bn_b', 6).requires_grad_()\n"
    "rm = rd('bn_rm', 6).clone(); rv = rd('bn_rv', 6).clone()\n"
    "y = F.relu(F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)); y.backward(rd('bn_dy', 4, 6, 3, 5))\n"
    "wr('bn_y', y); wr('bn_dx', x.grad); wr('bn_dg', g.grad); wr('bn_db', b.grad); wr('bn_rm_out', rm); wr('bn_rv_out', rv)\n"
    "with torch.no_grad(): wr('bn_ye', F.relu(F.batch_norm(x, rm, rv, g, b, training=False, eps=1e-5)))\n"
    "# convolutions with stride 2 and asymmetric zero padding\n"
    "for k, (pt, pl, pb, pr, s) in enumerate([(0, 0, 1, 1, 2), (2, 1, 0, 2, 2), (1, 1, 1, 1, 1), (0, 2, 2, 0, 1)]):\n"
    "    x = rd('cv_x', 3, 8, 9, 8).requires_grad_(); w = rd('cv_w', 9, 8, 3, 3).requires_grad_(); b = rd('cv_b', 9).requires_grad_()\n"
    "    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=s)\n"
    "    dy = rd('cv_dy', -1)[:y.numel()].reshape(y.shape); y.backward(dy)\n"
    "    wr('cv%d_y' % k, y); wr('cv%d_dx' % k, x.grad); wr('cv%d_dw' % k, w.grad); wr('cv%d_db' % k, b.grad)\n"
    "# optimisers, 3 steps\n"
    "gs = [rd('opt_g%d' % i, 1000) for i in range(3)]\n"
    "def run(opt_fn, tag):\n"
    "    p = torch.nn.Parameter(rd('opt_p', 1000).clone()); o = opt_fn([p])\n"
    "    for gi in gs: p.grad = gi.clone(); o.step()\n"
    "    wr(tag, p)\n"
    "    return o, p\n"
    "o, p = run(lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), 'adamw_p')\n"
    "wr('adamw_m', o.state[p]['exp_avg']); wr('adamw_v', o.state[p]['exp_avg_sq'])\n"
    "run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3), 'sgd_p')\n"
    "run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True), 'sgdn_p')\n"
    "# timestep embedding (the DDIM reference get_timestep_embedding)\n"
    "import math\n"
    "def temb(t, dim):\n"
    "    half = dim // 2; e = math.log(10000) / (half - 1)\n"
    "    e = torch.exp(torch.arange(half, dtype=torch.float32) * -e)\n"
    "    e = t.float()[:, None] * e[None, :]; e = torch.cat([torch.sin(e), torch.cos(e)], dim=1)\n"
    "    return F.pad(e, (0, 1, 0, 0)) if dim % 2 == 1 else e\n"
    "t = torch.tensor([0, 1, 17, 250.5, 500, 999], dtype=torch.float32)\n"
    "wr('ts_128', temb(t, 128)); wr('ts_7', temb(t, 7))\n"
    "# scaled softmax\n"
    "x = rd('sm_x', 7, 33).requires_grad_(); y = torch.softmax(x * 0.125, dim=-1); y.backward(rd('sm_dy', 7, 33))\n"
    "wr('sm_y', y); wr('sm_dx', x.grad)\n";

static void put(const char *name, const float *v, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tdir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(v, sizeof *v, n, f);
        fclose(f);
    }
}

// torch's result `name` (n floats, malloc'd), failing the test when missing or short.
static float *get(const char *name, size_t n) {
    ck_assert_msg(py_status != 3, "no PyTorch check ran: %s lacks torch or numpy (set DIFFOOD_PYTHON=/usr/bin/python3, or run `make deps`)", py_cmd);
    ck_assert_msg(py_status == 0, "the PyTorch reference script failed (status %d): %s", py_status, py_cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tdir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "PyTorch output %s is missing", path);
    float *v = malloc(n * sizeof *v);
    size_t got = fread(v, sizeof *v, n, f);
    fclose(f);
    ck_assert_msg(got == n, "PyTorch output %s has %zu floats, expected %zu", path, got, n);
    return v;
}

// Compares ours (float) with torch's file `name`.
static void cmp(const char *name, const float *ours, size_t n, double tol) {
    float *theirs = get(name, n);
    double *td = ref_dup(theirs, n);
    double e = ref_rel_err(ours, td, n);
    ck_assert_msg(e <= tol, "%s: relative error vs PyTorch %.3g > %.3g", name, e, tol);
    free(theirs), free(td);
}

static void torch_setup(void) {
    ref_fill_uniform(gn_x, sizeof gn_x / 4, 1, -2, 3);
    ref_fill_uniform(gn_g, GN_C, 2, 0.5f, 1.5f);
    ref_fill_uniform(gn_b, GN_C, 3, -0.5f, 0.5f);
    ref_fill_uniform(gn_dy, sizeof gn_dy / 4, 4, -1, 1);
    ref_fill_uniform(bn_x, sizeof bn_x / 4, 5, -2, 3);
    ref_fill_uniform(bn_g, BN_C, 6, 0.5f, 1.5f);
    ref_fill_uniform(bn_b, BN_C, 7, -0.5f, 0.5f);
    ref_fill_uniform(bn_rm, BN_C, 8, -0.3f, 0.3f);
    ref_fill_uniform(bn_rv, BN_C, 9, 0.5f, 2.0f);
    ref_fill_uniform(bn_dy, sizeof bn_dy / 4, 10, -1, 1);
    ref_fill_uniform(cv_x, sizeof cv_x / 4, 11, -1, 1);
    ref_fill_uniform(cv_w, sizeof cv_w / 4, 12, -1, 1);
    ref_fill_uniform(cv_b, CV_CO, 13, -1, 1);
    ref_fill_uniform(cv_dy, sizeof cv_dy / 4, 14, -1, 1);
    ref_fill_uniform(opt_p, OPT_N, 15, -1, 1);
    for (int i = 0; i < 3; i++) ref_fill_uniform(opt_g[i], OPT_N, 16 + i, -0.5f, 0.5f);
    ref_fill_uniform(sm_x, sizeof sm_x / 4, 20, -20, 20);
    ref_fill_uniform(sm_dy, sizeof sm_dy / 4, 21, -1, 1);
    snprintf(tdir, sizeof tdir, "/tmp/diffood-ops-torch-XXXXXX");
    if (!mkdtemp(tdir)) {
        py_status = -2;
        return;
    }
    put("gn_x", gn_x, sizeof gn_x / 4), put("gn_g", gn_g, GN_C), put("gn_b", gn_b, GN_C), put("gn_dy", gn_dy, sizeof gn_dy / 4);
    put("bn_x", bn_x, sizeof bn_x / 4), put("bn_g", bn_g, BN_C), put("bn_b", bn_b, BN_C);
    put("bn_rm", bn_rm, BN_C), put("bn_rv", bn_rv, BN_C), put("bn_dy", bn_dy, sizeof bn_dy / 4);
    put("cv_x", cv_x, sizeof cv_x / 4), put("cv_w", cv_w, sizeof cv_w / 4), put("cv_b", cv_b, CV_CO);
    put("cv_dy", cv_dy, sizeof cv_dy / 4), put("opt_p", opt_p, OPT_N);
    put("opt_g0", opt_g[0], OPT_N), put("opt_g1", opt_g[1], OPT_N), put("opt_g2", opt_g[2], OPT_N);
    put("sm_x", sm_x, sizeof sm_x / 4), put("sm_dy", sm_dy, sizeof sm_dy / 4);
    char path[512];
    snprintf(path, sizeof path, "%s/ref.py", tdir);
    FILE *f = fopen(path, "w");
    if (!f) {
        py_status = -2;
        return;
    }
    fputs(script, f);
    fclose(f);
    const char *py = getenv("DIFFOOD_PYTHON");
    snprintf(py_cmd, sizeof py_cmd, "%s %s/ref.py %s", py && *py ? py : "/usr/bin/python3", tdir, tdir);
    int rc = system(py_cmd);
    py_status = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void torch_teardown(void) {
    if (!tdir[0] || strncmp(tdir, "/tmp/diffood-ops-torch-", 23) != 0) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
    if (system(cmd) != 0) fprintf(stderr, "test_ops_torch: could not remove %s\n", tdir);
}

START_TEST(test_torch_groupnorm) {
    size_t n = sizeof gn_x / 4;
    float y[sizeof gn_x / 4], dx[sizeof gn_x / 4] = {0}, dg[GN_C] = {0}, db[GN_C] = {0}, mean[GN_N * GN_G], rstd[GN_N * GN_G];
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_groupnorm_fwd(ctx, OPS_ACT_SWISH, y, mean, rstd, gn_x, gn_g, gn_b, GN_N, GN_C, GN_HW, GN_G, 1e-6f), 0);
    ck_assert_int_eq(ops_groupnorm_bwd(ctx, OPS_ACT_SWISH, dx, dg, db, gn_dy, gn_x, mean, rstd, gn_g, gn_b, GN_N, GN_C,
                                       GN_HW, GN_G), 0);
    cmp("gn_y", y, n, TTOL), cmp("gn_dx", dx, n, TTOL), cmp("gn_dg", dg, GN_C, TTOL), cmp("gn_db", db, GN_C, TTOL);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_torch_batchnorm) {
    size_t n = sizeof bn_x / 4;
    float y[sizeof bn_x / 4], dx[sizeof bn_x / 4] = {0}, dg[BN_C] = {0}, db[BN_C] = {0}, mean[BN_C], rstd[BN_C];
    float rm[BN_C], rv[BN_C];
    memcpy(rm, bn_rm, sizeof rm), memcpy(rv, bn_rv, sizeof rv);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_batchnorm_fwd_train(ctx, OPS_ACT_RELU, y, mean, rstd, rm, rv, bn_x, bn_g, bn_b, BN_N, BN_C, BN_HW,
                                             0.1f, 1e-5f), 0);
    ck_assert_int_eq(ops_batchnorm_bwd(ctx, OPS_ACT_RELU, dx, dg, db, bn_dy, bn_x, mean, rstd, bn_g, bn_b, BN_N, BN_C, BN_HW), 0);
    cmp("bn_y", y, n, TTOL), cmp("bn_dx", dx, n, TTOL), cmp("bn_dg", dg, BN_C, TTOL), cmp("bn_db", db, BN_C, TTOL);
    cmp("bn_rm_out", rm, BN_C, TTOL), cmp("bn_rv_out", rv, BN_C, TTOL);
    ck_assert_int_eq(ops_batchnorm_fwd_eval(ctx, OPS_ACT_RELU, y, bn_x, bn_g, bn_b, rm, rv, BN_N, BN_C, BN_HW, 1e-5f), 0);
    cmp("bn_ye", y, n, TTOL);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_torch_conv) {
    const int *g = cv_geo[_i];
    ops_conv_shape s = {CV_N, CV_CI, CV_H, CV_W, CV_CO, 3, 3, g[4], g[0], g[1], g[2], g[3]};
    size_t ny = (size_t)CV_N * CV_CO * ops_conv_out_h(&s) * ops_conv_out_w(&s), nx = sizeof cv_x / 4, nw = sizeof cv_w / 4;
    float *y = malloc(ny * sizeof *y), *dx = calloc(nx, sizeof *dx), *dw = calloc(nw, sizeof *dw), db[CV_CO] = {0};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_conv2d_fwd(ctx, &s, y, cv_x, cv_w, cv_b), 0);
    ck_assert_int_eq(ops_conv2d_bwd_data(ctx, &s, dx, cv_dy, cv_w), 0); // dy: the first ny values of cv_dy
    ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, &s, dw, db, cv_dy, cv_x), 0);
    char nm[32];
    snprintf(nm, sizeof nm, "cv%d_y", _i), cmp(nm, y, ny, TTOL);
    snprintf(nm, sizeof nm, "cv%d_dx", _i), cmp(nm, dx, nx, TTOL);
    snprintf(nm, sizeof nm, "cv%d_dw", _i), cmp(nm, dw, nw, TTOL);
    snprintf(nm, sizeof nm, "cv%d_db", _i), cmp(nm, db, CV_CO, TTOL);
    ops_ctx_destroy(ctx);
    free(y), free(dx), free(dw);
}
END_TEST

START_TEST(test_torch_optim) {
    float p[OPT_N], m[OPT_N] = {0}, v[OPT_N] = {0}, ps[OPT_N], bs[OPT_N] = {0}, pn[OPT_N], bnv[OPT_N] = {0};
    memcpy(p, opt_p, sizeof p), memcpy(ps, opt_p, sizeof p), memcpy(pn, opt_p, sizeof p);
    ops_ctx *ctx = tops_ctx(2);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(ops_adamw(ctx, p, opt_g[k], m, v, OPT_N, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, k + 1), 0);
        ck_assert_int_eq(ops_sgd(ctx, ps, opt_g[k], bs, OPT_N, 0.1f, 0.9f, 1e-3f, 0), 0);
        ck_assert_int_eq(ops_sgd(ctx, pn, opt_g[k], bnv, OPT_N, 0.1f, 0.9f, 1e-3f, 1), 0);
    }
    cmp("adamw_p", p, OPT_N, TTOL), cmp("adamw_m", m, OPT_N, TTOL), cmp("adamw_v", v, OPT_N, TTOL);
    cmp("sgd_p", ps, OPT_N, TTOL), cmp("sgdn_p", pn, OPT_N, TTOL);
    ops_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_torch_timestep_softmax) {
    float y[6 * 128], sy[SM_R * SM_C], sdx[SM_R * SM_C] = {0};
    ops_ctx *ctx = tops_ctx(2);
    // The argument t*f_k is a float: torch's exp (SLEEF) and ours differ by 1 ulp in a few f_k,
    // which moves sin/cos by up to |t| * 2^-23; the bound is that plus 1e-6.
    static const int dims[2] = {128, 7};
    for (int k = 0; k < 2; k++) {
        int dim = dims[k];
        ck_assert_int_eq(ops_timestep_embedding(ctx, y, ts_t, 6, dim), 0);
        char nm[16];
        snprintf(nm, sizeof nm, "ts_%d", dim);
        float *th = get(nm, (size_t)6 * dim);
        for (int i = 0; i < 6 * dim; i++) {
            double bound = 1e-6 + fabs(ts_t[i / dim]) * 1.2e-7;
            ck_assert_msg(fabs(y[i] - th[i]) <= bound, "%s[%d] (t %g): %.9g vs PyTorch %.9g", nm, i,
                          (double)ts_t[i / dim], (double)y[i], (double)th[i]);
        }
        free(th);
    }
    ck_assert_int_eq(ops_softmax_fwd(ctx, sy, sm_x, SM_R, SM_C, 0.125f), 0);
    ck_assert_int_eq(ops_softmax_bwd(ctx, sdx, sm_dy, sy, SM_R, SM_C, 0.125f), 0);
    cmp("sm_y", sy, SM_R * SM_C, TTOL), cmp("sm_dx", sdx, SM_R * SM_C, TTOL);
    ops_ctx_destroy(ctx);
}
END_TEST

Suite *suite_ops_torch(void) {
    Suite *s = suite_create("ops_torch");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, torch_setup, torch_teardown);
    tcase_add_test(tc, test_torch_groupnorm);
    tcase_add_test(tc, test_torch_batchnorm);
    tcase_add_loop_test(tc, test_torch_conv, 0, 4);
    tcase_add_test(tc, test_torch_optim);
    tcase_add_test(tc, test_torch_timestep_softmax);
    suite_add_tcase(s, tc);
    return s;
}
