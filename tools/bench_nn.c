// bench-nn: throughput of the networks (images/s) for a forward pass or a whole training step
// (forward, loss, backward, clipping and optimiser), optionally beside PyTorch running the same
// shapes with the same thread count (tools/bench_nn_torch.py, with --compare). Not a test.
//
//   bench-nn --model unet --config fmnist --batch 64 --mode train --threads 2 --iters 5 --compare
//   bench-nn --model resnet18 --batch 64 --mode train --contend 1 --compare
//
// --contend N measures twice: on the machine as it is, then beside N busy processes (pure
// integer loops, started and killed by us), for ours and PyTorch alike, and prints each one's
// contended/quiet ratio. Every run also prints the convolutions' share of this CPU's peak FLOP
// rate, measured here: every thread runs independent FMA chains of the widest vectors the CPU
// has (AVX-512 where it has it, as the GEMM kernels do) for 0.2 s. The clock in /proc/cpuinfo
// is no guide (a VM shows the nominal 2.6 GHz of a CPU that runs at 3.7+), nor the vector width
// (Zen 4 splits a 512-bit FMA in two, Zen 5 does not). Convolutions are counted by their direct
// FLOPs (Winograd does fewer multiplications, so it can pass 100%); they are more than 99% of
// both networks' FLOPs (the linear layers and attention products are left out).
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/nn/optim.h"
#include "common/nn/resnet.h"
#include "common/nn/unet.h"
#include "common/threads.h"

static const cli_opt opts[] = {
    {"model", "NAME", 0, "unet or resnet18 (default unet)"},
    {"batch", "B", 0, "images per call (default 16)"},
    {"mode", "MODE", 0, "forward or train (forward + loss + backward + optimiser step; default forward)"},
    {"iters", "N", 0, "timed iterations (default 5)"},
    {"warmup", "N", 0, "untimed iterations first (default 1)"},
    {"compare", NULL, 0, "also run tools/bench_nn_torch.py (PyTorch) with the same shapes and threads"},
    {"profile", NULL, 0, "time every convolution of the timed iterations by shape (synchronises each call; the UNet then runs without its per-thread replicas)"},
    {"contend", "N", 0, "measure again beside N busy processes (ours and PyTorch alike) and print the ratios"},
    {"python", "PATH", 0, "Python with torch for --compare (default $DIFFOOD_PYTHON or /usr/bin/python3)"},
    {NULL, NULL, 0, NULL}};
static const cli_spec spec = {"bench-nn", "[options]",
                              "Measures the UNet or ResNet-18 throughput (images/s) of the configuration "
                              "(sections unet / resnet) on this machine.",
                              opts, CLI_STD_CONFIG | CLI_STD_THREADS | CLI_STD_DEVICE, 0, 0};

static int prof_cmp(const void *a, const void *b) {
    double x = ((const nn_prof_row *)a)->seconds, y = ((const nn_prof_row *)b)->seconds;
    return (x < y) - (x > y);
}

// The conv rows by time, with their share of the whole timed loop and their GFLOP/s.
static void prof_print(nn_prof *p, double total) {
    qsort(p->rows, (size_t)p->n, sizeof p->rows[0], prof_cmp);
    double conv = 0;
    for (int i = 0; i < p->n; i++) conv += p->rows[i].seconds;
    printf("profile: convolutions %.3f s of %.3f s (%.1f%%); the rest (norms, attention, elementwise, optimiser) "
           "%.3f s\n", conv, total, 100 * conv / total, total - conv);
    printf("  %-40s %6s %9s %6s %8s\n", "op shape (per image)", "calls", "seconds", "share", "GFLOP/s");
    for (int i = 0; i < p->n; i++) {
        const nn_prof_row *r = &p->rows[i];
        printf("  %-40s %6ld %9.4f %5.1f%% %8.1f\n", r->key, r->calls, r->seconds, 100 * r->seconds / total,
               r->flops / r->seconds / 1e9);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    ops_ctx *ctx;
    int model_unet, train, batch;
    unet_model *unet;
    resnet_model *rn;
    optim *opt;
    float *x, *t, *noise, *out, *dout, *loss;
    int32_t *y;
    size_t nx, nout;
    int classes;
    long step;
} bench;

// Busy processes beside the benchmark (--contend): each spins on integer arithmetic until killed;
// they die with us (PR_SET_PDEATHSIG) whatever happens.
#define BENCH_MAX_CONTEND 64
static pid_t contenders[BENCH_MAX_CONTEND];
static int ncontenders;

static int contend_start(int n) {
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        ERR_IF(pid < 0, ERR_IO, "--contend: fork failed: %m");
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            volatile unsigned long x = 1;
            for (;;) x = x * 6364136223846793005UL + 1442695040888963407UL;
        }
        contenders[ncontenders++] = pid;
    }
    return 0;
}

