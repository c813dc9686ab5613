// unet_blocks: the UNet's modules as explicit forward/backward pairs (llm.c style), METHOD.md
// section 4: ResnetBlock, AttnBlock, Downsample/Upsample and the skip concatenation.
//
// Why explicit pairs and not a tape: the network is a fixed graph known at build time, so each
// module can register exactly the activations its backward needs, in one arena, once; the
// backward reads top to bottom next to its forward, and the same code runs on every ops backend
// (only ops_* calls touch tensor memory).
#include "common/nn/unet_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

#define P(off) (net->params + (off))
#define G(off) (net->grads + (off))
#define A(off) nn_ptr(net, (off))
#define S(off) nn_sptr(net, (off)) // a module's internal gradient (shared scratch)

// --- registration ---------------------------------------------------------------------------

unet_tensor unet_tensor_new(nn_net *net, int c, int h, int w) {
    size_t per = (size_t)c * h * w;
    unet_tensor t = {.x = nn_act(net, per, 0), .dx = nn_dact(net, per), .c = c, .h = h, .w = w};
    return t;
}

int unet_gn_add(nn_net *net, unet_gn *gn, const char *prefix, int c, int groups) {
    ERR_TRY(nn_add(net, &gn->g, NN_KIND_PARAM, NN_INIT_ONE, 0, 1, &c, "%s.weight", prefix));
    ERR_TRY(nn_add(net, &gn->b, NN_KIND_PARAM, NN_INIT_ZERO, 0, 1, &c, "%s.bias", prefix));
    gn->c = c;
    gn->groups = groups;
    return 0;
}

int unet_resblock_params(nn_net *net, unet_resblock *rb, const char *prefix, int cin, int cout,
                         int temb_ch, int groups, int h, int w) {
    char name[NN_NAME_MAX];
    rb->cin = cin;
    rb->cout = cout;
    rb->hw = h * w;
#define SUB(s) (snprintf(name, sizeof name, "%s.%s", prefix, s), name)
    ERR_TRY(unet_gn_add(net, &rb->norm1, SUB("norm1"), cin, groups));
    ERR_TRY(nn_conv_add(net, &rb->conv1, SUB("conv1"), cin, cout, 3, 1, 1, 1, 1, 1, h, w, 1));
    ERR_TRY(nn_linear_add(net, &rb->temb_proj, SUB("temb_proj"), temb_ch, cout));
    ERR_TRY(unet_gn_add(net, &rb->norm2, SUB("norm2"), cout, groups));
    ERR_TRY(nn_conv_add(net, &rb->conv2, SUB("conv2"), cout, cout, 3, 1, 1, 1, 1, 1, h, w, 1));
    rb->has_nin = cin != cout;
    if (rb->has_nin) ERR_TRY(nn_conv_add(net, &rb->nin, SUB("nin_shortcut"), cin, cout, 1, 1, 0, 0, 0, 0, h, w, 1));
#undef SUB
    return 0;
}

void unet_resblock_acts(nn_net *net, unet_resblock *rb, unet_tensor in, int dropout) {
    size_t ci = (size_t)rb->cin * rb->hw, co = (size_t)rb->cout * rb->hw;
    rb->in = in;
    rb->a1 = nn_act(net, ci, 0);
    rb->m1 = nn_act(net, (size_t)rb->norm1.groups, 0);
    rb->r1 = nn_act(net, (size_t)rb->norm1.groups, 0);
    rb->h1 = nn_act(net, co, 0);
    rb->tp = nn_act(net, (size_t)rb->cout, 0);
    rb->a2 = nn_act(net, co, 0);
    rb->m2 = nn_act(net, (size_t)rb->norm2.groups, 0);
    rb->r2 = nn_act(net, (size_t)rb->norm2.groups, 0);
    rb->d2 = dropout ? nn_act(net, co, 0) : SIZE_MAX;
    rb->sk = rb->has_nin ? nn_act(net, co, 0) : SIZE_MAX;
    rb->out = unet_tensor_new(net, rb->cout, in.h, in.w);
    nn_scratch_begin(net);
    rb->da1 = nn_scratch(net, ci);
    rb->dh1 = nn_scratch(net, co);
    rb->dtp = nn_scratch(net, (size_t)rb->cout);
    rb->da2 = nn_scratch(net, co);
    rb->dd2 = dropout ? nn_scratch(net, co) : SIZE_MAX;
    rb->scratch_n = net->scratch_cur;
}

