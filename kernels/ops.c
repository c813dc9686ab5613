// ops: context creation and dispatch of every op in OPS_LIST to the context's backend.
// The CUDA backend is loaded on demand from a shared object (see kernels/backend.h).
#include "kernels/backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/threads.h"

ops_options ops_options_default(void) {
    ops_options o = {.threads = 0, .tf32 = -1, .tf32_matmul = -1, .device_index = 0};
    return o;
}

// A TF32 switch of ops_options: the caller's 0/1, else the environment variable `env` (0 or 1),
// else `dflt`.
static int ops_resolve_switch(int *v, const char *env, int dflt) {
    if (*v >= 0) {
        *v = *v ? 1 : 0;
        return 0;
    }
    const char *e = getenv(env);
    if (!e || !*e) {
        *v = dflt;
        return 0;
    }
    ERR_IF(strcmp(e, "0") != 0 && strcmp(e, "1") != 0, ERR_USAGE,
           "environment variable %s is '%s'; expected 0 or 1", env, e);
    *v = e[0] == '1';
    return 0;
}

const char *ops_device_name(ops_device dev) {
    static const char *const names[OPS_DEV_COUNT] = {"cpu", "cuda"};
    return (dev >= 0 && dev < OPS_DEV_COUNT) ? names[dev] : "?";
}

ops_device ops_ctx_device(const ops_ctx *ctx) { return ctx->dev; }
ops_options ops_ctx_options(const ops_ctx *ctx) { return ctx->opt; }
int ops_ctx_threads(const ops_ctx *ctx) { return ctx->dev == OPS_DEV_CPU ? thr_count(ctx->opt.threads) : 1; }

// --- CUDA shared object ---------------------------------------------------------------------

// Tries DIFFOOD_CUDA_LIB, then ../lib/libdiffood_cuda.so and ./libdiffood_cuda.so beside the
// executable. Returns the dlopen handle, or NULL with the reason in `why` and *absent = 1 when
// this build simply has no CUDA backend (nothing failed to load).
static void *ops_cuda_open(char *why, size_t why_len, int *absent) {
    char cand[3][PATH_MAX];
    int nc = 0;
    *absent = 0;
    const char *env = getenv("DIFFOOD_CUDA_LIB");
    if (env && *env) {
        if (access(env, R_OK) != 0) {
            snprintf(why, why_len, "DIFFOOD_CUDA_LIB=%s: %s", env, strerror(errno));
            return NULL;
        }
        snprintf(cand[nc++], PATH_MAX, "%s", env);
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[nc++], PATH_MAX, "%.*s/../lib/libdiffood_cuda.so", PATH_MAX - 32, exe);
        snprintf(cand[nc++], PATH_MAX, "%.*s/libdiffood_cuda.so", PATH_MAX - 32, exe);
    }
    why[0] = 0;
    for (int i = 0; i < nc; i++) {
        if (access(cand[i], R_OK) != 0) continue;
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        // dlerror names the missing dependency (libcudnn.so.9, ...), not always the library
        snprintf(why, why_len, "cannot load %s: %s", cand[i], dlerror());
        return NULL;
    }
    *absent = 1;
    snprintf(why, why_len, "this build has no CUDA backend (lib/libdiffood_cuda.so not found; "
                           "build with nvcc present, or set DIFFOOD_CUDA_LIB)");
    return NULL;
}

