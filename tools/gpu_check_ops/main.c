// gpu-check-ops: runs every op of OPS_LIST on the CPU backend and on the CUDA backend on the
// same random inputs (awkward sizes included) and prints one table of relative errors: float32
// (TF32 off) within 1e-4, then the GEMM/convolution ops again with TF32 on within 3e-3. Exit 0
// when every row passes, 1 when one fails or the GPU cannot be used, 2 on usage errors.
//
// --dry-run compares the CPU backend with itself (one thread against all threads), so the
// harness can be exercised without a GPU; --inject-error perturbs one result to prove that a
// mismatch is caught (the run must then fail).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gpu-check-ops [--dry-run] [--quick] [--only OP] [--no-tf32] [--seed N] [--threads T]\n"
            "                     [--inject-error]\n"
            "  Compares every op of the CUDA backend with the CPU backend on random inputs.\n"
            "  --dry-run       CPU (1 thread) against CPU (T threads): tests the harness without a GPU\n"
            "  --quick         small cases only (e.g. against the emulated backend of kernels/cuda/emu)\n"
            "  --only OP       only ops whose name contains OP (e.g. conv2d, norm)\n"
            "  --no-tf32       skip the TF32 phase (GEMM/convolution with TF32 on, tolerance 3e-3)\n"
            "  --seed N        input seed (default 1)\n"
            "  --threads T     CPU threads of the reference (default: all cores)\n"
            "  --inject-error  perturb one device result (self-test: the run must fail)\n"
            "Exit status: 0 all rows ok, 1 a row failed or no usable GPU, 2 usage error.\n");
}

static int parse_int(const char *s, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end) return -1;
    *out = v;
    return 0;
}

// One phase: contexts with TF32 on the device side as asked, the chosen families.
static int run_phase(gc_run *r, int dry, int threads, int tf32, const char *phase, double tol, int matmul_only) {
    ops_options ro = ops_options_default(), dopt = ops_options_default();
    ro.threads = dry ? 1 : threads;
    ro.tf32 = ro.tf32_matmul = 0;
    dopt.threads = threads;
    dopt.tf32 = dopt.tf32_matmul = tf32; // both switches: convolutions and GEMMs
    int rc = ops_ctx_create(&r->ref, OPS_DEV_CPU, &ro);
    if (rc == 0) rc = ops_ctx_create(&r->dut, dry ? OPS_DEV_CPU : OPS_DEV_CUDA, &dopt);
    if (rc < 0) goto done;
    r->phase = phase;
    r->tol = tol;
    if (matmul_only) {
        rc = gc_cases_matmul(r);
    } else {
        rc = gc_cases_basic(r);
        if (rc == 0) rc = gc_cases_nn(r);
    }
done:
    ops_ctx_destroy(r->dut);
    ops_ctx_destroy(r->ref);
    r->dut = r->ref = NULL;
    return rc;
}

int main(int argc, char **argv) {
    int dry = 0, no_tf32 = 0, inject = 0, quick = 0;
    long seed = 1, threads = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dry-run")) {
            dry = 1;
        } else if (!strcmp(a, "--quick")) {
            quick = 1;
        } else if (!strcmp(a, "--no-tf32")) {
            no_tf32 = 1;
        } else if (!strcmp(a, "--inject-error")) {
            inject = 1;
        } else if ((!strcmp(a, "--only") || !strcmp(a, "--seed") || !strcmp(a, "--threads")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--only")) {
                only = v;
            } else if (parse_int(v, !strcmp(a, "--seed") ? &seed : &threads) < 0) {
                fprintf(stderr, "gpu-check-ops: %s needs an integer, got '%s'\n", a, v);
                return 2;
            }
        } else {
            fprintf(stderr, "gpu-check-ops: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
    }
    gc_run r;
    memset(&r, 0, sizeof r);
    r.rng = (uint64_t)seed * 0x2545F4914F6CDD1Dull + 1;
    r.only = only;
    r.inject = inject;
    r.quick = quick;
    printf("gpu-check-ops: %s vs cpu%s\n", dry ? "cpu (dry run)" : "cuda", only ? " (filtered)" : "");
    printf("%-20s %-5s %-34s %-8s %12s %9s  %s\n", "op", "math", "case", "output", "rel.err", "tol", "result");
    int rc = run_phase(&r, dry, (int)threads, 0, "fp32", 1e-4, 0);
    if (rc == 0 && !no_tf32) rc = run_phase(&r, dry, (int)threads, 1, "tf32", 3e-3, 1);
    if (rc < 0) {
        fprintf(stderr, "gpu-check-ops: %s\n", err_msg());
        printf("gpu-check-ops: stopped: %s\n", err_msg());
        return err_exit_status(rc);
    }
    printf("gpu-check-ops: %d checks, %d failed (%d call errors)\n", r.checks, r.failed, r.errors);
    return r.failed || r.checks == 0 ? 1 : 0;
}
