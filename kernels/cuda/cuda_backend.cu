// cuda_backend: the CUDA backend's table and context (kernels/backend.h): device selection,
// the stream, cuBLAS and cuDNN handles, the workspace arena, the memory ops, and the error
// plumbing that carries messages back to the executable's err.h.
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

// --- errors -----------------------------------------------------------------------------------

// The executable's err_setv, when it exports it (-rdynamic); NULL otherwise (weak reference).
extern "C" int err_setv(int code, const char *fmt, va_list ap) __attribute__((weak));

static thread_local char cuda_msg[2048];

int cuda_err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cuda_msg, sizeof cuda_msg, fmt, ap);
    va_end(ap);
    if (err_setv) {
        va_start(ap, fmt);
        err_setv(code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int cuda_fail(const char *what, const char *file, int line, const char *detail) {
    return cuda_err(ERR_DEVICE, "CUDA backend: %s failed at %s:%d: %s", what, file, line,
                    detail ? detail : "unknown error");
}

const char *cuda_last_message(void) { return cuda_msg; }

const char *cuda_cublas_string(cublasStatus_t st) {
    const char *s = cuda_blas.status_string ? cuda_blas.status_string(st) : NULL;
    return s ? s : "unknown cuBLAS status";
}

// --- cuBLAS loading ---------------------------------------------------------------------------

#define CUDA_STR2(x) #x
#define CUDA_STR(x) CUDA_STR2(x)
#define CUDA_CUBLAS_SONAME CUDA_CUBLAS_SONAME_PREFIX CUDA_STR(CUBLAS_VER_MAJOR)

cuda_cublas_api cuda_blas;
static pthread_once_t cuda_blas_once = PTHREAD_ONCE_INIT;
static char cuda_blas_error[1024];

// CUDA_HOME/lib64 of the build (the Makefile defines it); also in the .so's RPATH.
#ifndef DIFFOOD_CUDA_LIBDIR
#define DIFFOOD_CUDA_LIBDIR ""
#endif

// dlopen by soname (this .so's RPATH, LD_LIBRARY_PATH, the system), then beside this .so, then in
// the build's CUDA_HOME/lib64: the explicit paths cover loaders that do not apply the caller's
// RPATH (AddressSanitizer's dlopen interceptor).
static void *cuda_cublas_open(void) {
    void *h = dlopen(CUDA_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    snprintf(cuda_blas_error, sizeof cuda_blas_error, "cannot load %s: %s", CUDA_CUBLAS_SONAME, dlerror());
    char path[4096];
    Dl_info info;
    if (dladdr((void *)&cuda_cublas_open, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash) {
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, CUDA_CUBLAS_SONAME);
            if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) return h;
        }
    }
    if (DIFFOOD_CUDA_LIBDIR[0]) {
        snprintf(path, sizeof path, "%s/%s", DIFFOOD_CUDA_LIBDIR, CUDA_CUBLAS_SONAME);
        if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) return h;
    }
    return NULL;
}