// *quiet = 1 when the failure only means "no CUDA here" (no backend built, no GPU or no driver),
// 0 when something that should have worked failed to load or start.
static int ops_ctx_create_cuda(ops_ctx *ctx, int *quiet) {
    char why[1024];
    void *h = ops_cuda_open(why, sizeof why, quiet);
    if (!h) return err_set(ERR_DEVICE, "cannot use CUDA: %s", why);
    ops_cuda_backend_fn be = (ops_cuda_backend_fn)dlsym(h, OPS_CUDA_BACKEND_SYMBOL);
    ops_cuda_ctx_init_fn init = (ops_cuda_ctx_init_fn)dlsym(h, OPS_CUDA_INIT_SYMBOL);
    if (!be || !init) {
        dlclose(h);
        return err_set(ERR_DEVICE, "cannot use CUDA: the CUDA backend library lacks its entry points (%s, %s)",
                       OPS_CUDA_BACKEND_SYMBOL, OPS_CUDA_INIT_SYMBOL);
    }
    ctx->dl_handle = h;
    ctx->be = be();
    int rc = init(ctx); // sets impl and fini, or an err message (no GPU, driver too old, ...)
    if (rc < 0) {
        *quiet = ctx->no_device;
        ctx->dl_handle = NULL;
        dlclose(h);
        return rc;
    }
    return 0;
}

// --- contexts --------------------------------------------------------------------------------

static int ops_ctx_create_q(ops_ctx **out, ops_device dev, const ops_options *opt, int *quiet) {
    *out = NULL;
    *quiet = 0;
    ops_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return err_set(ERR_NOMEM, "out of memory creating a compute context");
    ctx->dev = dev;
    ctx->opt = opt ? *opt : ops_options_default();
    int rc = ops_resolve_switch(&ctx->opt.tf32, "DIFFOOD_CUDNN_TF32", 1);
    if (rc == 0) rc = ops_resolve_switch(&ctx->opt.tf32_matmul, "DIFFOOD_CUBLAS_TF32", 0);
    if (rc < 0) {
        free(ctx);
        return rc;
    }
    if (dev == OPS_DEV_CPU) {
        ctx->be = ops_cpu_backend();
    } else if (dev == OPS_DEV_CUDA) {
        rc = ops_ctx_create_cuda(ctx, quiet);
    } else {
        rc = err_set(ERR_USAGE, "unknown device %d", (int)dev);
    }
    if (rc < 0) {
        free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int ops_ctx_create(ops_ctx **out, ops_device dev, const ops_options *opt) {
    int quiet;
    return ops_ctx_create_q(out, dev, opt, &quiet);
}

int ops_ctx_create_named(ops_ctx **out, const char *name, const ops_options *opt) {
    if (!strcmp(name, "cpu")) return ops_ctx_create(out, OPS_DEV_CPU, opt);
    if (!strcmp(name, "cuda")) return ops_ctx_create(out, OPS_DEV_CUDA, opt);
    if (!strcmp(name, "auto")) {
        int quiet = 0;
        int rc = ops_ctx_create_q(out, OPS_DEV_CUDA, opt, &quiet);
        if (rc == 0 || rc == ERR_USAGE || rc == ERR_NOMEM) return rc; // a bad TF32 variable is no reason to switch
        if (quiet)
            log_debug("--device auto: using the CPU (%s)", err_msg());
        else
            log_warn("--device auto: using the CPU, because CUDA failed: %s", err_msg());
        err_clear();
        return ops_ctx_create(out, OPS_DEV_CPU, opt);
    }
    return err_set(ERR_USAGE, "unknown device '%s' (expected auto, cpu or cuda)", name);
}

void ops_ctx_destroy(ops_ctx *ctx) {
    if (!ctx) return;
    if (ctx->fini) ctx->fini(ctx);
    if (ctx->dl_handle) dlclose(ctx->dl_handle);
    free(ctx);
}

// --- dispatch ---------------------------------------------------------------------------------

#define OPS_DISPATCH(op, params, args)                                                      \
    int ops_##op params {                                                                   \
        if (!ctx->be->op)                                                                   \
            return err_set(ERR_UNSUPPORTED, "op %s is missing from the %s backend", #op,    \
                           ctx->be->name);                                                  \
        return ctx->be->op args;                                                            \
    }
OPS_LIST(OPS_DISPATCH)
#undef OPS_DISPATCH
