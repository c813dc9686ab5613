// cpu_backend: the CPU backend's op table, its per-context state (thread count, reusable
// scratch buffers), and the memory ops (aligned host allocations; upload/download/copy are
// memcpy since the CPU's "device memory" is host memory).
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/threads.h"

#define CPU_ALIGN 64

const float cpu_exp_lo = -103.0f, cpu_exp_hi = 100.0f; // see cpu_expf

// --- per-context state --------------------------------------------------------------------------

static void cpu_ctx_fini(ops_ctx *ctx) {
    cpu_state *st = ctx->impl;
    if (!st) return;
    free(st->scratch);
    free(st->partial);
    free(st);
    ctx->impl = NULL;
}

cpu_state *cpu_state_get(ops_ctx *ctx) {
    if (ctx->impl) return ctx->impl;
    cpu_state *st = calloc(1, sizeof *st);
    if (!st) {
        err_set(ERR_NOMEM, "out of memory creating the CPU backend state");
        return NULL;
    }
    st->threads = thr_count(ctx->opt.threads);
    ctx->impl = st;
    ctx->fini = cpu_ctx_fini;
    return st;
}

int cpu_threads(ops_ctx *ctx) {
    if (ctx->impl) return ((cpu_state *)ctx->impl)->threads;
    cpu_state *st = cpu_state_get(ctx);
    if (st) return st->threads;
    return ctx->opt.threads > 0 ? ctx->opt.threads : 1;
}

void cpu_blas_set(ops_ctx *ctx, int t) {
    if (openblas_get_num_threads() != t) openblas_set_num_threads(t);
}

// Grows *buf to at least `bytes` (aligned, old content dropped). 0 or ERR_NOMEM.
static int cpu_grow(void **buf, size_t *cap, size_t n, size_t elem, const char *what) {
    if (*cap >= n && *buf) return 0;
    size_t want = n + n / 4 + 1024; // head room so that growth is rare
    size_t bytes = (want * elem + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, bytes);
    if (!p) return err_set(ERR_NOMEM, "out of memory growing the CPU %s buffer to %zu bytes", what, bytes);
    free(*buf);
    *buf = p;
    *cap = want;
    return 0;
}

float *cpu_scratch(ops_ctx *ctx, size_t n) {
    cpu_state *st = cpu_state_get(ctx);
    if (!st) return NULL;
    void *b = st->scratch;
    if (cpu_grow(&b, &st->scratch_n, n, sizeof(float), "scratch") < 0) return NULL;
    st->scratch = b;
    return st->scratch;
}

double *cpu_partial(ops_ctx *ctx, size_t n) {
    cpu_state *st = cpu_state_get(ctx);
    if (!st) return NULL;
    void *b = st->partial;
    if (cpu_grow(&b, &st->partial_n, n, sizeof(double), "reduction") < 0) return NULL;
    st->partial = b;
    return st->partial;
}

int cpu_check_act(const char *op, ops_act act) {
    if ((int)act < 0 || act >= OPS_ACT_COUNT) return err_set(ERR_USAGE, "%s: unknown activation %d", op, (int)act);
    return 0;
}

// --- memory ops -----------------------------------------------------------------------------------

int cpu_alloc(ops_ctx *ctx, void **p, size_t bytes) {
    *p = NULL;
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (rounded == 0) rounded = CPU_ALIGN;
    void *q = aligned_alloc(CPU_ALIGN, rounded);
    if (!q) return err_set(ERR_NOMEM, "ops_alloc: out of host memory allocating %zu bytes", bytes);
    *p = q;
    return 0;
}

int cpu_free(ops_ctx *ctx, void *p) {
    free(p);
    return 0;
}

int cpu_upload(ops_ctx *ctx, void *dst, const void *host_src, size_t bytes) {
    if (bytes) memmove(dst, host_src, bytes);
    return 0;
}

int cpu_download(ops_ctx *ctx, void *host_dst, const void *src, size_t bytes) {
    if (bytes) memmove(host_dst, src, bytes);
    return 0;
}

int cpu_copy(ops_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
    return 0;
}

int cpu_sync(ops_ctx *ctx) { return 0; }

// --- the table ------------------------------------------------------------------------------------

static const ops_backend cpu_table = {
    .name = "cpu",
#define CPU_MEMBER(op, params, args) .op = cpu_##op,
    OPS_LIST(CPU_MEMBER)
#undef CPU_MEMBER
};

const ops_backend *ops_cpu_backend(void) { return &cpu_table; }
