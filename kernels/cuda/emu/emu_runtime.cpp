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

unsigned long long atomicMax(unsigned long long *p, unsigned long long v) {
    unsigned long long old = *p;
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

// --- pinned memory and the asynchronous copies that read it ------------------------------------
// Copies run at once here, but a real GPU reads pinned host memory whenever the stream reaches
// the copy. To catch a backend that reuses a staging buffer too early, every host-to-device copy
// from pinned memory stays "pending" (with a checksum of its source) until the host has waited
// for it (an event recorded after it, or the stream); every runtime call first checks that no
// pending source has changed, and fails with cudaErrorEmuStagingRace if one has.

namespace {
struct Pinned {
    char *p;
    size_t n;
};
struct Pending {
    const char *src;
    size_t n;
    uint64_t sum;
    unsigned long long seq;
};
std::vector<Pinned> pinned;
std::vector<Pending> pending;
unsigned long long copy_seq; // copies issued so far

uint64_t emu_sum(const void *p, size_t n) { // FNV-1a
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}
// Size of the pinned block holding p (0: pageable memory).
size_t pinned_size(const void *p) {
    for (const Pinned &b : pinned)
        if ((const char *)p >= b.p && (const char *)p < b.p + b.n) return b.n;
    return 0;
}
int emu_check_pending() {
    for (const Pending &c : pending)
        if (emu_sum(c.src, c.n) != c.sum) return cudaErrorEmuStagingRace;
    return 0;
}
// The host has waited for every copy issued before number `upto`.
void emu_retire(unsigned long long upto) {
    size_t k = 0;
    for (const Pending &c : pending)
        if (c.seq >= upto) pending[k++] = c;
    pending.resize(k);
}
} // namespace

struct emu_event {
    unsigned long long seq = 0; // copies issued before it was recorded
};

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
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    if (int rc = emu_check_pending()) return rc;
    emu_retire(copy_seq);
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    if (*p) memset(*p, 0xff, bytes); // garbage, like fresh device memory (NaN floats)
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) {
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    pinned.push_back({(char *)*p, bytes});
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    for (const Pending &c : pending)
        if (c.src >= (char *)p && c.src < (char *)p + pinned_size(p)) return cudaErrorEmuStagingRace;
    for (size_t i = 0; i < pinned.size(); i++)
        if (pinned[i].p == p) pinned.erase(pinned.begin() + (long)i);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = new emu_event();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    if (int rc = emu_check_pending()) return rc;
    e->seq = copy_seq;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (int rc = emu_check_pending()) return rc;
    emu_retire(e->seq);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) {
    if (int rc = emu_check_pending()) return rc;
    memmove(d, s, n);
    if (k == cudaMemcpyHostToDevice && pinned_size(s)) pending.push_back({(const char *)s, n, emu_sum(s, n), copy_seq++});
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaStreamSynchronize(nullptr); }
cudaError_t cudaGetLastError(void) {
    int e = g_last_error;
    g_last_error = 0;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    if (e == cudaErrorEmuStagingRace)
        return "emulated CUDA: pinned host memory was changed or freed before the asynchronous copy reading it was "
               "waited for";
    return e ? "emulated CUDA error" : "no error";
}
const char *cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }

// --- cuDNN ------------------------------------------------------------------------------------

