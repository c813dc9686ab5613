// bench_ops: times the heavy ops of the CPU backend (3x3 and 1x1 convolutions forward and
// backward at UNet sizes, GroupNorm+swish forward and backward) and prints one line per op
// with milliseconds per call and GFLOP/s (convolutions) or GB/s touched (norms).
//
//   bench-ops [--threads N] [--iters N] [--batch N] [--cpu-time] [--conv CIN,HW,COUT[,STRIDE] ...]
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "kernels/ops.h"

static int bench_cpu_clock; // --cpu-time: process CPU time (robust on a loaded machine with 1 thread)

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(bench_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *bench_buf(ops_ctx *ctx, size_t n, float v) {
    float *p = NULL;
    if (ops_alloc(ctx, (void **)&p, n * sizeof *p) < 0) return NULL;
    ops_fill(ctx, p, v, n);
    return p;
}

// Times conv fwd, bwd-data and bwd-weight on one geometry. 0 or a negative code.
static int bench_conv(ops_ctx *ctx, int iters, int n, int cin, int hw, int cout, int k, int stride) {
    int pad = k / 2;
    ops_conv_shape s = {n, cin, hw, hw, cout, k, k, stride, pad, pad, pad, pad};
    int ho = ops_conv_out_h(&s), wo = ops_conv_out_w(&s);
    size_t nx = (size_t)n * cin * hw * hw, nw = (size_t)cout * cin * k * k, ny = (size_t)n * cout * ho * wo;
    float *x = bench_buf(ctx, nx, 0.5f), *w = bench_buf(ctx, nw, 0.01f), *b = bench_buf(ctx, cout, 0.1f);
    float *y = bench_buf(ctx, ny, 0), *dx = bench_buf(ctx, nx, 0), *dw = bench_buf(ctx, nw, 0), *db = bench_buf(ctx, cout, 0);
    int rc = 0;
    if (!x || !w || !b || !y || !dx || !dw || !db) {
        rc = ERR_NOMEM;
        goto fail;
    }
    double flops = 2.0 * n * cout * ho * wo * (double)cin * k * k;
    const char *names[3] = {"fwd", "bwd_data", "bwd_weight"};
    for (int which = 0; which < 3; which++) {
        double best = 1e30;
        for (int it = 0; it < iters + 1; it++) { // the first call sizes the scratch buffer
            double t0 = bench_now();
            if (which == 0) ERR_GOTO(rc, ops_conv2d_fwd(ctx, &s, y, x, w, b));
            if (which == 1) ERR_GOTO(rc, ops_conv2d_bwd_data(ctx, &s, dx, y, w));
            if (which == 2) ERR_GOTO(rc, ops_conv2d_bwd_weight(ctx, &s, dw, db, y, x));
            double t = bench_now() - t0;
            if (it > 0 && t < best) best = t;
        }
        printf("conv%dx%d %4d->%-4d %3dx%-3d s%d batch %2d %-10s %8.2f ms %7.1f GFLOP/s\n", k, k, cin, cout, hw, hw,
               stride, n, names[which], best * 1e3, flops / best * 1e-9);
    }
fail:
    ops_free(ctx, x), ops_free(ctx, w), ops_free(ctx, b), ops_free(ctx, y), ops_free(ctx, dx), ops_free(ctx, dw),
        ops_free(ctx, db);
    return rc;
}

static int bench_groupnorm(ops_ctx *ctx, int iters, int n, int c, int hw) {
    size_t nx = (size_t)n * c * hw;
    float *x = bench_buf(ctx, nx, 0.3f), *y = bench_buf(ctx, nx, 0), *dx = bench_buf(ctx, nx, 0);
    float *g = bench_buf(ctx, c, 1), *b = bench_buf(ctx, c, 0), *dg = bench_buf(ctx, c, 0), *db = bench_buf(ctx, c, 0);
    float *mean = bench_buf(ctx, (size_t)n * 32, 0), *rstd = bench_buf(ctx, (size_t)n * 32, 0);
    int rc = 0;
    if (!x || !y || !dx || !g || !b || !dg || !db || !mean || !rstd) {
        rc = ERR_NOMEM;
        goto fail;
    }
    for (int which = 0; which < 2; which++) {
        double best = 1e30;
        for (int it = 0; it < iters + 1; it++) {
            double t0 = bench_now();
            if (which == 0) ERR_GOTO(rc, ops_groupnorm_fwd(ctx, OPS_ACT_SWISH, y, mean, rstd, x, g, b, n, c, hw, 32, 1e-6f));
            if (which == 1)
                ERR_GOTO(rc, ops_groupnorm_bwd(ctx, OPS_ACT_SWISH, dx, dg, db, y, x, mean, rstd, g, b, n, c, hw, 32));
            double t = bench_now() - t0;
            if (it > 0 && t < best) best = t;
        }
        double bytes = (which ? 4.0 : 2.0) * nx * sizeof(float); // fwd: read x, write y; bwd: x, dy, dx twice-ish
        printf("groupnorm+swish (%d, %d, %d) %-4s %8.2f ms %7.1f GB/s\n", n, c, hw, which ? "bwd" : "fwd", best * 1e3,
               bytes / best * 1e-9);
    }
fail:
    ops_free(ctx, x), ops_free(ctx, y), ops_free(ctx, dx), ops_free(ctx, g), ops_free(ctx, b), ops_free(ctx, dg),
        ops_free(ctx, db), ops_free(ctx, mean), ops_free(ctx, rstd);
    return rc;
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: bench-ops [--threads N] [--iters N] [--batch N] [--cpu-time] [--conv CIN,HW,COUT[,STRIDE]]\n"
               "Times the CPU backend's convolutions and GroupNorm at UNet sizes (best of N calls).\n"
               "  --threads N  threads (default 0: all cores)\n"
               "  --iters N    timed calls per op (default 5)\n"
               "  --batch N    batch size (default 16)\n"
               "  --cpu-time   time with the process CPU clock instead of the wall clock (for one\n"
               "               thread on a busy machine: other processes' load does not count)\n"
               "  --conv CIN,HW,COUT[,STRIDE]  time only this 3x3 convolution (HW x HW planes, pad 1, stride 1 or 2)\n"
               "               instead of the UNet set; repeatable (at most 16)\n");
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {{"threads", required_argument, 0, 't'}, {"iters", required_argument, 0, 'i'},
                                             {"batch", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'},
                                             {"cpu-time", no_argument, 0, 'c'}, {"conv", required_argument, 0, 'v'},
                                             {0, 0, 0, 0}};
    ops_options opt = ops_options_default();
    int iters = 5, batch = 16, c, convs[16][4], nconv = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'v') {
            int *g = convs[nconv];
            int len = 0;
            g[3] = 1;
            int got = nconv == 16 ? 0 : sscanf(optarg, "%d,%d,%d%n,%d%n", &g[0], &g[1], &g[2], &len, &g[3], &len);
            if (got < 3 || optarg[len] || g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || g[3] > 2) {
                fprintf(stderr, "bench-ops: bad --conv '%s' (want CIN,HW,COUT[,STRIDE 1|2], at most 16 times)\n",
                        optarg);
                return 2;
            }
            nconv++;
            continue;
        }
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        if (optarg && (*end || v < 0 || v > 100000)) {
            fprintf(stderr, "bench-ops: bad value '%s' for --%s\n", optarg, longopts[c == 't' ? 0 : c == 'i' ? 1 : 2].name);
            return 2;
        }
        if (c == 't') opt.threads = (int)v;
        else if (c == 'i') iters = v > 0 ? (int)v : 1;
        else if (c == 'b') batch = v > 0 ? (int)v : 1;
        else if (c == 'c') bench_cpu_clock = 1;
        else if (c == 'h') {
            bench_usage(stdout);
            return 0;
        } else {
            bench_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench-ops: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    ops_ctx *ctx = NULL;
    int rc = ops_ctx_create(&ctx, OPS_DEV_CPU, &opt);
    for (int i = 0; i < nconv && rc == 0; i++) rc = bench_conv(ctx, iters, batch, convs[i][0], convs[i][1], convs[i][2], 3, convs[i][3]);
    if (nconv) goto done;
    if (rc == 0) rc = bench_conv(ctx, iters, batch, 128, 32, 128, 3, 1);
    if (rc == 0) rc = bench_conv(ctx, iters, batch, 256, 16, 256, 3, 1);
    if (rc == 0) rc = bench_conv(ctx, iters, batch, 256, 8, 256, 3, 1);
    if (rc == 0) rc = bench_conv(ctx, iters, batch, 128, 32, 128, 3, 2);
    if (rc == 0) rc = bench_conv(ctx, iters, batch, 128, 32, 256, 1, 1);
    if (rc == 0) rc = bench_groupnorm(ctx, iters, batch, 128, 1024);
done:
    ops_ctx_destroy(ctx);
    if (rc < 0) fprintf(stderr, "bench-ops: %s\n", err_msg());
    return err_exit_status(rc);
}
