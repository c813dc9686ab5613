// cuda_conv: 2-D convolution (NCHW float32) on cuDNN's convolution API: forward, backward-data
// and backward-filter, plus the bias (own deterministic kernels).
//
// Algorithms are chosen ONCE per (shape, tf32) and direction, on first use, and cached in the
// context's plan list with their descriptors. The default is cuDNN's heuristics
// (cudnnGet*Algorithm_v7): the choice depends only on the shape and the GPU, so two runs give
// the same numbers bit for bit (the stage contract's resume guarantee). DIFFOOD_CUDNN_FIND=1
// benchmarks instead (cudnnFind*Algorithm: often faster, but the choice, and so the rounding,
// may differ from run to run).
//
// Math types (ops_options.tf32, PyTorch's torch.backends.cudnn.allow_tf32): the descriptor is
// queried with CUDNN_TENSOR_OP_MATH when tf32 is on (tensor cores in TF32 for float32 data, no
// down-conversion) and CUDNN_FMA_MATH when it is off, and each direction then runs with the
// chosen algorithm's own math type (CUDNN_FMA_MATH when tf32 is off). An algorithm whose math
// type is CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION is never accepted: it lets cuDNN convert float32
// to FP16 (activations overflow, small gradients flush to zero). With tf32 off, tensor-op
// algorithms are rejected too. Backward directions prefer deterministic algorithms.
// Workspaces come from the context's arena, at most CUDA_CONV_WS_MAX bytes per algorithm.
//
// Asymmetric padding (the UNet's Downsample pads right/bottom by one): cuDNN only pads
// symmetrically, so the input is copied into a zero-padded buffer (N, C, H+pt+pb, W+pl+pr) in the
// workspace and convolved with zero padding; backward-data computes the padded input gradient
// there (beta 0) and adds its interior to dx; backward-filter convolves the padded copy.
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

#define CUDA_CONV_WS_MAX ((size_t)1 << 30)
#define CUDA_ALIGN(x) (((x) + 255) & ~(size_t)255)

// --- plans ------------------------------------------------------------------------------------

static void cuda_plan_free(cuda_conv_plan *p) {
    if (p->x_desc) cudnnDestroyTensorDescriptor(p->x_desc);
    if (p->y_desc) cudnnDestroyTensorDescriptor(p->y_desc);
    if (p->w_desc) cudnnDestroyFilterDescriptor(p->w_desc);
    if (p->conv_desc) cudnnDestroyConvolutionDescriptor(p->conv_desc);
    free(p);
}

void cuda_conv_plans_free(cuda_impl *im) {
    cuda_conv_plan *p = im->plans;
    while (p) {
        cuda_conv_plan *next = p->next;
        cuda_plan_free(p);
        p = next;
    }
    im->plans = NULL;
}

// The math type the descriptor has while cuDNN is asked for algorithms.
static cudnnMathType_t cuda_query_math(const cuda_conv_plan *p) {
    return p->tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

static int cuda_plan_describe(ops_ctx *ctx, cuda_conv_plan *p) {
    const ops_conv_shape *s = &p->s;
    int ho = ops_conv_out_h(s), wo = ops_conv_out_w(s);
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y_desc));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w_desc));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv_desc));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c_in, p->hp, p->wp));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c_out, ho, wo));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->c_out, s->c_in, s->kh, s->kw));
    int ph = p->padded ? 0 : s->pad_t, pw = p->padded ? 0 : s->pad_l;
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv_desc, ph, pw, s->stride, s->stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, cuda_query_math(p)));
    int dn, dc, dh, dw;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv_desc, p->x_desc, p->w_desc, &dn, &dc, &dh, &dw));
    if (dn != s->n || dc != s->c_out || dh != ho || dw != wo)
        return cuda_err(ERR_INTERNAL, "conv2d: cuDNN output %dx%dx%dx%d differs from ops' %dx%dx%dx%d", dn, dc, dh, dw,
                        s->n, s->c_out, ho, wo);
    return 0;
}