static void contend_stop(void) {
    for (int i = 0; i < ncontenders; i++) kill(contenders[i], SIGKILL);
    for (int i = 0; i < ncontenders; i++) waitpid(contenders[i], NULL, 0);
    ncontenders = 0;
}

// Nominal clock of CPU 0 in GHz from /proc/cpuinfo ("cpu MHz"), or 0 when unknown.
#if defined(__x86_64__) && defined(__GNUC__)
// FMA chains: 16 independent accumulators (latency 4 x 2 pipes needs 8 in flight) for `iters`
// rounds; returns a value that depends on all of them so that nothing is optimised away.
__attribute__((target("avx512f"))) static float peak_chains512(long iters) {
    __m512 acc[16], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    for (int i = 1; i < 16; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}
__attribute__((target("avx2,fma"))) static float peak_chains256(long iters) {
    __m256 acc[16], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 16; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    for (int i = 1; i < 16; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    float out[8];
    _mm256_storeu_ps(out, acc[0]);
    return out[0] + out[7];
}
#endif

// This CPU's FP32 FLOP/s on `nt` threads (0 when unknown), and the vector width used (bits).
static double peak_flops(int nt, int *bits) {
    *bits = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    *bits = wide ? 512 : 256;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) { // best of three: a descheduled thread only lowers a try
        long iters = 4000000;
        double t0 = now_s(), sink = 0;
#pragma omp parallel num_threads(nt) reduction(+ : sink)
        sink += wide ? peak_chains512(iters) : peak_chains256(iters);
        double dt = now_s() - t0, rate = (double)nt * iters * 16 * (wide ? 16 : 8) * 2 / dt;
        if (sink == 0.123) rate = 0; // keeps sink alive
        if (rate > best) best = rate;
    }
    return best;
#else
    (void)nt;
    return 0;
#endif
}

static int bench_iter(bench *b) {
    philox_key key = {(uint32_t)b->step, 7, 0, 0};
    b->step++;
    nn_net *net = b->model_unet ? unet_net(b->unet) : resnet_net(b->rn);
    if (b->model_unet) {
        ERR_TRY(unet_forward(b->unet, b->out, b->x, b->t, b->y, b->batch, b->train, key));
        if (!b->train) return 0;
        ERR_TRY(ops_mse_sum_loss(b->ctx, b->loss, b->dout, b->out, b->noise, b->batch, (int)(b->nout / b->batch)));
        ERR_TRY(nn_zero_grad(net));
        ERR_TRY(unet_backward(b->unet, NULL, b->dout, b->batch));
    } else {
        const float *logits = NULL;
        ERR_TRY(resnet_forward(b->rn, b->x, b->batch, b->train, &logits, NULL));
        if (!b->train) return 0;
        ERR_TRY(ops_softmax_xent_loss(b->ctx, b->loss, b->dout, logits, b->y, b->batch, b->classes));
        ERR_TRY(nn_zero_grad(net));
        ERR_TRY(resnet_backward(b->rn, NULL, b->dout, b->batch));
    }
    return optim_step(b->opt, net->params, net->grads, NULL);
}

static int bench_setup(bench *b, const cfg *c, int threads, const char *device) {
    ops_options o = ops_options_default();
    o.threads = threads;
    ERR_TRY(ops_ctx_create_named(&b->ctx, device, &o));
    const cfg *sec = NULL;
    int S, cin;
    if (b->model_unet) {
        unet_config uc;
        ERR_TRY(cfg_subtree(c, "unet", &sec));
        ERR_TRY(unet_config_from_cfg(sec, &uc));
        ERR_TRY(unet_create(&b->unet, b->ctx, &uc, b->batch));
        S = uc.image_size;
        cin = uc.in_channels;
        b->classes = uc.num_classes;
        b->nout = (size_t)b->batch * uc.out_ch * S * S;
    } else {
        resnet_config rc;
        ERR_TRY(cfg_subtree(c, "resnet", &sec));
        ERR_TRY(resnet_config_from_cfg(sec, &rc));
        ERR_TRY(resnet_create(&b->rn, b->ctx, &rc, b->batch));
        S = rc.image_size;
        cin = rc.in_channels;
        b->classes = rc.num_classes;
        b->nout = (size_t)b->batch * rc.num_classes;
    }
    nn_net *net = b->model_unet ? unet_net(b->unet) : resnet_net(b->rn);
    ERR_TRY(nn_init_default(net, 42));
    b->nx = (size_t)b->batch * cin * S * S;
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->x, b->nx * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->noise, b->nout * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->out, b->nout * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->dout, b->nout * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->t, (size_t)b->batch * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->y, (size_t)b->batch * 4));
    ERR_TRY(ops_alloc(b->ctx, (void **)&b->loss, 4));
    philox_key kx = {1, 0, 0, 0}, kn = {2, 0, 0, 0};
    ERR_TRY(ops_randn(b->ctx, b->x, b->nx, kx, 0));
    ERR_TRY(ops_randn(b->ctx, b->noise, b->nout, kn, 0));
    float *ht = malloc((size_t)b->batch * 4);
    int32_t *hy = malloc((size_t)b->batch * 4);
    ERR_IF(!ht || !hy, ERR_NOMEM, "out of memory");
    for (int i = 0; i < b->batch; i++) {
        ht[i] = (float)((i * 37) % 1000);
        hy[i] = i % (b->classes + (b->model_unet ? 1 : 0));
    }
    int rc = ops_upload(b->ctx, b->t, ht, (size_t)b->batch * 4);
    if (rc == 0) rc = ops_upload(b->ctx, b->y, hy, (size_t)b->batch * 4);
    free(ht);
    free(hy);
    ERR_TRY(rc);
    if (b->train) {
        if (b->model_unet) {
            optim_adamw_config ac = optim_adamw_default();
            ERR_TRY(optim_adamw_create(&b->opt, b->ctx, net->n_params, &ac));
        } else {
            optim_sgd_config sc = optim_sgd_default();
            sc.total_steps = 1000;
            ERR_TRY(optim_sgd_create(&b->opt, b->ctx, net->n_params, &sc));
        }
    }
    return 0;
}