static void cuda_cublas_load_once(void) {
    void *h = cuda_cublas_open();
    if (!h) return;
    cuda_cublas_api a;
    int missing = 0;
#define CUDA_BLAS_SYM(field, fn)                                      \
    a.field = (decltype(a.field))dlsym(h, #fn);                      \
    if (!a.field && !missing) {                                      \
        missing = 1;                                                 \
        snprintf(cuda_blas_error, sizeof cuda_blas_error, "%s lacks %s", CUDA_CUBLAS_SONAME, #fn); \
    }
    CUDA_CUBLAS_SYMBOLS(CUDA_BLAS_SYM)
#undef CUDA_BLAS_SYM
    if (missing) return; // the handle stays open: harmless, and dlclose of CUDA libraries is not
    cuda_blas = a;
}

int cuda_cublas_load(void) {
    pthread_once(&cuda_blas_once, cuda_cublas_load_once);
    if (!cuda_blas.sgemm) return cuda_err(ERR_DEVICE, "CUDA backend: %s", cuda_blas_error);
    return 0;
}

int cuda_debug_sync;

// --- context ----------------------------------------------------------------------------------

static void cuda_ctx_fini(ops_ctx *ctx) {
    cuda_impl *im = cuda_impl_of(ctx);
    if (!im) return;
    cudaSetDevice(im->device);
    if (im->stream) cudaStreamSynchronize(im->stream);
    cuda_conv_plans_free(im);
    if (im->ws) cudaFree(im->ws);
    cuda_host_fini(im);
    if (im->cudnn) cudnnDestroy(im->cudnn);
    if (im->cublas) cuda_blas.destroy(im->cublas);
    if (im->stream) cudaStreamDestroy(im->stream);
    free(im);
    ctx->impl = NULL;
    ctx->fini = NULL;
}

// cuDNN 9's libcudnn.so.9 loads its sub-libraries (libcudnn_ops, libcudnn_cnn: the convolutions)
// on first use; load and version-check them now, so that a missing one is an error of context
// creation (which --device auto warns about) rather than of the first convolution.
static int cuda_cudnn_sublibraries(void) {
    cudnnStatus_t st = cudnnOpsVersionCheck();
    if (st != CUDNN_STATUS_SUCCESS)
        return cuda_err(ERR_DEVICE, "CUDA backend: cuDNN's libcudnn_ops does not load or match: %s",
                        cudnnGetErrorString(st));
    st = cudnnCnnVersionCheck();
    if (st != CUDNN_STATUS_SUCCESS)
        return cuda_err(ERR_DEVICE, "CUDA backend: cuDNN's libcudnn_cnn (convolutions) does not load or match: %s",
                        cudnnGetErrorString(st));
    return 0;
}

// Loads cuBLAS and resolves its table, and loads cuDNN's sub-libraries, without a GPU
// (kernels/backend.h).
extern "C" __attribute__((visibility("default"))) int ops_cuda_load_libraries(void) {
    CUDA_TRY(cuda_cublas_load());
    return cuda_cudnn_sublibraries();
}

// Opens the device and creates the handles; on failure everything made so far is released.
static int cuda_ctx_open(ops_ctx *ctx, cuda_impl *im) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        // No GPU, or no NVIDIA driver at all (the runtime then says "driver insufficient"): a
        // machine without CUDA, where --device auto falls back quietly. A driver that is there but
        // too old, or any other failure, is worth a warning.
        char driver[600] = "";
        if (e == cudaErrorNoDevice) ctx->no_device = 1;
        if (e == cudaErrorInsufficientDriver && !dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
            ctx->no_device = 1;
            snprintf(driver, sizeof driver, "; no NVIDIA driver here (%s)", dlerror());
        }
        return cuda_err(ERR_DEVICE, "no usable CUDA GPU: cudaGetDeviceCount: %s (%s)%s; use --device cpu",
                        cudaGetErrorString(e), cudaGetErrorName(e), driver);
    }
    if (count <= 0) {
        ctx->no_device = 1;
        return cuda_err(ERR_DEVICE, "no usable CUDA GPU: no CUDA device found; use --device cpu");
    }
    if (ctx->opt.device_index < 0 || ctx->opt.device_index >= count)
        return cuda_err(ERR_DEVICE, "CUDA device %d does not exist (this machine has %d)",
                        ctx->opt.device_index, count);
    im->device = ctx->opt.device_index;
    const char *dbg = getenv("DIFFOOD_CUDA_SYNC");
    cuda_debug_sync = dbg && *dbg && strcmp(dbg, "0") != 0;
    CUDA_CHECK(cudaSetDevice(im->device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    CUDA_TRY(cuda_cublas_load());
    CUDA_TRY(cuda_cudnn_sublibraries());
    CUBLAS_CHECK(cuda_blas.create(&im->cublas));
    CUBLAS_CHECK(cuda_blas.set_stream(im->cublas, im->stream));
    CUBLAS_CHECK(cuda_blas.set_math_mode(im->cublas, ctx->opt.tf32_matmul > 0 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    CUDNN_CHECK(cudnnCreate(&im->cudnn));
    CUDNN_CHECK(cudnnSetStream(im->cudnn, im->stream));
    CUDA_TRY(cuda_host_init(ctx));
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
    return 0;
}

// Also reachable as ctx->fini (what kernels/ops.c calls).
extern "C" __attribute__((visibility("default"))) void ops_cuda_ctx_fini(ops_ctx *ctx) { cuda_ctx_fini(ctx); }

extern "C" __attribute__((visibility("default"))) int ops_cuda_ctx_init(ops_ctx *ctx) {
    cuda_impl *im = (cuda_impl *)calloc(1, sizeof *im);
    if (!im) return cuda_err(ERR_NOMEM, "out of memory creating the CUDA context");
    ctx->impl = im;
    ctx->fini = cuda_ctx_fini;
    int rc = cuda_ctx_open(ctx, im);
    if (rc < 0) {
        // Keep the message: the cleanup calls below may fail quietly without a device.
        cuda_ctx_fini(ctx);
        return rc;
    }
    return 0;
}

int cuda_workspace(ops_ctx *ctx, size_t bytes, void **out) {
    cuda_impl *im = cuda_impl_of(ctx);
    if (bytes > im->ws_bytes) {
        size_t grow = bytes + bytes / 4 + 256;
        if (im->ws) {
            CUDA_CHECK(cudaStreamSynchronize(im->stream));
            CUDA_CHECK(cudaFree(im->ws));
            im->ws = NULL;
            im->ws_bytes = 0;
        }
        cudaError_t e = cudaMalloc(&im->ws, grow);
        if (e != cudaSuccess) {
            im->ws = NULL;
            return cuda_err(ERR_DEVICE, "CUDA backend: cannot allocate a %zu-byte workspace: %s", grow,
                            cudaGetErrorString(e));
        }
        im->ws_bytes = grow;
    }
    *out = im->ws;
    return 0;
}

// --- memory -----------------------------------------------------------------------------------

int cuda_alloc(ops_ctx *ctx, void **p, size_t bytes) {
    *p = NULL;
    if (bytes == 0) return 0;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        *p = NULL;
        return cuda_err(ERR_DEVICE, "CUDA backend: cannot allocate %zu bytes of GPU memory: %s", bytes,
                        cudaGetErrorString(e));
    }
    return 0;
}

int cuda_free(ops_ctx *ctx, void *p) {
    if (!p) return 0;
    CUDA_CHECK(cudaStreamSynchronize(cuda_impl_of(ctx)->stream));
    CUDA_CHECK(cudaFree(p));
    return 0;
}

int cuda_copy(ops_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return 0;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_impl_of(ctx)->stream));
    return 0;
}

// --- the table --------------------------------------------------------------------------------

static ops_backend cuda_make_table(void) {
    ops_backend t;
    memset(&t, 0, sizeof t);
    t.name = "cuda";
#define CUDA_OP_SET(op, params, args) t.op = cuda_##op;
    OPS_LIST(CUDA_OP_SET)
#undef CUDA_OP_SET
    return t;
}

extern "C" __attribute__((visibility("default"))) const ops_backend *ops_cuda_backend(void) {
    static const ops_backend table = cuda_make_table();
    return &table;
}
