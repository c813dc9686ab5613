// cuda_internal: what the CUDA backend's files share (private to lib/libdiffood_cuda.so): the
// per-context state (stream, cuBLAS/cuDNN handles, workspace arena, convolution algorithm
// cache), the status-check macros and the launch helpers. Nothing here is visible outside the
// shared object (it is built with -fvisibility=hidden; only the two entry points of
// kernels/backend.h are exported).
//
// Errors: every CUDA/cuBLAS/cuDNN status is checked; a failure returns ERR_DEVICE with a message
// "CALL failed at FILE:LINE: LIBRARY ERROR STRING". The message goes through the executable's
// err_setv (programs are linked with -rdynamic, so the shared object binds to it at dlopen); an
// executable that does not export err_setv still gets the code, and the text is kept in a
// fallback buffer (cuda_last_message()).
#ifndef DIFFOOD_CUDA_INTERNAL_H
#define DIFFOOD_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_dlsym.h"

extern "C" {
#include "common/err.h"
}

// --- per-context state ------------------------------------------------------------------------

// One cached convolution plan: descriptors and the algorithms chosen once for this shape.
typedef struct cuda_conv_plan {
    ops_conv_shape s; // the shape this plan is for (key, with tf32)
    int tf32;
    int padded;       // asymmetric padding: x is copied into a zero-padded buffer first
    int hp, wp;       // padded input size (== h, w when not padded)
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    int have_fwd, have_bwd_data, have_bwd_filter;
    cudnnConvolutionFwdAlgo_t fwd_algo;
    cudnnConvolutionBwdDataAlgo_t bwd_data_algo;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
    struct cuda_conv_plan *next;
} cuda_conv_plan;

// Deferred input checks (cuda_host.cu): a kernel that validates device data (ids, labels) gets
// one 64-bit device word per launch and atomicMax'es cuda_flag_value(n, i, v) into it for a bad
// value v at position i of n, so the word names the first bad position and its value. The words
// are read at the next synchronisation point (cuda_sync_point: ops_sync, ops_download, or when
// every word is in use), never at the launch: no host stall per call.
#define CUDA_FLAG_SLOTS 64
typedef enum { CUDA_FLAG_ID, CUDA_FLAG_LABEL } cuda_flag_kind;
typedef struct {
    const char *op;      // the op that launched the check
    cuda_flag_kind kind; // id (0..limit-1) or label (limit classes)
    int n, limit;
} cuda_flag_use;

// Staged uploads (cuda_host.cu): the host data is copied into a ring of pinned memory and sent
// with cudaMemcpyAsync, so ops_upload returns at once (the caller may reuse its buffer); a part of
// the ring is reused only after the event recorded behind its copy has completed.
#define CUDA_STAGE_USES 64
typedef struct {
    size_t off, len;
} cuda_stage_use;

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    void *ws;          // workspace arena (cuDNN workspaces, padded copies, reduction partials)
    size_t ws_bytes;
    unsigned long long *flags;  // CUDA_FLAG_SLOTS device words of deferred input checks
    unsigned long long flag_host[CUDA_FLAG_SLOTS];
    cuda_flag_use flag_use[CUDA_FLAG_SLOTS];
    int flag_used;     // words handed out since the last check
    char *stage;       // pinned staging ring (NULL: uploads go synchronously from the caller's memory)
    size_t stage_bytes, stage_head;
    cuda_stage_use stage_use[CUDA_STAGE_USES]; // uploads in flight, oldest first from stage_first
    cudaEvent_t stage_ev[CUDA_STAGE_USES];
    int stage_first, stage_count, stage_events;
    int stage_unavailable; // cudaHostAlloc failed once: uploads stay synchronous
    cuda_conv_plan *plans; // convolution plans, one per (shape, tf32)
} cuda_impl;

static inline cuda_impl *cuda_impl_of(ops_ctx *ctx) { return (cuda_impl *)ctx->impl; }
#define CUDA_STREAM(ctx) (cuda_impl_of(ctx)->stream)