// The plan for shape s under the context's tf32 setting (created on first use).
static int cuda_plan_get(ops_ctx *ctx, const ops_conv_shape *s, cuda_conv_plan **out) {
    cuda_impl *im = cuda_impl_of(ctx);
    int tf32 = ctx->opt.tf32 ? 1 : 0;
    for (cuda_conv_plan *p = im->plans; p; p = p->next) {
        if (p->tf32 == tf32 && !memcmp(&p->s, s, sizeof *s)) {
            *out = p;
            return 0;
        }
    }
    CUDA_SHAPE_IF(s->n <= 0 || s->c_in <= 0 || s->h <= 0 || s->w <= 0 || s->c_out <= 0 || s->kh <= 0 ||
                      s->kw <= 0 || s->stride <= 0 || s->pad_t < 0 || s->pad_l < 0 || s->pad_b < 0 || s->pad_r < 0 ||
                      ops_conv_out_h(s) <= 0 || ops_conv_out_w(s) <= 0 ||
                      s->h + s->pad_t + s->pad_b < s->kh || s->w + s->pad_l + s->pad_r < s->kw,
                  "conv2d: bad shape x %dx%dx%dx%d, w %dx%dx%dx%d, stride %d, pad t%d l%d b%d r%d", s->n, s->c_in,
                  s->h, s->w, s->c_out, s->c_in, s->kh, s->kw, s->stride, s->pad_t, s->pad_l, s->pad_b, s->pad_r);
    cuda_conv_plan *p = (cuda_conv_plan *)calloc(1, sizeof *p);
    if (!p) return cuda_err(ERR_NOMEM, "conv2d: out of memory for a plan");
    p->s = *s;
    p->tf32 = tf32;
    p->padded = s->pad_t != s->pad_b || s->pad_l != s->pad_r;
    p->hp = p->padded ? s->h + s->pad_t + s->pad_b : s->h;
    p->wp = p->padded ? s->w + s->pad_l + s->pad_r : s->w;
    int rc = cuda_plan_describe(ctx, p);
    if (rc < 0) {
        cuda_plan_free(p);
        return rc;
    }
    p->next = im->plans;
    im->plans = p;
    *out = p;
    return 0;
}

// Is a found algorithm acceptable: ran, fits the workspace cap, never down-converts float32, and
// uses no tensor cores when tf32 is off.
static int cuda_perf_ok(cudnnStatus_t st, size_t mem, cudnnMathType_t math, int tf32) {
    if (st != CUDNN_STATUS_SUCCESS || mem > CUDA_CONV_WS_MAX) return 0;
    if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return 0;
    if (!tf32 && math == CUDNN_TENSOR_OP_MATH) return 0;
    return 1;
}

// Picks from cuDNN's timing-sorted list: the fastest acceptable one, or with `want_det` the
// fastest deterministic acceptable one when there is any. Returns the index or -1.
#define CUDA_PICK(perf, count, tf32, want_det, idx)                                                   \
    do {                                                                                             \
        (idx) = -1;                                                                                  \
        for (int pass = (want_det) ? 0 : 1; pass < 2 && (idx) < 0; pass++)                           \
            for (int i_ = 0; i_ < (count); i_++) {                                                   \
                if (!cuda_perf_ok((perf)[i_].status, (perf)[i_].memory, (perf)[i_].mathType, (tf32))) \
                    continue;                                                                        \
                if (pass == 0 && (perf)[i_].determinism != CUDNN_DETERMINISTIC) continue;            \
                (idx) = i_;                                                                          \
                break;                                                                               \
            }                                                                                        \
    } while (0)

static int cuda_use_find(void) {
    const char *e = getenv("DIFFOOD_CUDNN_FIND");
    return e && *e && strcmp(e, "0") != 0;
}

static cudnnMathType_t cuda_math(const cuda_conv_plan *p, cudnnMathType_t found) {
    return p->tf32 ? found : CUDNN_FMA_MATH;
}

static int cuda_plan_fwd(ops_ctx *ctx, cuda_conv_plan *p) {
    if (p->have_fwd) return 0;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0, idx;
    cudnnHandle_t h = cuda_impl_of(ctx)->cudnn;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, cuda_query_math(p))); // another direction may have changed it
    if (cuda_use_find())
        CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, p->x_desc, p->w_desc, p->conv_desc, p->y_desc,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    else
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x_desc, p->w_desc, p->conv_desc, p->y_desc,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    CUDA_PICK(perf, count, p->tf32, 0, idx);
    if (idx < 0) return cuda_err(ERR_DEVICE, "conv2d_fwd: cuDNN found no usable algorithm for this shape");
    p->fwd_algo = perf[idx].algo;
    p->fwd_math = cuda_math(p, perf[idx].mathType);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->fwd_math));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p->x_desc, p->w_desc, p->conv_desc, p->y_desc, p->fwd_algo,
                                                        &p->fwd_ws));
    p->have_fwd = 1;
    return 0;
}

