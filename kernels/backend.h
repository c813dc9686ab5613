// backend: the table of functions every backend fills, generated from OPS_LIST (kernels/ops.h),
// and the context that carries the chosen backend. Only kernels/ code includes this header.
//
// The CPU backend is linked into every executable (kernels/cpu/). The CUDA backend is a shared
// object (lib/libdiffood_cuda.so) exporting `const ops_backend *ops_cuda_backend(void)` and
// `int ops_cuda_ctx_init(ops_ctx *ctx)` / `void ops_cuda_ctx_fini(ops_ctx *ctx)` with C linkage;
// kernels/ops.c loads it with dlopen only when a GPU is asked for, so CPU users never need CUDA.
#ifndef DIFFOOD_BACKEND_H
#define DIFFOOD_BACKEND_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ops_backend {
    const char *name;
#define OPS_MEMBER(op, params, args) int(*op) params;
    OPS_LIST(OPS_MEMBER)
#undef OPS_MEMBER
} ops_backend;

struct ops_ctx {
    const ops_backend *be;
    ops_device dev;
    ops_options opt;
    void *impl;       // backend state (CUDA: stream, handles, workspace, algorithm cache)
    void *dl_handle;  // the CUDA shared object, when loaded
    void (*fini)(ops_ctx *ctx);
    int no_device;    // set by a failing CUDA init when the machine has no GPU or no NVIDIA driver
                      // at all (--device auto then falls back to the CPU without a warning)
};

// The CPU backend's table (kernels/cpu/).
const ops_backend *ops_cpu_backend(void);

// Entry points of the CUDA shared object (resolved with dlsym). ops_cuda_load_libraries loads
// what the backend itself dlopens (cuBLAS) and resolves every function of its table
// (kernels/cuda/cuda_dlsym.h) without touching a GPU: 0, or ERR_DEVICE naming the library and
// the missing symbol (tests/test_cuda_load.c calls it on a machine without a GPU).
typedef const ops_backend *(*ops_cuda_backend_fn)(void);
typedef int (*ops_cuda_ctx_init_fn)(ops_ctx *ctx);
typedef int (*ops_cuda_load_fn)(void);
#define OPS_CUDA_BACKEND_SYMBOL "ops_cuda_backend"
#define OPS_CUDA_INIT_SYMBOL "ops_cuda_ctx_init"
#define OPS_CUDA_FINI_SYMBOL "ops_cuda_ctx_fini"
#define OPS_CUDA_LOAD_SYMBOL "ops_cuda_load_libraries"

#ifdef __cplusplus
}
#endif
#endif