// --- cuBLAS, loaded at run time ----------------------------------------------------------------
// libcublas (and the 500 MB libcublasLt behind it) take ~0.4 s to load, so the shared object does
// not link them: cuda_cublas_load() dlopens libcublas.so.<major> once a GPU has been found (the
// .so's RPATH finds it) and fills cuda_blas from the table of cuda_dlsym.h. Use cuda_blas.sgemm
// etc., never cublas* directly.
typedef struct {
#define CUDA_BLAS_FIELD(field, fn) decltype(&fn) field;
    CUDA_CUBLAS_SYMBOLS(CUDA_BLAS_FIELD)
#undef CUDA_BLAS_FIELD
} cuda_cublas_api;
extern cuda_cublas_api cuda_blas;
// Loads cuBLAS (once per process; thread-safe). 0 or ERR_DEVICE naming the library and dlerror,
// or the first symbol of the table it lacks.
int cuda_cublas_load(void);

// --- errors -----------------------------------------------------------------------------------

// Records `code` with a printf-style message through the executable's err_setv (or the fallback
// buffer) and returns `code`.
int cuda_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// ERR_DEVICE for a failed call: "what failed at file:line: detail".
int cuda_fail(const char *what, const char *file, int line, const char *detail);
// The text of the last error recorded by this shared object on this thread.
const char *cuda_last_message(void);
const char *cuda_cublas_string(cublasStatus_t st);