static void bench_free(bench *b) {
    if (!b->ctx) return;
    float *bufs[] = {b->x, b->t, b->noise, b->out, b->dout, b->loss, (float *)b->y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops_free(b->ctx, bufs[i]);
    optim_destroy(b->opt);
    unet_destroy(b->unet);
    resnet_destroy(b->rn);
    ops_ctx_destroy(b->ctx);
}

// The PyTorch companion's images/s (its last line "images_per_s X"), or a negative code.
static int run_torch(const char *python, const cfg *c, const char *model, const char *mode, long batch, int threads,
                     long iters, long warmup, double *ips) {
    char dir[1024], cmd[8192];
    ERR_TRY(cli_config_dir(dir, sizeof dir));
    char *sec = NULL;
    ERR_TRY(cfg_canonical(c, strcmp(model, "unet") ? "resnet" : "unet", &sec));
    snprintf(cmd, sizeof cmd, "'%s' '%s/../tools/bench_nn_torch.py' --model %s --config-json '%s' --batch %ld "
             "--mode %s --threads %d --iters %ld --warmup %ld", python, dir, model, sec, batch, mode, threads, iters,
             warmup);
    free(sec);
    thr_unset_default(); // PyTorch runs with the OpenMP policy its users get (threads.h)
    FILE *p = popen(cmd, "r");
    ERR_IF(!p, ERR_IO, "cannot run %s", cmd);
    char line[512];
    *ips = -1;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        sscanf(line, "images_per_s %lf", ips);
    }
    int st = pclose(p);
    ERR_IF(st != 0 || *ips <= 0, ERR_IO, "the PyTorch benchmark failed (status %d): %s", st, cmd);
    return 0;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    bench b = {0};
    nn_prof *prof = NULL;
    int rc = cli_parse(&a, &spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) return cli_fail(rc);
    const char *model = cli_get(a, "model") ? cli_get(a, "model") : "unet";
    const char *mode = cli_get(a, "mode") ? cli_get(a, "mode") : "forward";
    long batch = 16, iters = 5, warmup = 1;
    ERR_GOTO_IF(rc, strcmp(model, "unet") && strcmp(model, "resnet18"), ERR_USAGE,
                "--model '%s': expected unet or resnet18", model);
    ERR_GOTO_IF(rc, strcmp(mode, "forward") && strcmp(mode, "train"), ERR_USAGE, "--mode '%s': expected forward or train",
                mode);
    ERR_GOTO(rc, cli_get_int(a, "batch", 16, &batch));
    ERR_GOTO(rc, cli_get_int(a, "iters", 5, &iters));
    ERR_GOTO(rc, cli_get_int(a, "warmup", 1, &warmup));
    ERR_GOTO_IF(rc, batch < 1 || batch > 100000 || iters < 1 || warmup < 0, ERR_USAGE,
                "--batch and --iters must be positive, --warmup not negative");
    ERR_GOTO(rc, cli_load_config(a, &c));
    int threads = cli_threads(a);
    b.model_unet = !strcmp(model, "unet");
    b.train = !strcmp(mode, "train");
    b.batch = (int)batch;
    ERR_GOTO(rc, bench_setup(&b, c, threads, cli_device(a)));
    for (long i = 0; i < warmup; i++) ERR_GOTO(rc, bench_iter(&b));
    ERR_GOTO(rc, ops_sync(b.ctx));
    nn_net *net = b.model_unet ? unet_net(b.unet) : resnet_net(b.rn);
    long contend = 0;
    ERR_GOTO(rc, cli_get_int(a, "contend", 0, &contend));
    ERR_GOTO_IF(rc, contend < 0 || contend > BENCH_MAX_CONTEND, ERR_USAGE, "--contend must be 0..%d",
                BENCH_MAX_CONTEND);
    // one profiled iteration counts the convolutions' FLOPs (and, with --profile, the timed ones)
    prof = calloc(1, sizeof *prof);
    ERR_GOTO_IF(rc, !prof, ERR_NOMEM, "out of memory");
    net->prof = prof;
    ERR_GOTO(rc, bench_iter(&b));
    ERR_GOTO(rc, ops_sync(b.ctx));
    double conv_flops = 0;
    for (int i = 0; i < prof->n; i++) conv_flops += prof->rows[i].flops;
    memset(prof, 0, sizeof *prof);
    if (!cli_has(a, "profile")) net->prof = NULL;
    int nt = thr_count(threads), peak_bits = 0;
    double peak = ops_ctx_device(b.ctx) == OPS_DEV_CPU ? peak_flops(nt, &peak_bits) : 0;
    double ips = 0, ips_busy = 0;
    for (int pass = 0; pass < (contend ? 2 : 1); pass++) {
        if (pass == 1) ERR_GOTO(rc, contend_start((int)contend));
        double t0 = now_s();
        for (long i = 0; i < iters; i++) ERR_GOTO(rc, bench_iter(&b));
        ERR_GOTO(rc, ops_sync(b.ctx));
        double dt = now_s() - t0;
        contend_stop();
        *(pass ? &ips_busy : &ips) = (double)batch * iters / dt;
        printf("diffood %s %s batch %ld threads %d device %s%s: %.2f images/s (%.4f s/iter, %.3f M params)\n", model,
               mode, batch, nt, ops_device_name(ops_ctx_device(b.ctx)), pass ? " beside busy processes" : "",
               (double)batch * iters / dt, dt / iters, net->n_params / 1e6);
        if (pass == 0) {
            double rate = conv_flops * iters / dt;
            printf("convolutions: %.3f GFLOP per iteration, %.1f GFLOP/s", conv_flops / 1e9, rate / 1e9);
            if (peak > 0 && ops_ctx_device(b.ctx) == OPS_DEV_CPU)
                printf(" = %.1f%% of this CPU's peak (%.0f GFLOP/s measured: %d threads of %d-bit FMA chains)",
                       100 * rate / peak, peak / 1e9, nt, peak_bits);
            printf("\n");
            if (prof && net->prof) {
                prof_print(prof, dt);
                net->prof = NULL;
            }
        }
    }
    if (contend)
        printf("contention diffood %s %s: %.2f images/s beside %ld busy processes = %.2fx of %.2f quiet\n", model, mode,
               ips_busy, contend, ips_busy / ips, ips);
    if (cli_has(a, "compare")) {
        const char *py = cli_get(a, "python") ? cli_get(a, "python") : getenv("DIFFOOD_PYTHON");
        double tips = 0, tips_busy = 0;
        ERR_GOTO(rc, run_torch(py ? py : "/usr/bin/python3", c, model, mode, batch, nt, iters, warmup, &tips));
        printf("ratio diffood/pytorch %s %s batch %ld threads %d: %.2fx\n", model, mode, batch, nt, ips / tips);
        if (contend) {
            ERR_GOTO(rc, contend_start((int)contend));
            rc = run_torch(py ? py : "/usr/bin/python3", c, model, mode, batch, nt, iters, warmup, &tips_busy);
            contend_stop();
            ERR_GOTO(rc, rc);
            printf("contention pytorch %s %s: %.2f images/s beside %ld busy processes = %.2fx of %.2f quiet\n", model,
                   mode, tips_busy, contend, tips_busy / tips, tips);
            printf("ratio diffood/pytorch beside %ld busy processes %s %s batch %ld threads %d: %.2fx\n", contend, model,
                   mode, batch, nt, ips_busy / tips_busy);
        }
    }
    fflush(stdout);
fail:
    contend_stop();
    if (b.unet) unet_net(b.unet)->prof = NULL;
    if (b.rn) resnet_net(b.rn)->prof = NULL;
    free(prof);
    bench_free(&b);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
