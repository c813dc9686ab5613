// unet_internal: the UNet's modules (ResnetBlock, AttnBlock, resampling, concatenation) as
// explicit forward/backward pairs, shared by unet.c (building, orchestration) and
// unet_blocks.c (the modules). Not a public header.
//
// Every activation is an offset into the net's activation arena (nn_act), resolved with nn_ptr
// at run time; the gradient of a module's output is registered with nn_dact and zeroed before
// each backward, and the gradients internal to one module live in the shared scratch (nn_scratch,
// zeroed by the module's own backward), so a module's backward ACCUMULATES into the gradient of its
// input (ops.h's rule) and skip connections need no extra bookkeeping.
#ifndef DIFFOOD_UNET_INTERNAL_H
#define DIFFOOD_UNET_INTERNAL_H

#include "common/nn/nn.h"
#include "common/nn/unet.h"

#define UNET_GN_EPS 1e-6f

// An activation and its gradient (offsets into acts).
typedef struct {
    size_t x, dx;
    int c, h, w;
} unet_tensor;

typedef struct {
    size_t g, b; // gamma, beta offsets into params
    int c, groups;
} unet_gn;

typedef struct {
    unet_tensor in, out;
    int cin, cout, hw;
    unet_gn norm1, norm2;
    nn_conv conv1, conv2, nin;
    int has_nin;
    nn_linear temb_proj;
    size_t a1, m1, r1, h1, tp, a2, m2, r2, d2, sk; // activations
    size_t da1, dh1, dtp, da2, dd2;                 // their gradients (scratch offsets)
    size_t scratch_n;                               // floats of scratch the backward zeroes
    uint64_t drop_offset;                           // Philox offset of the last forward's mask
} unet_resblock;

typedef struct {
    unet_tensor in, out;
    int c, l; // channels, positions (h*w)
    unet_gn norm;
    nn_conv q, k, v, proj_out;
    size_t hn, m, r, qa, ka, va, w, p, hh;
    size_t dhn, dq, dk, dv, dw, dp, dhh; // scratch offsets
    size_t scratch_n;
} unet_attn;

typedef struct {
    unet_tensor in, out;
    nn_conv conv;
    size_t u, du; // upsampled input and its gradient (scratch offset) (Upsample only)
    size_t scratch_n;
    int up;       // 1: Upsample (nearest x2, conv pad 1), 0: Downsample (pad r/b, conv stride 2)
} unet_resample;

typedef struct {
    unet_tensor a, b, out;
} unet_concat;

// The run-time state every module reads.
typedef struct {
    nn_net *net;
    int n;           // images in this call
    int drop;        // dropout on in this forward
    float p;         // dropout probability
    philox_key key;  // dropout stream
    uint64_t offset; // next free Philox offset of the whole batch (advances by n_all per image)
    int img0, n_all; // this call computes images img0 .. img0+n-1 of a batch of n_all (replicas)
    size_t stemb, dstemb; // swish(temb) (n, 4ch) and its gradient
} unet_run;

// Registration (parameters in state_dict order; activations afterwards, in forward order).
int unet_gn_add(nn_net *net, unet_gn *gn, const char *prefix, int c, int groups);
int unet_resblock_params(nn_net *net, unet_resblock *rb, const char *prefix, int cin, int cout,
                         int temb_ch, int groups, int h, int w);
void unet_resblock_acts(nn_net *net, unet_resblock *rb, unet_tensor in, int dropout);
int unet_attn_params(nn_net *net, unet_attn *at, const char *prefix, int c, int groups, int h, int w);
void unet_attn_acts(nn_net *net, unet_attn *at, unet_tensor in);
int unet_resample_params(nn_net *net, unet_resample *rs, const char *prefix, int c, int h, int w, int up);
void unet_resample_acts(nn_net *net, unet_resample *rs, unet_tensor in);
void unet_concat_acts(nn_net *net, unet_concat *cc, unet_tensor a, unet_tensor b);
// A new activation with its gradient buffer.
unet_tensor unet_tensor_new(nn_net *net, int c, int h, int w);

// Forward / backward of each module.
int unet_resblock_fwd(unet_run *r, unet_resblock *rb);
int unet_resblock_bwd(unet_run *r, const unet_resblock *rb);
int unet_attn_fwd(unet_run *r, const unet_attn *at);
int unet_attn_bwd(unet_run *r, const unet_attn *at);
int unet_resample_fwd(unet_run *r, const unet_resample *rs);
int unet_resample_bwd(unet_run *r, const unet_resample *rs);
int unet_concat_fwd(unet_run *r, const unet_concat *cc);
int unet_concat_bwd(unet_run *r, const unet_concat *cc);

#endif