static int cuda_plan_bwd_data(ops_ctx *ctx, cuda_conv_plan *p) {
    if (p->have_bwd_data) return 0;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0, idx;
    cudnnHandle_t h = cuda_impl_of(ctx)->cudnn;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, cuda_query_math(p))); // another direction may have changed it
    if (cuda_use_find())
        CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(h, p->w_desc, p->y_desc, p->conv_desc, p->x_desc,
                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w_desc, p->y_desc, p->conv_desc, p->x_desc,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    CUDA_PICK(perf, count, p->tf32, 1, idx);
    if (idx < 0) return cuda_err(ERR_DEVICE, "conv2d_bwd_data: cuDNN found no usable algorithm for this shape");
    p->bwd_data_algo = perf[idx].algo;
    p->bwd_data_math = cuda_math(p, perf[idx].mathType);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->bwd_data_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w_desc, p->y_desc, p->conv_desc, p->x_desc,
                                                             p->bwd_data_algo, &p->bwd_data_ws));
    p->have_bwd_data = 1;
    return 0;
}

static int cuda_plan_bwd_filter(ops_ctx *ctx, cuda_conv_plan *p) {
    if (p->have_bwd_filter) return 0;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0, idx;
    cudnnHandle_t h = cuda_impl_of(ctx)->cudnn;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, cuda_query_math(p))); // another direction may have changed it
    if (cuda_use_find())
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(h, p->x_desc, p->y_desc, p->conv_desc, p->w_desc,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x_desc, p->y_desc, p->conv_desc, p->w_desc,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    CUDA_PICK(perf, count, p->tf32, 1, idx);
    if (idx < 0) return cuda_err(ERR_DEVICE, "conv2d_bwd_weight: cuDNN found no usable algorithm for this shape");
    p->bwd_filter_algo = perf[idx].algo;
    p->bwd_filter_math = cuda_math(p, perf[idx].mathType);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->bwd_filter_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x_desc, p->y_desc, p->conv_desc, p->w_desc,
                                                               p->bwd_filter_algo, &p->bwd_filter_ws));
    p->have_bwd_filter = 1;
    return 0;
}

// --- padding and bias kernels -----------------------------------------------------------------

// xp (N, C, HP, WP) = x (N, C, H, W) placed at (pt, pl), zeros around.
__global__ void cuda_pad_k(float *xp, const float *x, size_t total, int h, int w, int hp, int wp, int pt, int pl) {
    CUDA_GRID_STRIDE(i, total) {
        size_t xq = i % (size_t)wp, t = i / (size_t)wp;
        size_t yq = t % (size_t)hp, nc = t / (size_t)hp;
        long yy = (long)yq - pt, xx = (long)xq - pl;
        xp[i] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? x[(nc * h + yy) * w + xx] : 0.f;
    }
}

// dx (N, C, H, W) += the interior of dxp (N, C, HP, WP) at (pt, pl).
__global__ void cuda_unpad_add_k(float *dx, const float *dxp, size_t total, int h, int w, int hp, int wp, int pt,
                                 int pl) {
    CUDA_GRID_STRIDE(i, total) {
        size_t xx = i % (size_t)w, t = i / (size_t)w;
        size_t yy = t % (size_t)h, nc = t / (size_t)h;
        dx[i] += dxp[(nc * hp + yy + pt) * wp + xx + pl];
    }
}

// y (N, C, HW) += b (C)
__global__ void cuda_conv_bias_k(float *y, const float *b, size_t total, int c, size_t hw) {
    CUDA_GRID_STRIDE(i, total) y[i] += b[(i / hw) % (size_t)c];
}

// Workspace: the padded input copy (when padded) followed by `algo_ws` bytes for cuDNN.
static int cuda_conv_ws(ops_ctx *ctx, const cuda_conv_plan *p, size_t algo_ws, float **xp, void **ws) {
    size_t pad_bytes = p->padded ? CUDA_ALIGN((size_t)p->s.n * p->s.c_in * p->hp * p->wp * sizeof(float)) : 0;
    void *base;
    CUDA_TRY(cuda_workspace(ctx, pad_bytes + algo_ws + 256, &base));
    *xp = (float *)base;
    *ws = algo_ws ? (void *)((char *)base + pad_bytes) : NULL;
    return 0;
}

