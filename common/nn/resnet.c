// resnet: ResNet-18 for 32x32 inputs (METHOD.md section 5) as explicit forward/backward pairs
// per module (llm.c style, as the UNet: a fixed graph, every saved activation registered once in
// the arena at build time, backward next to forward). Only ops_* calls touch tensor memory.
//
// Eval forwards on a CPU context with more than one thread run on replicas (nn_rep.h), one per
// thread, each on its slice of the batch: with running statistics no image depends on another,
// and the outputs are the same bits as one model's. Training forwards (batch statistics) and
// backwards run on the model itself.
#include "common/nn/resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/nn_rep.h"

typedef struct {
    size_t w, b, rm, rv, nbt; // gamma, beta (params); running mean/var, num_batches_tracked (buffers)
    size_t mean, rstd;        // batch statistics of the last training forward (acts, C each)
    int c;
} rn_bn;

typedef struct {
    int cin, planes, hw_in, hw_out, has_sc;
    nn_conv conv1, conv2, sc;
    rn_bn bn1, bn2, bns;
    size_t x, dx;                        // input and its gradient (the previous module's)
    size_t c1, a1, c2, out, cs, bs;      // activations
    size_t dout;                         // gradient of the output (the next module accumulates)
    size_t dc1, da1, dc2, dsum, dcs;     // internal gradients (shared scratch offsets)
    size_t scratch_n;
} rn_block;

#define RN_BLOCKS 8

struct resnet_model {
    nn_net net;
    resnet_config cfg;
    nn_conv conv1;
    rn_bn bn1;
    rn_block blocks[RN_BLOCKS];
    nn_linear fc;
    size_t xin, c0, a0, dc0, da0, feat, dfeat, logits, one;
    int hw0;
    int last_n, last_train;
    nn_rep rp;           // eval replicas (CPU, threads > 1)
    resnet_model **rep;  // rp.n models on rp's contexts, reading this model's params and buffers
};

#define P(off) (net->params + (off))
#define G(off) (net->grads + (off))
#define A(off) nn_ptr(net, (off))
#define S(off) nn_sptr(net, (off))

// --- configuration --------------------------------------------------------------------------

resnet_config resnet_config_default(void) {
    resnet_config c = {.width = 64, .in_channels = 3, .num_classes = 10, .image_size = 32, .bn_momentum = 0.1f,
                       .bn_eps = 1e-5f};
    return c;
}

int resnet_config_check(const resnet_config *c) {
    ERR_IF(c->width < 1, ERR_CONFIG, "resnet.width = %d: must be positive", c->width);
    ERR_IF(c->in_channels < 1, ERR_CONFIG, "resnet.in_channels = %d: must be positive", c->in_channels);
    ERR_IF(c->num_classes < 1, ERR_CONFIG, "resnet.num_classes = %d: must be positive", c->num_classes);
    ERR_IF(c->image_size < 8, ERR_CONFIG, "resnet image size %d: at least 8 (three stride-2 stages)", c->image_size);
    ERR_IF(!(c->bn_momentum >= 0.0f && c->bn_momentum <= 1.0f) || !(c->bn_eps > 0.0f), ERR_CONFIG,
           "resnet BatchNorm momentum %g / eps %g out of range", (double)c->bn_momentum, (double)c->bn_eps);
    return 0;
}

const resnet_config *resnet_cfg(const resnet_model *m) { return &m->cfg; }
nn_net *resnet_net(resnet_model *m) { return &m->net; }

// --- building ---------------------------------------------------------------------------------