int unet_attn_params(nn_net *net, unet_attn *at, const char *prefix, int c, int groups, int h, int w) {
    char name[NN_NAME_MAX];
    at->c = c;
    at->l = h * w;
#define SUB(s) (snprintf(name, sizeof name, "%s.%s", prefix, s), name)
    ERR_TRY(unet_gn_add(net, &at->norm, SUB("norm"), c, groups));
    ERR_TRY(nn_conv_add(net, &at->q, SUB("q"), c, c, 1, 1, 0, 0, 0, 0, h, w, 1));
    ERR_TRY(nn_conv_add(net, &at->k, SUB("k"), c, c, 1, 1, 0, 0, 0, 0, h, w, 1));
    ERR_TRY(nn_conv_add(net, &at->v, SUB("v"), c, c, 1, 1, 0, 0, 0, 0, h, w, 1));
    ERR_TRY(nn_conv_add(net, &at->proj_out, SUB("proj_out"), c, c, 1, 1, 0, 0, 0, 0, h, w, 1));
#undef SUB
    return 0;
}

void unet_attn_acts(nn_net *net, unet_attn *at, unet_tensor in) {
    size_t cl = (size_t)at->c * at->l, ll = (size_t)at->l * at->l;
    at->in = in;
    at->hn = nn_act(net, cl, 0);
    at->m = nn_act(net, (size_t)at->norm.groups, 0);
    at->r = nn_act(net, (size_t)at->norm.groups, 0);
    at->qa = nn_act(net, cl, 0);
    at->ka = nn_act(net, cl, 0);
    at->va = nn_act(net, cl, 0);
    at->w = nn_act(net, ll, 0);
    at->p = nn_act(net, ll, 0);
    at->hh = nn_act(net, cl, 0);
    at->out = unet_tensor_new(net, at->c, in.h, in.w);
    nn_scratch_begin(net);
    at->dhn = nn_scratch(net, cl);
    at->dq = nn_scratch(net, cl);
    at->dk = nn_scratch(net, cl);
    at->dv = nn_scratch(net, cl);
    at->dw = nn_scratch(net, ll);
    at->dp = nn_scratch(net, ll);
    at->dhh = nn_scratch(net, cl);
    at->scratch_n = net->scratch_cur;
}

int unet_resample_params(nn_net *net, unet_resample *rs, const char *prefix, int c, int h, int w, int up) {
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.conv", prefix);
    rs->up = up;
    if (up) return nn_conv_add(net, &rs->conv, name, c, c, 3, 1, 1, 1, 1, 1, 2 * h, 2 * w, 1);
    return nn_conv_add(net, &rs->conv, name, c, c, 3, 2, 0, 0, 1, 1, h, w, 1);
}

void unet_resample_acts(nn_net *net, unet_resample *rs, unet_tensor in) {
    rs->in = in;
    if (rs->up) {
        size_t per = (size_t)in.c * 4 * in.h * in.w;
        rs->u = nn_act(net, per, 0);
        rs->out = unet_tensor_new(net, in.c, 2 * in.h, 2 * in.w);
        nn_scratch_begin(net);
        rs->du = nn_scratch(net, per);
        rs->scratch_n = net->scratch_cur;
    } else {
        rs->u = rs->du = SIZE_MAX;
        rs->scratch_n = 0;
        rs->out = unet_tensor_new(net, in.c, ops_conv_out_h(&rs->conv.s), ops_conv_out_w(&rs->conv.s));
    }
}

void unet_concat_acts(nn_net *net, unet_concat *cc, unet_tensor a, unet_tensor b) {
    cc->a = a;
    cc->b = b;
    cc->out = unet_tensor_new(net, a.c + b.c, a.h, a.w);
}

// --- ResnetBlock --------------------------------------------------------------------------------

static int gn_fwd(nn_net *net, const unet_gn *gn, ops_act act, int n, int hw, float *y, size_t m, size_t r,
                  const float *x) {
    return ops_groupnorm_fwd(net->ctx, act, y, A(m), A(r), x, P(gn->g), P(gn->b), n, gn->c, hw, gn->groups,
                             UNET_GN_EPS);
}

static int gn_bwd(nn_net *net, const unet_gn *gn, ops_act act, int n, int hw, float *dx, const float *dy,
                  const float *x, size_t m, size_t r) {
    return ops_groupnorm_bwd(net->ctx, act, dx, G(gn->g), G(gn->b), dy, x, A(m), A(r), P(gn->g), P(gn->b), n,
                             gn->c, hw, gn->groups);
}