struct emu_tensor { int n, c, h, w; };
struct emu_filter { int k, c, h, w; };
struct emu_conv { int ph, pw, u, v; cudnnMathType_t math; };
const char *cudnnGetErrorString(cudnnStatus_t s) {
    if (s == CUDNN_STATUS_SUCCESS) return "success";
    if (s == CUDNN_STATUS_NOT_SUPPORTED) return "emulated cuDNN: CUDNN_STATUS_NOT_SUPPORTED (algorithm and math type do not match)";
    if (s == EMU_CUDNN_STATUS_CONVERSION) return "emulated cuDNN: an algorithm that down-converts float32 to FP16 was run";
    return "emulated cuDNN error";
}
cudnnStatus_t cudnnOpsVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnCnnVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }
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
    *d = {ph, pw, u, v, CUDNN_DEFAULT_MATH};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    if (m < CUDNN_DEFAULT_MATH || m > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int *n, int *ch, int *h, int *wd) {
    *n = x->n;
    *ch = w->k;
    *h = (x->h + 2 * c->ph - w->h) / c->u + 1;
    *wd = (x->w + 2 * c->pw - w->w) / c->v + 1;
    return CUDNN_STATUS_SUCCESS;
}
// The algorithms every query returns, fastest first, whatever the descriptor's math type (a
// stricter test of the backend's filter than real cuDNN, which leaves some out):
//   EMU_ALGO_CONVERT  deterministic, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: must never be chosen
//   EMU_ALGO_TENSOR   deterministic, CUDNN_TENSOR_OP_MATH: only with TF32 on
//   1                 non-deterministic, FMA: the forward's choice with TF32 off
//   0                 deterministic, FMA, 4 KiB of workspace: the backward's choice with TF32 off
// Running EMU_ALGO_CONVERT, or any algorithm while the descriptor says ALLOW_CONVERSION, fails
// with EMU_CUDNN_STATUS_CONVERSION; EMU_ALGO_TENSOR under CUDNN_FMA_MATH fails with
// CUDNN_STATUS_NOT_SUPPORTED. emu_cudnn_runs(math) counts the convolutions run per math type.
#define EMU_ALGOS(perf)                                                                   \
    {                                                                                     \
        static const int algo[4] = {EMU_ALGO_CONVERT, EMU_ALGO_TENSOR, 1, 0};             \
        static const cudnnMathType_t math[4] = {CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,    \
                                                CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH,     \
                                                CUDNN_FMA_MATH};                          \
        *count = 4;                                                                       \
        for (int i = 0; i < 4; i++) {                                                     \
            perf[i] = {};                                                                 \
            perf[i].algo = algo[i];                                                       \
            perf[i].status = CUDNN_STATUS_SUCCESS;                                        \
            perf[i].determinism = i == 2 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC; \
            perf[i].mathType = math[i];                                                   \
        }                                                                                 \
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

static long emu_runs[CUDNN_FMA_MATH + 1];

// Whether algorithm `algo` may run under the descriptor's math type; counts the run.
static cudnnStatus_t emu_math_check(const emu_conv *c, int algo) {
    if (algo == EMU_ALGO_CONVERT || c->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return EMU_CUDNN_STATUS_CONVERSION;
    if (algo == EMU_ALGO_TENSOR && c->math == CUDNN_FMA_MATH) return CUDNN_STATUS_NOT_SUPPORTED;
    emu_runs[c->math]++;
    return CUDNN_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) long emu_cudnn_runs(int math) {
    return math >= 0 && math <= CUDNN_FMA_MATH ? emu_runs[math] : -1;
}

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
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t wsb, const void *beta,
                                      cudnnTensorDescriptor_t yd, void *y) {
    cudnnStatus_t st = emu_math_check(cd, algo);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)yd->n * yd->c * yd->h * yd->w, 0.0);
    const float *xf = (const float *)x, *wf = (const float *)w;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[yi] += (double)xf[xi] * wf[wi]; });
    emu_blend((float *)y, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void *alpha, cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t yd, const void *dy, cudnnConvolutionDescriptor_t cd,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t wsb, const void *beta,
                                           cudnnTensorDescriptor_t xd, void *dx) {
    cudnnStatus_t st = emu_math_check(cd, algo);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)xd->n * xd->c * xd->h * xd->w, 0.0);
    const float *dyf = (const float *)dy, *wf = (const float *)w;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[xi] += (double)dyf[yi] * wf[wi]; });
    emu_blend((float *)dx, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                             cudnnTensorDescriptor_t yd, const void *dy, cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t wsb, const void *beta,
                                             cudnnFilterDescriptor_t wd, void *dw) {
    cudnnStatus_t st = emu_math_check(cd, algo);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    emu_touch(ws, wsb);
    std::vector<double> acc((size_t)wd->k * wd->c * wd->h * wd->w, 0.0);
    const float *xf = (const float *)x, *dyf = (const float *)dy;
    emu_conv_loop(xd, wd, cd, yd, [&](size_t xi, size_t wi, size_t yi) { acc[wi] += (double)xf[xi] * dyf[yi]; });
    emu_blend((float *)dw, acc, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
} // extern "C"