static int bn_add(nn_net *net, rn_bn *bn, const char *prefix, int c) {
    ERR_TRY(nn_add(net, &bn->w, NN_KIND_PARAM, NN_INIT_ONE, 0, 1, &c, "%s.weight", prefix));
    ERR_TRY(nn_add(net, &bn->b, NN_KIND_PARAM, NN_INIT_ZERO, 0, 1, &c, "%s.bias", prefix));
    ERR_TRY(nn_add(net, &bn->rm, NN_KIND_BUFFER, NN_INIT_ZERO, 0, 1, &c, "%s.running_mean", prefix));
    ERR_TRY(nn_add(net, &bn->rv, NN_KIND_BUFFER, NN_INIT_ONE, 0, 1, &c, "%s.running_var", prefix));
    ERR_TRY(nn_add(net, &bn->nbt, NN_KIND_BUFFER, NN_INIT_ZERO, 0, 0, NULL, "%s.num_batches_tracked", prefix));
    bn->c = c;
    bn->mean = nn_act(net, 0, (size_t)c);
    bn->rstd = nn_act(net, 0, (size_t)c);
    return 0;
}

static int block_build(nn_net *net, rn_block *b, int layer, int idx, int cin, int planes, int stride, int h_in) {
    char name[NN_NAME_MAX];
    int h_out = (h_in + 2 - 3) / stride + 1;
    b->cin = cin;
    b->planes = planes;
    b->hw_in = h_in * h_in;
    b->hw_out = h_out * h_out;
#define SUB(s) (snprintf(name, sizeof name, "layer%d.%d.%s", layer, idx, s), name)
    ERR_TRY(nn_conv_add(net, &b->conv1, SUB("conv1"), cin, planes, 3, stride, 1, 1, 1, 1, h_in, h_in, 0));
    ERR_TRY(bn_add(net, &b->bn1, SUB("bn1"), planes));
    ERR_TRY(nn_conv_add(net, &b->conv2, SUB("conv2"), planes, planes, 3, 1, 1, 1, 1, 1, h_out, h_out, 0));
    ERR_TRY(bn_add(net, &b->bn2, SUB("bn2"), planes));
    b->has_sc = stride != 1 || cin != planes;
    if (b->has_sc) {
        ERR_TRY(nn_conv_add(net, &b->sc, SUB("shortcut.0"), cin, planes, 1, stride, 0, 0, 0, 0, h_in, h_in, 0));
        ERR_TRY(bn_add(net, &b->bns, SUB("shortcut.1"), planes));
    }
#undef SUB
    size_t po = (size_t)planes * b->hw_out;
    b->c1 = nn_act(net, po, 0);
    b->a1 = nn_act(net, po, 0);
    b->c2 = nn_act(net, po, 0);
    b->out = nn_act(net, po, 0);
    b->dout = nn_dact(net, po);
    b->cs = b->bs = b->dcs = SIZE_MAX;
    if (b->has_sc) {
        b->cs = nn_act(net, po, 0);
        b->bs = nn_act(net, po, 0);
    }
    nn_scratch_begin(net);
    b->dc1 = nn_scratch(net, po);
    b->da1 = nn_scratch(net, po);
    b->dc2 = nn_scratch(net, po);
    b->dsum = nn_scratch(net, po);
    if (b->has_sc) b->dcs = nn_scratch(net, po);
    b->scratch_n = net->scratch_cur;
    return 0;
}

static int resnet_build(resnet_model *m) {
    nn_net *net = &m->net;
    const resnet_config *c = &m->cfg;
    int w = c->width, S = c->image_size;
    m->hw0 = S * S;
    m->xin = nn_act(net, (size_t)c->in_channels * S * S, 0);
    m->one = nn_act(net, 0, 1);
    ERR_TRY(nn_conv_add(net, &m->conv1, "conv1", c->in_channels, w, 3, 1, 1, 1, 1, 1, S, S, 0));
    ERR_TRY(bn_add(net, &m->bn1, "bn1", w));
    m->c0 = nn_act(net, (size_t)w * S * S, 0);
    m->a0 = nn_act(net, (size_t)w * S * S, 0);
    m->dc0 = nn_dact(net, (size_t)w * S * S);
    m->da0 = nn_dact(net, (size_t)w * S * S);
    size_t x = m->a0, dx = m->da0;
    int cin = w, h = S;
    for (int i = 0; i < RN_BLOCKS; i++) {
        int layer = i / 2 + 1, idx = i % 2, planes = w << (layer - 1);
        int stride = (idx == 0 && layer > 1) ? 2 : 1;
        rn_block *b = &m->blocks[i];
        ERR_TRY(block_build(net, b, layer, idx, cin, planes, stride, h));
        b->x = x;
        b->dx = dx;
        x = b->out;
        dx = b->dout;
        cin = planes;
        h = (h + 2 - 3) / stride + 1;
    }
    m->feat = nn_act(net, (size_t)8 * w, 0);
    m->dfeat = nn_dact(net, (size_t)8 * w);
    m->logits = nn_act(net, (size_t)c->num_classes, 0);
    return nn_linear_add(net, &m->fc, "fc", 8 * w, c->num_classes);
}

