// gpu-check-nn: network-level GPU checks for tools/gpu-check (see gcn.h).
//
//   gpu-check-nn [--dry-run] [--model unet|resnet18|all] [--small] [--batch N] [--tf32 0|1]
//   gpu-check-nn --train N            a short UNet training run on the device
//   gpu-check-nn --bench [--batch N] [--iters N] [--small] [--model ...] [--tf32 0|1]
//
// Exit status: 0 every row ok, 1 a row failed or the device could not be used, 2 usage error.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/gpu_check_nn/gcn.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gpu-check-nn [options]\n"
            "  Compares the UNet and ResNet-18 on CUDA with the CPU (forward, backward, every gradient),\n"
            "  or runs a short GPU training run (--train N), or measures GPU throughput (--bench).\n"
            "  --dry-run        CPU (1 thread) against CPU (all threads) / benchmarks on the CPU\n"
            "  --model M        unet, resnet18 or all (default all)\n"
            "  --small          a small UNet (16x16 grey, ch 32) instead of the paper CIFAR-10 one\n"
            "  --batch N        images per forward (default 2 for comparisons, 128 for --bench)\n"
            "  --tf32 0|1       TF32 on the device (default 0 for comparisons, 1 for --bench)\n"
            "  --train N        N AdamW steps of the small UNet on one batch: the loss must halve\n"
            "  --bench          images/s of forward and training step\n"
            "  --iters N        timed iterations of --bench (default 20, after 3 warm-up)\n"
            "  --threads T      CPU threads (default all)\n"
            "  --seed N         parameter and input seed (default 1)\n"
            "Exit status: 0 all ok, 1 a check failed or no usable device, 2 usage error.\n");
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    gcn_opts o;
    memset(&o, 0, sizeof o);
    o.paper = 1;
    o.iters = 20;
    o.seed = 1;
    int bench = 0, batch = -1, tf32 = -1, seed = 1;
    const char *model = "all";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *target = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry = 1;
        } else if (!strcmp(a, "--small")) {
            o.paper = 0;
        } else if (!strcmp(a, "--bench")) {
            bench = 1;
        } else if (!strcmp(a, "--model") && i + 1 < argc) {
            model = argv[++i];
            if (strcmp(model, "unet") && strcmp(model, "resnet18") && strcmp(model, "all")) {
                fprintf(stderr, "gpu-check-nn: --model %s: expected unet, resnet18 or all\n", model);
                return 2;
            }
        } else if (!strcmp(a, "--batch")) {
            target = &batch;
        } else if (!strcmp(a, "--tf32")) {
            target = &tf32;
        } else if (!strcmp(a, "--train")) {
            target = &o.steps;
        } else if (!strcmp(a, "--iters")) {
            target = &o.iters;
        } else if (!strcmp(a, "--threads")) {
            target = &o.threads;
        } else if (!strcmp(a, "--seed")) {
            target = &seed;
        } else {
            fprintf(stderr, "gpu-check-nn: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (target) {
            if (i + 1 >= argc || parse_int(argv[i + 1], target) < 0) {
                fprintf(stderr, "gpu-check-nn: %s needs a non-negative integer\n", a);
                return 2;
            }
            i++;
        }
    }
    if (tf32 > 1 || batch == 0 || o.iters < 1) {
        fprintf(stderr, "gpu-check-nn: --tf32 takes 0 or 1; --batch and --iters must be positive\n");
        return 2;
    }
    o.seed = (uint64_t)seed;
    o.batch = batch > 0 ? batch : (bench ? 128 : 2);
    o.tf32 = tf32 >= 0 ? tf32 : bench;
    ops_options ro = ops_options_default(), dopt = ops_options_default();
    ro.threads = o.dry ? 1 : o.threads;
    ro.tf32 = ro.tf32_matmul = 0;
    dopt.threads = o.threads;
    dopt.tf32 = dopt.tf32_matmul = o.tf32; // both, as gpu_check_torch.py --tf32 sets both
    ops_ctx *ref = NULL, *dut = NULL;
    int rc = ops_ctx_create(&dut, o.dry ? OPS_DEV_CPU : OPS_DEV_CUDA, &dopt);
    if (rc == 0 && !bench && !o.steps) rc = ops_ctx_create(&ref, OPS_DEV_CPU, &ro);
    if (rc == 0) {
        if (bench) {
            rc = gcn_bench(&o, dut, model);
        } else if (o.steps) {
            rc = gcn_train_short(&o, dut);
        } else {
            printf("%-9s %-5s %-28s %12s %9s  %s\n", "model", "math", "output", "rel.err", "tol", "result");
            if (!strcmp(model, "unet") || !strcmp(model, "all")) rc = gcn_compare_unet(&o, ref, dut);
            if (rc == 0 && (!strcmp(model, "resnet18") || !strcmp(model, "all"))) rc = gcn_compare_resnet(&o, ref, dut);
        }
    }
    ops_ctx_destroy(ref);
    ops_ctx_destroy(dut);
    if (rc < 0) {
        fprintf(stderr, "gpu-check-nn: %s\n", err_msg());
        return err_exit_status(rc);
    }
    if (!bench) printf("gpu-check-nn: %d checks, %d failed\n", o.checks, o.failed);
    return o.failed ? 1 : 0;
}