int unet_resblock_fwd(unet_run *r, unet_resblock *rb) {
    nn_net *net = r->net;
    int n = r->n, hw = rb->hw;
    size_t co = (size_t)n * rb->cout * hw;
    const float *x = A(rb->in.x);
    float *out = A(rb->out.x);
    ERR_TRY(gn_fwd(net, &rb->norm1, OPS_ACT_SWISH, n, hw, A(rb->a1), rb->m1, rb->r1, x));
    ERR_TRY(nn_conv_fwd(net, &rb->conv1, n, A(rb->h1), A(rb->a1)));
    ERR_TRY(nn_linear_fwd(net, &rb->temb_proj, n, A(rb->tp), A(r->stemb)));
    ERR_TRY(ops_add_channel_bias(net->ctx, A(rb->h1), A(rb->tp), n, rb->cout, hw));
    ERR_TRY(gn_fwd(net, &rb->norm2, OPS_ACT_SWISH, n, hw, A(rb->a2), rb->m2, rb->r2, A(rb->h1)));
    const float *src = A(rb->a2);
    if (r->drop) {
        // the numbers of image img0 + i of the whole batch, whoever computes it (unet.c replicas)
        rb->drop_offset = r->offset + (uint64_t)r->img0 * rb->cout * hw;
        r->offset += (uint64_t)r->n_all * rb->cout * hw;
        ERR_TRY(ops_dropout_fwd(net->ctx, A(rb->d2), A(rb->a2), co, r->p, r->key, rb->drop_offset));
        src = A(rb->d2);
    }
    ERR_TRY(nn_conv_fwd(net, &rb->conv2, n, out, src));
    if (rb->has_nin) {
        ERR_TRY(nn_conv_fwd(net, &rb->nin, n, A(rb->sk), x));
        return ops_add(net->ctx, out, out, A(rb->sk), co);
    }
    return ops_add(net->ctx, out, out, x, co);
}

int unet_resblock_bwd(unet_run *r, const unet_resblock *rb) {
    nn_net *net = r->net;
    int n = r->n, hw = rb->hw;
    size_t co = (size_t)n * rb->cout * hw;
    const float *x = A(rb->in.x), *dout = A(rb->out.dx);
    float *dx = A(rb->in.dx);
    ERR_TRY(nn_scratch_zero(net, rb->scratch_n));
    if (rb->has_nin)
        ERR_TRY(nn_conv_bwd(net, &rb->nin, n, dx, dout, x));
    else
        ERR_TRY(ops_axpy(net->ctx, dx, 1.0f, dout, co));
    if (r->drop) {
        ERR_TRY(nn_conv_bwd(net, &rb->conv2, n, S(rb->dd2), dout, A(rb->d2)));
        ERR_TRY(ops_dropout_bwd(net->ctx, S(rb->da2), S(rb->dd2), co, r->p, r->key, rb->drop_offset));
    } else {
        ERR_TRY(nn_conv_bwd(net, &rb->conv2, n, S(rb->da2), dout, A(rb->a2)));
    }
    ERR_TRY(gn_bwd(net, &rb->norm2, OPS_ACT_SWISH, n, hw, S(rb->dh1), S(rb->da2), A(rb->h1), rb->m2, rb->r2));
    ERR_TRY(ops_channel_sum(net->ctx, S(rb->dtp), S(rb->dh1), n, rb->cout, hw));
    ERR_TRY(nn_linear_bwd(net, &rb->temb_proj, n, A(r->dstemb), S(rb->dtp), A(r->stemb)));
    ERR_TRY(nn_conv_bwd(net, &rb->conv1, n, S(rb->da1), S(rb->dh1), A(rb->a1)));
    return gn_bwd(net, &rb->norm1, OPS_ACT_SWISH, n, hw, dx, S(rb->da1), x, rb->m1, rb->r1);
}

// --- AttnBlock (single head over the h*w positions) ------------------------------------------

int unet_attn_fwd(unet_run *r, const unet_attn *at) {
    nn_net *net = r->net;
    int n = r->n, c = at->c, l = at->l;
    const float *x = A(at->in.x);
    float *out = A(at->out.x);
    ERR_TRY(gn_fwd(net, &at->norm, OPS_ACT_NONE, n, l, A(at->hn), at->m, at->r, x));
    ERR_TRY(nn_conv_fwd(net, &at->q, n, A(at->qa), A(at->hn)));
    ERR_TRY(nn_conv_fwd(net, &at->k, n, A(at->ka), A(at->hn)));
    ERR_TRY(nn_conv_fwd(net, &at->v, n, A(at->va), A(at->hn)));
    // w[i, j] = sum_c q[c, i] k[c, j]; p = softmax_j(w / sqrt(c))
    ERR_TRY(ops_bmm(net->ctx, A(at->w), A(at->qa), A(at->ka), n, l, l, c, 1, 0, 1.0f, 0.0f));
    ERR_TRY(ops_softmax_fwd(net->ctx, A(at->p), A(at->w), n * l, l, 1.0f / sqrtf((float)c)));
    // hh[c, i] = sum_j v[c, j] p[i, j]
    ERR_TRY(ops_bmm(net->ctx, A(at->hh), A(at->va), A(at->p), n, c, l, l, 0, 1, 1.0f, 0.0f));
    ERR_TRY(nn_conv_fwd(net, &at->proj_out, n, out, A(at->hh)));
    return ops_add(net->ctx, out, out, x, (size_t)n * c * l);
}