void resnet_destroy(resnet_model *m) {
    if (!m) return;
    for (int r = 0; m->rep && r < m->rp.n; r++) resnet_destroy(m->rep[r]); // before their contexts and params
    free(m->rep);
    nn_rep_free(&m->rp);
    nn_net_free(&m->net);
    free(m);
}

static int resnet_create_one(resnet_model **out, ops_ctx *ctx, const resnet_config *cfg, int max_batch) {
    *out = NULL;
    ERR_TRY(resnet_config_check(cfg));
    ERR_IF(max_batch < 1, ERR_USAGE, "resnet: max_batch = %d must be at least 1", max_batch);
    int rc = 0;
    resnet_model *m = calloc(1, sizeof *m);
    ERR_IF(!m, ERR_NOMEM, "out of memory creating the ResNet");
    nn_net_init(&m->net, ctx, max_batch);
    m->cfg = *cfg;
    ERR_GOTO(rc, resnet_build(m));
    ERR_GOTO(rc, nn_net_alloc(&m->net));
    ERR_GOTO(rc, ops_fill(ctx, nn_ptr(&m->net, m->one), 1.0f, 1));
    // running variances start at 1 (the rest of the arena is zero)
    for (int i = 0; i < m->net.n_entries; i++) {
        const nn_entry *e = &m->net.entries[i];
        if (e->kind == NN_KIND_BUFFER && e->init == NN_INIT_ONE)
            ERR_GOTO(rc, ops_fill(ctx, nn_entry_data(&m->net, e), 1.0f, e->numel));
    }
    *out = m;
    return 0;
fail:
    resnet_destroy(m);
    return err_prefix(rc, "resnet: ");
}

int resnet_create(resnet_model **out, ops_ctx *ctx, const resnet_config *cfg, int max_batch) {
    resnet_model *m = NULL;
    ERR_TRY(resnet_create_one(&m, ctx, cfg, max_batch));
    int rc = nn_rep_init(&m->rp, ctx, max_batch);
    if (rc == 0 && m->rp.n) {
        m->rep = calloc((size_t)m->rp.n, sizeof *m->rep);
        if (!m->rep) rc = err_set(ERR_NOMEM, "out of memory creating the ResNet's replicas");
        for (int r = 0; rc == 0 && r < m->rp.n; r++) {
            rc = resnet_create_one(&m->rep[r], m->rp.ctx[r], cfg, nn_rep_per(&m->rp, max_batch));
            if (rc == 0) nn_net_share_params(&m->rep[r]->net, &m->net);
        }
    }
    if (rc < 0) {
        resnet_destroy(m);
        return err_prefix(rc, "resnet: ");
    }
    *out = m;
    return 0;
}

// --- forward / backward -------------------------------------------------------------------------

static int bn_fwd(resnet_model *m, const rn_bn *bn, ops_act act, int n, int hw, int train, float *y, const float *x) {
    nn_net *net = &m->net;
    if (!train)
        return ops_batchnorm_fwd_eval(net->ctx, act, y, x, P(bn->w), P(bn->b), net->buffers + bn->rm,
                                      net->buffers + bn->rv, n, bn->c, hw, m->cfg.bn_eps);
    ERR_TRY(ops_batchnorm_fwd_train(net->ctx, act, y, A(bn->mean), A(bn->rstd), net->buffers + bn->rm,
                                    net->buffers + bn->rv, x, P(bn->w), P(bn->b), n, bn->c, hw, m->cfg.bn_momentum,
                                    m->cfg.bn_eps));
    return ops_axpy(net->ctx, net->buffers + bn->nbt, 1.0f, A(m->one), 1);
}