static int cuda_conv_pad(ops_ctx *ctx, const cuda_conv_plan *p, float *xp, const float *x) {
    size_t total = (size_t)p->s.n * p->s.c_in * p->hp * p->wp;
    cuda_pad_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(xp, x, total, p->s.h, p->s.w, p->hp, p->wp,
                                                                          p->s.pad_t, p->s.pad_l);
    CUDA_LAUNCHED("cuda_pad_k");
    return 0;
}

// --- ops --------------------------------------------------------------------------------------

int cuda_conv2d_fwd(ops_ctx *ctx, const ops_conv_shape *s, float *y, const float *x, const float *w, const float *b) {
    cuda_conv_plan *p;
    CUDA_TRY(cuda_plan_get(ctx, s, &p));
    CUDA_TRY(cuda_plan_fwd(ctx, p));
    float *xp;
    void *ws;
    CUDA_TRY(cuda_conv_ws(ctx, p, p->fwd_ws, &xp, &ws));
    const float *xin = x;
    if (p->padded) {
        CUDA_TRY(cuda_conv_pad(ctx, p, xp, x));
        xin = xp;
    }
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->fwd_math));
    CUDNN_CHECK(cudnnConvolutionForward(cuda_impl_of(ctx)->cudnn, &one, p->x_desc, xin, p->w_desc, w, p->conv_desc,
                                        p->fwd_algo, ws, p->fwd_ws, &zero, p->y_desc, y));
    if (b) {
        size_t hw = (size_t)ops_conv_out_h(s) * ops_conv_out_w(s), total = (size_t)s->n * s->c_out * hw;
        cuda_conv_bias_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(y, b, total, s->c_out, hw);
        CUDA_LAUNCHED("cuda_conv_bias_k");
    }
    return 0;
}

int cuda_conv2d_bwd_data(ops_ctx *ctx, const ops_conv_shape *s, float *dx, const float *dy, const float *w) {
    cuda_conv_plan *p;
    CUDA_TRY(cuda_plan_get(ctx, s, &p));
    CUDA_TRY(cuda_plan_bwd_data(ctx, p));
    float *dxp;
    void *ws;
    CUDA_TRY(cuda_conv_ws(ctx, p, p->bwd_data_ws, &dxp, &ws));
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->bwd_data_math));
    CUDNN_CHECK(cudnnConvolutionBackwardData(cuda_impl_of(ctx)->cudnn, &one, p->w_desc, w, p->y_desc, dy,
                                             p->conv_desc, p->bwd_data_algo, ws, p->bwd_data_ws,
                                             p->padded ? &zero : &one, p->x_desc, p->padded ? dxp : dx));
    if (p->padded) {
        size_t total = (size_t)s->n * s->c_in * s->h * s->w;
        cuda_unpad_add_k<<<cuda_blocks(total), CUDA_THREADS, 0, CUDA_STREAM(ctx)>>>(dx, dxp, total, s->h, s->w, p->hp,
                                                                                    p->wp, s->pad_t, s->pad_l);
        CUDA_LAUNCHED("cuda_unpad_add_k");
    }
    return 0;
}

int cuda_conv2d_bwd_weight(ops_ctx *ctx, const ops_conv_shape *s, float *dw, float *db, const float *dy, const float *x) {
    cuda_conv_plan *p;
    CUDA_TRY(cuda_plan_get(ctx, s, &p));
    if (dw) {
        CUDA_TRY(cuda_plan_bwd_filter(ctx, p));
        float *xp;
        void *ws;
        CUDA_TRY(cuda_conv_ws(ctx, p, p->bwd_filter_ws, &xp, &ws));
        const float *xin = x;
        if (p->padded) {
            CUDA_TRY(cuda_conv_pad(ctx, p, xp, x));
            xin = xp;
        }
        const float one = 1.f;
        CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv_desc, p->bwd_filter_math));
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(cuda_impl_of(ctx)->cudnn, &one, p->x_desc, xin, p->y_desc, dy,
                                                   p->conv_desc, p->bwd_filter_algo, ws, p->bwd_filter_ws, &one,
                                                   p->w_desc, dw));
    }
    if (db) CUDA_TRY(cuda_channel_reduce(ctx, db, dy, s->n, s->c_out, ops_conv_out_h(s) * ops_conv_out_w(s), 1));
    return 0;
}