#define CUDA_CHECK(call)                                                                     \
    do {                                                                                     \
        cudaError_t cuda_e_ = (call);                                                        \
        if (cuda_e_ != cudaSuccess)                                                          \
            return cuda_fail(#call, __FILE__, __LINE__, cudaGetErrorString(cuda_e_));        \
    } while (0)
#define CUBLAS_CHECK(call)                                                                   \
    do {                                                                                     \
        cublasStatus_t cublas_e_ = (call);                                                   \
        if (cublas_e_ != CUBLAS_STATUS_SUCCESS)                                              \
            return cuda_fail(#call, __FILE__, __LINE__, cuda_cublas_string(cublas_e_));      \
    } while (0)
#define CUDNN_CHECK(call)                                                                    \
    do {                                                                                     \
        cudnnStatus_t cudnn_e_ = (call);                                                     \
        if (cudnn_e_ != CUDNN_STATUS_SUCCESS)                                                \
            return cuda_fail(#call, __FILE__, __LINE__, cudnnGetErrorString(cudnn_e_));      \
    } while (0)
// Forward a negative code.
#define CUDA_TRY(expr)                                                                       \
    do {                                                                                     \
        int cuda_rc_ = (expr);                                                               \
        if (cuda_rc_ < 0) return cuda_rc_;                                                   \
    } while (0)
// After every kernel launch: the launch's own error (bad configuration, no kernel image), and
// with DIFFOOD_CUDA_SYNC=1 (cuda_debug_sync) the kernel's execution errors, named at the launch.
extern int cuda_debug_sync;
#define CUDA_LAUNCHED(name)                                                                  \
    do {                                                                                     \
        cudaError_t cuda_e_ = cudaGetLastError();                                            \
        if (cuda_e_ == cudaSuccess && cuda_debug_sync) cuda_e_ = cudaDeviceSynchronize();   \
        if (cuda_e_ != cudaSuccess)                                                          \
            return cuda_fail("launch of " name, __FILE__, __LINE__, cudaGetErrorString(cuda_e_)); \
    } while (0)
// Shape checks: ERR_USAGE naming the op and the values.
#define CUDA_SHAPE_IF(cond, ...)                                                             \
    do {                                                                                     \
        if (cond) return cuda_err(ERR_USAGE, __VA_ARGS__);                                   \
    } while (0)

// --- launch helpers ---------------------------------------------------------------------------

#define CUDA_THREADS 256
// Blocks for a grid-stride loop over n elements (capped; at least 1).
static inline unsigned cuda_blocks(size_t n) {
    size_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return b ? (unsigned)b : 1u;
}
#define CUDA_GRID_STRIDE(i, n)                                                               \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                  \
         i += (size_t)blockDim.x * gridDim.x)

// Workspace arena: returns at least `bytes` of device scratch valid until the next call that
// asks for workspace on the same context (grows by reallocation, after a stream sync).
int cuda_workspace(ops_ctx *ctx, size_t bytes, void **out);
// The device word for one checking launch of `op` over n values (ids in 0..limit-1, or labels
// of `limit` classes). When every word is in use, checks them first (a synchronisation point).
int cuda_flag_slot(ops_ctx *ctx, const char *op, cuda_flag_kind kind, int n, int limit, unsigned long long **slot);
// What a kernel atomicMax'es into its word for bad value v at position i of n (the first bad
// position gives the largest word).
__device__ __forceinline__ unsigned long long cuda_flag_value(int n, int i, int v) {
    return ((unsigned long long)(unsigned)(n - i) << 32) | (unsigned)v;
}
// A synchronisation point: waits for the stream, then reads the words of the launches since the
// last one: ERR_INPUT naming the first bad value of the first launch that found one (the words
// are reset, the context stays usable), else 0.
int cuda_sync_point(ops_ctx *ctx);
// Context setup and teardown of the flags and the staging ring (cuda_host.cu).
int cuda_host_init(ops_ctx *ctx);
void cuda_host_fini(cuda_impl *im);

// --- device helpers shared by the kernels -----------------------------------------------------

__device__ __forceinline__ float cuda_act(ops_act act, float z) {
    if (act == OPS_ACT_RELU) return z > 0.f ? z : 0.f;
    if (act == OPS_ACT_SWISH) return z / (1.f + expf(-z));
    return z;
}
// d act(z) / dz
__device__ __forceinline__ float cuda_act_grad(ops_act act, float z) {
    if (act == OPS_ACT_RELU) return z > 0.f ? 1.f : 0.f;
    if (act == OPS_ACT_SWISH) {
        float s = 1.f / (1.f + expf(-z));
        return s * (1.f + z * (1.f - s));
    }
    return 1.f;
}

// Block-wide sum of one double per thread in a fixed order (deterministic); every thread gets
// the result. `sh` must hold blockDim.x doubles; blockDim.x a power of two.
__device__ __forceinline__ double cuda_block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}
__device__ __forceinline__ double cuda_block_max(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && sh[threadIdx.x + s] > sh[threadIdx.x]) sh[threadIdx.x] = sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

// Channel slices of an (N, C, HW) tensor: the N*HW positions j of a channel (element
// (j / HW * C + c) * HW + j % HW) cut into `count` slices of `len` consecutive positions, so that
// per-channel reductions use a (count, C) grid of blocks instead of C blocks, then combine the
// partials in slice order (deterministic).
typedef struct {
    int count;
    size_t len;
} cuda_slices;
#define CUDA_SLICE_TARGET 16384 // positions per block
static inline cuda_slices cuda_slices_for(size_t cnt) {
    size_t k = (cnt + CUDA_SLICE_TARGET - 1) / CUDA_SLICE_TARGET;
    if (k < 1) k = 1;
    if (k > 256) k = 256;
    cuda_slices s = {(int)k, (cnt + k - 1) / k};
    return s;
}
__device__ __forceinline__ size_t cuda_chan_index(size_t j, int ch, int c, int hw) {
    return (j / (size_t)hw * c + ch) * (size_t)hw + j % (size_t)hw;
}

// Deterministic sum of `rows` row segments: out[r] = (accumulate ? out[r] : 0) + alpha * sum_j
// src[r * stride_r + j * stride_j] for j < len, summed in double. One block per r.
int cuda_rows_sum(ops_ctx *ctx, float *out, const float *src, int rows, size_t len, size_t stride_r,
                  size_t stride_j, float alpha, int accumulate);
// Deterministic sum over (N, C, HW) of dy per channel: out[c] (+)= sum_{n, hw} dy (one block per c).
int cuda_channel_reduce(ops_ctx *ctx, float *out, const float *dy, int n, int c, int hw, int accumulate);
// Row-major (batched) GEMM through cuBLAS, see ops_bmm.
int cuda_gemm(ops_ctx *ctx, float *c, const float *a, const float *b, int batch, int m, int n, int k,
              int ta, int tb, float alpha, float beta);
// Releases the convolution plan cache.
void cuda_conv_plans_free(cuda_impl *im);

// --- the op implementations (one per OPS_LIST entry) -------------------------------------------
#define CUDA_OP_DECLARE(op, params, args) int cuda_##op params;
OPS_LIST(CUDA_OP_DECLARE)
#undef CUDA_OP_DECLARE

#endif