static int bn_bwd(nn_net *net, const rn_bn *bn, ops_act act, int n, int hw, float *dx, const float *dy,
                  const float *x) {
    return ops_batchnorm_bwd(net->ctx, act, dx, G(bn->w), G(bn->b), dy, x, A(bn->mean), A(bn->rstd), P(bn->w),
                             P(bn->b), n, bn->c, hw);
}

static int block_fwd(resnet_model *m, const rn_block *b, int n, int train) {
    nn_net *net = &m->net;
    const float *x = A(b->x);
    float *out = A(b->out);
    size_t no = (size_t)n * b->planes * b->hw_out;
    ERR_TRY(nn_conv_fwd(net, &b->conv1, n, A(b->c1), x));
    ERR_TRY(bn_fwd(m, &b->bn1, OPS_ACT_RELU, n, b->hw_out, train, A(b->a1), A(b->c1)));
    ERR_TRY(nn_conv_fwd(net, &b->conv2, n, A(b->c2), A(b->a1)));
    ERR_TRY(bn_fwd(m, &b->bn2, OPS_ACT_NONE, n, b->hw_out, train, out, A(b->c2)));
    if (b->has_sc) {
        ERR_TRY(nn_conv_fwd(net, &b->sc, n, A(b->cs), x));
        ERR_TRY(bn_fwd(m, &b->bns, OPS_ACT_NONE, n, b->hw_out, train, A(b->bs), A(b->cs)));
        ERR_TRY(ops_add(net->ctx, out, out, A(b->bs), no));
    } else {
        ERR_TRY(ops_add(net->ctx, out, out, x, no));
    }
    return ops_act_fwd(net->ctx, OPS_ACT_RELU, out, out, no);
}

static int block_bwd(nn_net *net, const rn_block *b, int n) {
    const float *x = A(b->x);
    float *dx = A(b->dx);
    size_t no = (size_t)n * b->planes * b->hw_out;
    ERR_TRY(nn_scratch_zero(net, b->scratch_n));
    // relu'(sum) = relu'(out): the output is the relu of the sum
    ERR_TRY(ops_act_bwd(net->ctx, OPS_ACT_RELU, S(b->dsum), A(b->dout), A(b->out), no));
    ERR_TRY(bn_bwd(net, &b->bn2, OPS_ACT_NONE, n, b->hw_out, S(b->dc2), S(b->dsum), A(b->c2)));
    ERR_TRY(nn_conv_bwd(net, &b->conv2, n, S(b->da1), S(b->dc2), A(b->a1)));
    ERR_TRY(bn_bwd(net, &b->bn1, OPS_ACT_RELU, n, b->hw_out, S(b->dc1), S(b->da1), A(b->c1)));
    ERR_TRY(nn_conv_bwd(net, &b->conv1, n, dx, S(b->dc1), x));
    if (!b->has_sc) return ops_axpy(net->ctx, dx, 1.0f, S(b->dsum), no);
    ERR_TRY(bn_bwd(net, &b->bns, OPS_ACT_NONE, n, b->hw_out, S(b->dcs), S(b->dsum), A(b->cs)));
    return nn_conv_bwd(net, &b->sc, n, dx, S(b->dcs), x);
}

