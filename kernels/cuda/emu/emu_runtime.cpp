// emu_runtime: the CUDA emulator's launch model (threads of a block as ucontext fibers that
// switch at __syncthreads; blocks one after another), runtime API on host memory, and a naive
// NCHW float cuDNN convolution (forward, backward-data, backward-filter with alpha/beta).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ucontext.h>
#include <vector>

#include "cuda_runtime.h"
#include "cudnn.h"

// --- launch model ------------------------------------------------------------------------------

namespace {
enum { RUN, BARRIER, DONE };
struct Fiber {
    ucontext_t ctx;
    char *stack = nullptr; // owned by stacks
    int state = DONE;
    dim3 tid;
};
const size_t STACK = 64 * 1024;
std::vector<Fiber> fibers;
std::vector<std::unique_ptr<char[]>> stacks;
ucontext_t main_ctx;
size_t cur;
dim3 g_block, g_bdim, g_gdim;
const std::function<void()> *g_fn;
int g_last_error;

void trampoline() {
    (*g_fn)();
    fibers[cur].state = DONE;
    swapcontext(&fibers[cur].ctx, &main_ctx);
}
} // namespace

const dim3 &emu_thread_idx() { return fibers[cur].tid; }
const dim3 &emu_block_idx() { return g_block; }
const dim3 &emu_block_dim() { return g_bdim; }
const dim3 &emu_grid_dim() { return g_gdim; }

void __syncthreads() {
    fibers[cur].state = BARRIER;
    swapcontext(&fibers[cur].ctx, &main_ctx);
}

int atomicMax(int *p, int v) {
    int old = *p;
    if (v > old) *p = v;
    return old;
}

int emu_launch(dim3 grid, dim3 block, const std::function<void()> &fn, size_t, cudaStream_t) {
    size_t nt = (size_t)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !nt || nt > 1024 || grid.y > 65535 || grid.z > 65535) {
        g_last_error = cudaErrorInvalidConfiguration;
        return g_last_error;
    }
    while (fibers.size() < nt) {
        stacks.emplace_back(new char[STACK]);
        fibers.emplace_back();
        fibers.back().stack = stacks.back().get();
    }
    g_fn = &fn;
    g_bdim = block;
    g_gdim = grid;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                g_block = dim3(bx, by, bz);
                for (size_t t = 0; t < nt; t++) {
                    Fiber &f = fibers[t];
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack;
                    f.ctx.uc_stack.ss_size = STACK;
                    f.ctx.uc_link = nullptr;
                    makecontext(&f.ctx, trampoline, 0);
                    f.state = RUN;
                    f.tid = dim3((unsigned)(t % block.x), (unsigned)(t / block.x % block.y),
                                 (unsigned)(t / block.x / block.y));
                }
                for (;;) {
                    for (size_t t = 0; t < nt; t++) {
                        if (fibers[t].state != RUN) continue;
                        cur = t;
                        swapcontext(&main_ctx, &fibers[t].ctx);
                    }
                    size_t done = 0, barrier = 0;
                    for (size_t t = 0; t < nt; t++) {
                        done += fibers[t].state == DONE;
                        barrier += fibers[t].state == BARRIER;
                    }
                    if (done == nt) break;
                    if (done) {
                        fprintf(stderr, "emu: __syncthreads reached by %zu threads while %zu have exited (block %u)\n",
                                barrier, done, bx);
                        abort();
                    }
                    for (size_t t = 0; t < nt; t++) fibers[t].state = RUN;
                }
            }
    return 0;
}

// --- runtime ---------------------------------------------------------------------------------

