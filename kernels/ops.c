// ops: context creation and dispatch of every op in OPS_LIST to the context's backend.
// The CUDA backend is loaded on demand from a shared object (see kernels/backend.h).
#include "kernels/backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

ops_options ops_options_default(void) {
    ops_options o = {.threads = 0, .tf32 = 1, .device_index = 0};
    return o;
}

const char *ops_device_name(ops_device dev) {
    static const char *const names[OPS_DEV_COUNT] = {"cpu", "cuda"};
    return (dev >= 0 && dev < OPS_DEV_COUNT) ? names[dev] : "?";
}

ops_device ops_ctx_device(const ops_ctx *ctx) { return ctx->dev; }

// --- CUDA shared object ---------------------------------------------------------------------

// Tries DIFFOOD_CUDA_LIB, then ../lib/libdiffood_cuda.so and ./libdiffood_cuda.so beside the
// executable. Returns the dlopen handle or NULL with the reasons in `why`.
static void *ops_cuda_open(char *why, size_t why_len) {
    char cand[3][PATH_MAX];
    int nc = 0;
    const char *env = getenv("DIFFOOD_CUDA_LIB");
    if (env && *env) snprintf(cand[nc++], PATH_MAX, "%s", env);
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
        snprintf(why, why_len, "%s", dlerror());
        return NULL;
    }
    snprintf(why, why_len, "this build has no CUDA backend (lib/libdiffood_cuda.so not found; "
                           "build with nvcc present, or set DIFFOOD_CUDA_LIB)");
    return NULL;
}

static int ops_ctx_create_cuda(ops_ctx *ctx) {
    char why[1024];
    void *h = ops_cuda_open(why, sizeof why);
    if (!h) return err_set(ERR_DEVICE, "cannot use CUDA: %s", why);
    ops_cuda_backend_fn be = (ops_cuda_backend_fn)dlsym(h, OPS_CUDA_BACKEND_SYMBOL);
    ops_cuda_ctx_init_fn init = (ops_cuda_ctx_init_fn)dlsym(h, OPS_CUDA_INIT_SYMBOL);
    if (!be || !init) {
        dlclose(h);
        return err_set(ERR_DEVICE, "cannot use CUDA: the CUDA backend library lacks its entry points");
    }
    ctx->dl_handle = h;
    ctx->be = be();
    int rc = init(ctx); // sets impl and fini, or an err message (no GPU, driver too old, ...)
    if (rc < 0) {
        ctx->dl_handle = NULL;
        dlclose(h);
        return rc;
    }
    return 0;
}

// --- contexts --------------------------------------------------------------------------------

int ops_ctx_create(ops_ctx **out, ops_device dev, const ops_options *opt) {
    *out = NULL;
    ops_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return err_set(ERR_NOMEM, "out of memory creating a compute context");
    ctx->dev = dev;
    ctx->opt = opt ? *opt : ops_options_default();
    int rc = 0;
    if (dev == OPS_DEV_CPU) {
        ctx->be = ops_cpu_backend();
    } else if (dev == OPS_DEV_CUDA) {
        rc = ops_ctx_create_cuda(ctx);
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

int ops_ctx_create_named(ops_ctx **out, const char *name, const ops_options *opt) {
    if (!strcmp(name, "cpu")) return ops_ctx_create(out, OPS_DEV_CPU, opt);
    if (!strcmp(name, "cuda")) return ops_ctx_create(out, OPS_DEV_CUDA, opt);
    if (!strcmp(name, "auto")) {
        if (ops_ctx_create(out, OPS_DEV_CUDA, opt) == 0) return 0;
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