int unet_attn_bwd(unet_run *r, const unet_attn *at) {
    nn_net *net = r->net;
    int n = r->n, c = at->c, l = at->l;
    const float *x = A(at->in.x), *dout = A(at->out.dx);
    float *dx = A(at->in.dx);
    ERR_TRY(nn_scratch_zero(net, at->scratch_n));
    ERR_TRY(ops_axpy(net->ctx, dx, 1.0f, dout, (size_t)n * c * l));
    ERR_TRY(nn_conv_bwd(net, &at->proj_out, n, S(at->dhh), dout, A(at->hh)));
    // dv[c, j] += sum_i dhh[c, i] p[i, j];  dp[i, j] += sum_c dhh[c, i] v[c, j]
    ERR_TRY(ops_bmm(net->ctx, S(at->dv), S(at->dhh), A(at->p), n, c, l, l, 0, 0, 1.0f, 1.0f));
    ERR_TRY(ops_bmm(net->ctx, S(at->dp), S(at->dhh), A(at->va), n, l, l, c, 1, 0, 1.0f, 1.0f));
    ERR_TRY(ops_softmax_bwd(net->ctx, S(at->dw), S(at->dp), A(at->p), n * l, l, 1.0f / sqrtf((float)c)));
    // dq[c, i] += sum_j k[c, j] dw[i, j];  dk[c, j] += sum_i q[c, i] dw[i, j]
    ERR_TRY(ops_bmm(net->ctx, S(at->dq), A(at->ka), S(at->dw), n, c, l, l, 0, 1, 1.0f, 1.0f));
    ERR_TRY(ops_bmm(net->ctx, S(at->dk), A(at->qa), S(at->dw), n, c, l, l, 0, 0, 1.0f, 1.0f));
    ERR_TRY(nn_conv_bwd(net, &at->q, n, S(at->dhn), S(at->dq), A(at->hn)));
    ERR_TRY(nn_conv_bwd(net, &at->k, n, S(at->dhn), S(at->dk), A(at->hn)));
    ERR_TRY(nn_conv_bwd(net, &at->v, n, S(at->dhn), S(at->dv), A(at->hn)));
    return gn_bwd(net, &at->norm, OPS_ACT_NONE, n, l, dx, S(at->dhn), x, at->m, at->r);
}

// --- Downsample / Upsample, skip concatenation -------------------------------------------------

int unet_resample_fwd(unet_run *r, const unet_resample *rs) {
    nn_net *net = r->net;
    if (!rs->up) return nn_conv_fwd(net, &rs->conv, r->n, A(rs->out.x), A(rs->in.x));
    ERR_TRY(ops_upsample2x_fwd(net->ctx, A(rs->u), A(rs->in.x), r->n, rs->in.c, rs->in.h, rs->in.w));
    return nn_conv_fwd(net, &rs->conv, r->n, A(rs->out.x), A(rs->u));
}

int unet_resample_bwd(unet_run *r, const unet_resample *rs) {
    nn_net *net = r->net;
    if (!rs->up) return nn_conv_bwd(net, &rs->conv, r->n, A(rs->in.dx), A(rs->out.dx), A(rs->in.x));
    ERR_TRY(nn_scratch_zero(net, rs->scratch_n));
    ERR_TRY(nn_conv_bwd(net, &rs->conv, r->n, S(rs->du), A(rs->out.dx), A(rs->u)));
    return ops_upsample2x_bwd(net->ctx, A(rs->in.dx), S(rs->du), r->n, rs->in.c, rs->in.h, rs->in.w);
}

int unet_concat_fwd(unet_run *r, const unet_concat *cc) {
    nn_net *net = r->net;
    return ops_concat_fwd(net->ctx, A(cc->out.x), A(cc->a.x), A(cc->b.x), r->n, cc->a.c, cc->b.c, cc->a.h * cc->a.w);
}

int unet_concat_bwd(unet_run *r, const unet_concat *cc) {
    nn_net *net = r->net;
    return ops_concat_bwd(net->ctx, A(cc->a.dx), A(cc->b.dx), A(cc->out.dx), r->n, cc->a.c, cc->b.c,
                          cc->a.h * cc->a.w);
}