extern "C" {
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    free(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    if (*p) memset(*p, 0xff, bytes); // garbage, like fresh device memory (NaN floats)
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) {
    int e = g_last_error;
    g_last_error = 0;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated CUDA error" : "no error"; }
const char *cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }

// --- cuDNN ------------------------------------------------------------------------------------

struct emu_tensor { int n, c, h, w; };
struct emu_filter { int k, c, h, w; };
struct emu_conv { int ph, pw, u, v; };
const char *cudnnGetErrorString(cudnnStatus_t s) { return s ? "emulated cuDNN error" : "success"; }
cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { *h = (cudnnHandle_t)malloc(1); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { free(h); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { *d = new emu_tensor(); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t, cudnnDataType_t, int n, int c,
                                         int h, int w) {
    *d = {n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { *d = new emu_filter(); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t, cudnnTensorFormat_t, int k, int c,
                                         int h, int w) {
    *d = {k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) { *d = new emu_conv(); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh,
                                              int dw, cudnnConvolutionMode_t m, cudnnDataType_t) {
    if (dh != 1 || dw != 1 || m != CUDNN_CROSS_CORRELATION || u < 1 || v < 1) return CUDNN_STATUS_NOT_SUPPORTED;
    *d = {ph, pw, u, v};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t, cudnnMathType_t) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int *n, int *ch, int *h, int *wd) {
    *n = x->n;
    *ch = w->k;
    *h = (x->h + 2 * c->ph - w->h) / c->u + 1;
    *wd = (x->w + 2 * c->pw - w->w) / c->v + 1;
    return CUDNN_STATUS_SUCCESS;
}
#define EMU_ALGOS(perf)                                                                   \
    {                                                                                     \
        *count = 2; /* a non-deterministic one first: the backward must skip it */       \
        perf[0] = {};                                                                     \
        perf[0].algo = 1;                                                                 \
        perf[0].status = CUDNN_STATUS_SUCCESS;                                            \
        perf[0].determinism = CUDNN_NON_DETERMINISTIC;                                    \
        perf[0].mathType = CUDNN_FMA_MATH;                                                \
        perf[1] = perf[0];                                                                \
        perf[1].algo = 0;                                                                 \
        perf[1].determinism = CUDNN_DETERMINISTIC;                                        \
        return CUDNN_STATUS_SUCCESS;                                                      \
    }
cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                                                   cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int,
                                                   int *count, cudnnConvolutionFwdAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                                                     cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int,
                                                     int *count, cudnnConvolutionFwdAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,
                                                        cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int,
                                                        int *count, cudnnConvolutionBwdDataAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, cudnnFilterDescriptor_t,
                                                          cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                          cudnnTensorDescriptor_t, int, int *count,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                          cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                          cudnnFilterDescriptor_t, int, int *count,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                            cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                            cudnnFilterDescriptor_t, int, int *count,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf) EMU_ALGOS(perf)
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                                                      cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                      cudnnConvolutionFwdAlgo_t a, size_t *s) { *s = a ? 0 : 4096; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,
                                                           cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                           cudnnConvolutionBwdDataAlgo_t a, size_t *s) { *s = a ? 0 : 4096; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                             cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                             cudnnFilterDescriptor_t, cudnnConvolutionBwdFilterAlgo_t a,
                                                             size_t *s) { *s = a ? 0 : 4096; return CUDNN_STATUS_SUCCESS; }

// The workspace must be writable where cuDNN is told it is: touch it all.
static void emu_touch(void *ws, size_t n) {
    if (n) memset(ws, 0, n);
}

// For every (n, k, oy, ox, c, ky, kx) inside the input: fn(x index, w index, y index).
extern "C++" {
template <class F>
static void emu_conv_loop(const emu_tensor *x, const emu_filter *w, const emu_conv *c, const emu_tensor *y, F fn) {
    for (int n = 0; n < y->n; n++)
        for (int k = 0; k < y->c; k++)
            for (int oy = 0; oy < y->h; oy++)
                for (int ox = 0; ox < y->w; ox++)
                    for (int ch = 0; ch < x->c; ch++)
                        for (int ky = 0; ky < w->h; ky++)
                            for (int kx = 0; kx < w->w; kx++) {
                                int iy = oy * c->u - c->ph + ky, ix = ox * c->v - c->pw + kx;
                                if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) continue;
                                size_t xi = (((size_t)n * x->c + ch) * x->h + iy) * x->w + ix;
                                size_t wi = (((size_t)k * w->c + ch) * w->h + ky) * w->w + kx;
                                size_t yi = (((size_t)n * y->c + k) * y->h + oy) * y->w + ox;
                                fn(xi, wi, yi);
                            }
}
} // extern "C++"

static void emu_blend(float *out, const std::vector<double> &acc, float alpha, float beta) {
    for (size_t i = 0; i < acc.size(); i++) out[i] = (float)(alpha * acc[i] + (beta != 0.f ? beta * out[i] : 0.0));
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t, void *ws, size_t wsb, const void *beta,
                                      cudnnTensorDescriptor_t yd, void *y) {
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)yd->n * yd->c * yd->h * yd->w, 0.0);
    const float *xf = (const float *)x, *wf = (const float *)w;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[yi] += (double)xf[xi] * wf[wi]; });
    emu_blend((float *)y, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void *alpha, cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t yd, const void *dy, cudnnConvolutionDescriptor_t cd,
                                           cudnnConvolutionBwdDataAlgo_t, void *ws, size_t wsb, const void *beta,
                                           cudnnTensorDescriptor_t xd, void *dx) {
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)xd->n * xd->c * xd->h * xd->w, 0.0);
    const float *dyf = (const float *)dy, *wf = (const float *)w;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[xi] += (double)dyf[yi] * wf[wi]; });
    emu_blend((float *)dx, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                             cudnnTensorDescriptor_t yd, const void *dy, cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t, void *ws, size_t wsb, const void *beta,
                                             cudnnFilterDescriptor_t wd, void *dw) {
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)wd->k * wd->c * wd->h * wd->w, 0.0);
    const float *xf = (const float *)x, *dyf = (const float *)dy;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[wi] += (double)xf[xi] * dyf[yi]; });
    emu_blend((float *)dw, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
} // extern "C"