static int resnet_forward_one(resnet_model *m, const float *x, int n, int train, const float **logits,
                              const float **feature) {
    nn_net *net = &m->net;
    const resnet_config *c = &m->cfg;
    ERR_IF(n < 1 || n > net->max_batch, ERR_USAGE, "resnet_forward: batch %d outside 1..%d (the model's max batch)",
           n, net->max_batch);
    m->last_n = 0;
    ERR_TRY(ops_copy(net->ctx, A(m->xin), x, (size_t)n * c->in_channels * m->hw0 * sizeof(float)));
    ERR_TRY(nn_conv_fwd(net, &m->conv1, n, A(m->c0), A(m->xin)));
    ERR_TRY(bn_fwd(m, &m->bn1, OPS_ACT_RELU, n, m->hw0, train, A(m->a0), A(m->c0)));
    for (int i = 0; i < RN_BLOCKS; i++) ERR_TRY(block_fwd(m, &m->blocks[i], n, train));
    const rn_block *last = &m->blocks[RN_BLOCKS - 1];
    ERR_TRY(ops_avgpool_fwd(net->ctx, A(m->feat), A(last->out), n, last->planes, last->hw_out));
    ERR_TRY(nn_linear_fwd(net, &m->fc, n, A(m->logits), A(m->feat)));
    if (logits) *logits = A(m->logits);
    if (feature) *feature = A(m->feat);
    m->last_n = n;
    m->last_train = train != 0;
    return 0;
}

// An eval forward computed slice by slice on the replicas; each copies its logits and features
// into the model's arena, where the caller reads them.
typedef struct {
    resnet_model *m;
    const float *x;
} resnet_slices;

static int resnet_eval_slice(void *arg, int r, int i0, int cnt) {
    resnet_slices *a = arg;
    resnet_model *m = a->m, *rm = m->rep[r];
    const resnet_config *c = &m->cfg;
    const rn_block *last = &m->blocks[RN_BLOCKS - 1];
    const float *lg = NULL, *ft = NULL;
    ERR_TRY(resnet_forward_one(rm, a->x + (size_t)i0 * c->in_channels * m->hw0, cnt, 0, &lg, &ft));
    nn_net *net = &m->net;
    ERR_TRY(ops_copy(rm->net.ctx, A(m->logits) + (size_t)i0 * c->num_classes, lg,
                     (size_t)cnt * c->num_classes * sizeof(float)));
    return ops_copy(rm->net.ctx, A(m->feat) + (size_t)i0 * last->planes, ft, (size_t)cnt * last->planes * sizeof(float));
}

int resnet_forward(resnet_model *m, const float *x, int n, int train, const float **logits, const float **feature) {
    nn_net *net = &m->net;
    if (train || !m->rp.n || n < 2 || net->prof) return resnet_forward_one(m, x, n, train, logits, feature);
    ERR_IF(n < 1 || n > net->max_batch, ERR_USAGE, "resnet_forward: batch %d outside 1..%d (the model's max batch)",
           n, net->max_batch);
    m->last_n = 0;
    resnet_slices a = {m, x};
    ERR_TRY(nn_rep_run(m->rp.n < n ? m->rp.n : n, n, resnet_eval_slice, &a));
    if (logits) *logits = A(m->logits);
    if (feature) *feature = A(m->feat);
    m->last_n = n;
    m->last_train = 0;
    return 0;
}

int resnet_backward(resnet_model *m, float *dx, const float *dlogits, int n) {
    nn_net *net = &m->net;
    ERR_IF(m->last_n == 0 || !m->last_train, ERR_USAGE, "resnet_backward: needs a successful training forward first");
    ERR_IF(n != m->last_n, ERR_USAGE, "resnet_backward: batch %d differs from the forward's %d", n, m->last_n);
    ERR_TRY(nn_zero_dacts(net, n));
    const rn_block *last = &m->blocks[RN_BLOCKS - 1];
    ERR_TRY(nn_linear_bwd(net, &m->fc, n, A(m->dfeat), dlogits, A(m->feat)));
    ERR_TRY(ops_avgpool_bwd(net->ctx, A(last->dout), A(m->dfeat), n, last->planes, last->hw_out));
    for (int i = RN_BLOCKS - 1; i >= 0; i--) ERR_TRY(block_bwd(net, &m->blocks[i], n));
    ERR_TRY(bn_bwd(net, &m->bn1, OPS_ACT_RELU, n, m->hw0, A(m->dc0), A(m->da0), A(m->c0)));
    return nn_conv_bwd(net, &m->conv1, n, dx, A(m->dc0), A(m->xin));
}
