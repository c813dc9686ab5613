// resnet: ResNet-18 for 32x32 inputs (METHOD.md section 5) as explicit forward/backward pairs
// per module (llm.c style, as the UNet: a fixed graph, every saved activation registered once in
// the arena at build time, backward next to forward). Only ops_* calls touch tensor memory.
//
// On a CPU context with more than one thread, forwards and backwards run on replicas (nn_rep.h),
// one per thread, each on its slice of the batch, in one parallel region:
// * eval forwards: with running statistics no image depends on another, and the outputs are the
//   same bits as one model's;
// * training forwards and backwards (while each replica has enough images for the parameters,
//   RN_REP_PARAMS_PER_IMAGE): sync BatchNorm. Each replica computes its slice's partial
//   statistics (ops_batchnorm_stats / _bwd_sums) into the owner's `parts` buffer, waits at the
//   replicas' barrier, merges all slices in replica order and normalises its own slice. Replica 0
//   alone updates the running statistics and adds dgamma, dbeta; parameter gradients are summed
//   in replica order afterwards. Deterministic for a fixed thread count; the batch statistics
//   equal one model's up to rounding (sums split at other places).
#include "common/nn/resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/nn_rep.h"

typedef struct {
    size_t w, b, rm, rv, nbt; // gamma, beta (params); running mean/var, num_batches_tracked (buffers)
    size_t mean, rstd;        // batch statistics of the last training forward (acts, C each)
    size_t var, tot;          // sync BatchNorm: the merged variance (C), the backward's sums (2C)
    size_t part;              // sync BatchNorm: this layer's (R, 2, C) block of rn_sync.parts / R
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
#define RN_BNS (1 + 3 * RN_BLOCKS) // at most: the stem's, two per block, one per shortcut

// Sync BatchNorm across the training replicas: owned by the model that owns the replicas, read
// by them (resnet.c's top comment).
typedef struct {
    nn_rep_sync bar;
    float *parts; // every BatchNorm's (R, 2, C) partial sums, on the owner's context
    int R;        // replicas of the current run
    int *imgs;    // images of each replica in the current run (rp.n entries)
} rn_sync;

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
    int last_rep;        // replicas that computed the last training forward (0: this model)
    nn_rep rp;           // replicas (CPU, threads > 1)
    resnet_model **rep;  // rp.n models on rp's contexts, reading this model's params and buffers
    rn_sync *sync_own;   // the replicas' sync BatchNorm state (owner only)
    rn_sync *sync;       // replicas: the owner's sync_own; NULL on the owner
    int rep_index;       // replicas: r
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
    bn->var = nn_act(net, 0, (size_t)c);
    bn->tot = nn_act(net, 0, (size_t)2 * c);
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

// The model's BatchNorms in a fixed order; their count.
static int resnet_bns(resnet_model *m, rn_bn **out) {
    int k = 0;
    out[k++] = &m->bn1;
    for (int i = 0; i < RN_BLOCKS; i++) {
        rn_block *b = &m->blocks[i];
        out[k++] = &b->bn1;
        out[k++] = &b->bn2;
        if (b->has_sc) out[k++] = &b->bns;
    }
    return k;
}

// Places each BatchNorm's block in rn_sync.parts (the same on the owner and every replica);
// returns the floats per replica.
static size_t resnet_sync_layout(resnet_model *m) {
    rn_bn *bns[RN_BNS];
    int k = resnet_bns(m, bns);
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        bns[i]->part = off;
        off += (size_t)2 * bns[i]->c;
    }
    return off;
}

static void rn_sync_free(rn_sync *s, ops_ctx *ctx) {
    if (!s) return;
    if (s->parts) ops_free(ctx, s->parts);
    nn_rep_sync_free(&s->bar);
    free(s->imgs);
    free(s);
}

static int rn_sync_create(resnet_model *m) {
    rn_sync *s = calloc(1, sizeof *s);
    ERR_IF(!s, ERR_NOMEM, "out of memory creating the sync BatchNorm state");
    int rc = nn_rep_sync_init(&s->bar);
    if (rc < 0) {
        free(s);
        return rc;
    }
    m->sync_own = s;
    s->imgs = calloc((size_t)m->rp.n, sizeof *s->imgs);
    ERR_IF(!s->imgs, ERR_NOMEM, "out of memory creating the sync BatchNorm state");
    size_t per = resnet_sync_layout(m);
    ERR_TRY(ops_alloc(m->net.ctx, (void **)&s->parts, per * m->rp.n * sizeof(float)));
    for (int r = 0; r < m->rp.n; r++) {
        resnet_sync_layout(m->rep[r]);
        m->rep[r]->sync = s;
        m->rep[r]->rep_index = r;
    }
    return 0;
}

void resnet_destroy(resnet_model *m) {
    if (!m) return;
    for (int r = 0; m->rep && r < m->rp.n; r++) resnet_destroy(m->rep[r]); // before their contexts and params
    free(m->rep);
    rn_sync_free(m->sync_own, m->net.ctx);
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
        if (rc == 0) rc = rn_sync_create(m);
    }
    if (rc < 0) {
        resnet_destroy(m);
        return err_prefix(rc, "resnet: ");
    }
    *out = m;
    return 0;
}

// --- forward / backward -------------------------------------------------------------------------

// Values per channel of each replica's slice of a layer with hw values per image; their sum.
static int bn_counts(const rn_sync *s, int hw, int *counts) {
    int total = 0;
    for (int r = 0; r < s->R; r++) total += counts[r] = s->imgs[r] * hw;
    return total;
}

// Training BatchNorm on a replica: partial statistics, barrier, merge, normalise its slice.
static int bn_fwd_sync(resnet_model *m, const rn_bn *bn, ops_act act, int n, int hw, float *y, const float *x) {
    nn_net *net = &m->net;
    rn_sync *s = m->sync;
    int lead = m->rep_index == 0, counts[s->R];
    float *parts = s->parts + bn->part * s->R;
    bn_counts(s, hw, counts);
    ERR_TRY(ops_batchnorm_stats(net->ctx, parts + (size_t)m->rep_index * 2 * bn->c, x, n, bn->c, hw));
    ERR_TRY(nn_rep_sync_wait(&s->bar));
    ERR_TRY(ops_batchnorm_stats_merge(net->ctx, A(bn->mean), A(bn->var), A(bn->rstd), lead ? net->buffers + bn->rm : NULL,
                                      lead ? net->buffers + bn->rv : NULL, parts, counts, s->R, bn->c,
                                      m->cfg.bn_momentum, m->cfg.bn_eps));
    ERR_TRY(ops_batchnorm_fwd_eval(net->ctx, act, y, x, P(bn->w), P(bn->b), A(bn->mean), A(bn->var), n, bn->c, hw,
                                   m->cfg.bn_eps));
    return lead ? ops_axpy(net->ctx, net->buffers + bn->nbt, 1.0f, A(m->one), 1) : 0;
}

// Its backward: partial sums, barrier, the whole batch's sums (replica order), dx of the slice;
// replica 0 adds dgamma and dbeta.
static int bn_bwd_sync(resnet_model *m, const rn_bn *bn, ops_act act, int n, int hw, float *dx, const float *dy,
                       const float *x) {
    nn_net *net = &m->net;
    rn_sync *s = m->sync;
    int counts[s->R], c = bn->c;
    int total = bn_counts(s, hw, counts);
    float *parts = s->parts + bn->part * s->R, *tot = A(bn->tot);
    ERR_TRY(ops_batchnorm_bwd_sums(net->ctx, act, parts + (size_t)m->rep_index * 2 * c, dy, x, A(bn->mean), A(bn->rstd),
                                   P(bn->w), P(bn->b), n, c, hw));
    ERR_TRY(nn_rep_sync_wait(&s->bar));
    ERR_TRY(ops_copy(net->ctx, tot, parts, (size_t)2 * c * sizeof(float)));
    for (int r = 1; r < s->R; r++) ERR_TRY(ops_add(net->ctx, tot, tot, parts + (size_t)r * 2 * c, (size_t)2 * c));
    if (m->rep_index == 0) {
        ERR_TRY(ops_add(net->ctx, G(bn->b), G(bn->b), tot, (size_t)c));
        ERR_TRY(ops_add(net->ctx, G(bn->w), G(bn->w), tot + c, (size_t)c));
    }
    return ops_batchnorm_bwd_dx(net->ctx, act, dx, dy, x, A(bn->mean), A(bn->rstd), P(bn->w), P(bn->b), tot, total, n,
                                c, hw);
}

static int bn_fwd(resnet_model *m, const rn_bn *bn, ops_act act, int n, int hw, int train, float *y, const float *x) {
    nn_net *net = &m->net;
    if (train && m->sync) return bn_fwd_sync(m, bn, act, n, hw, y, x);
    if (!train)
        return ops_batchnorm_fwd_eval(net->ctx, act, y, x, P(bn->w), P(bn->b), net->buffers + bn->rm,
                                      net->buffers + bn->rv, n, bn->c, hw, m->cfg.bn_eps);
    ERR_TRY(ops_batchnorm_fwd_train(net->ctx, act, y, A(bn->mean), A(bn->rstd), net->buffers + bn->rm,
                                    net->buffers + bn->rv, x, P(bn->w), P(bn->b), n, bn->c, hw, m->cfg.bn_momentum,
                                    m->cfg.bn_eps));
    return ops_axpy(net->ctx, net->buffers + bn->nbt, 1.0f, A(m->one), 1);
}

static int bn_bwd(resnet_model *m, const rn_bn *bn, ops_act act, int n, int hw, float *dx, const float *dy,
                  const float *x) {
    if (m->sync) return bn_bwd_sync(m, bn, act, n, hw, dx, dy, x);
    nn_net *net = &m->net;
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

static int block_bwd(resnet_model *m, const rn_block *b, int n) {
    nn_net *net = &m->net;
    const float *x = A(b->x);
    float *dx = A(b->dx);
    size_t no = (size_t)n * b->planes * b->hw_out;
    ERR_TRY(nn_scratch_zero(net, b->scratch_n));
    // relu'(sum) = relu'(out): the output is the relu of the sum
    ERR_TRY(ops_act_bwd(net->ctx, OPS_ACT_RELU, S(b->dsum), A(b->dout), A(b->out), no));
    ERR_TRY(bn_bwd(m, &b->bn2, OPS_ACT_NONE, n, b->hw_out, S(b->dc2), S(b->dsum), A(b->c2)));
    ERR_TRY(nn_conv_bwd(net, &b->conv2, n, S(b->da1), S(b->dc2), A(b->a1)));
    ERR_TRY(bn_bwd(m, &b->bn1, OPS_ACT_RELU, n, b->hw_out, S(b->dc1), S(b->da1), A(b->c1)));
    ERR_TRY(nn_conv_bwd(net, &b->conv1, n, dx, S(b->dc1), x));
    if (!b->has_sc) return ops_axpy(net->ctx, dx, 1.0f, S(b->dsum), no);
    ERR_TRY(bn_bwd(m, &b->bns, OPS_ACT_NONE, n, b->hw_out, S(b->dcs), S(b->dsum), A(b->cs)));
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

// A forward or backward computed slice by slice on the replicas. A forward's replicas copy
// their logits and features into the model's arena, where the caller reads them.
typedef struct {
    resnet_model *m;
    const float *x, *dlogits;
    float *dx;
    int train;
} resnet_slices;

static int resnet_forward_slice(void *arg, int r, int i0, int cnt) {
    resnet_slices *a = arg;
    resnet_model *m = a->m, *rm = m->rep[r];
    const resnet_config *c = &m->cfg;
    const rn_block *last = &m->blocks[RN_BLOCKS - 1];
    const float *lg = NULL, *ft = NULL;
    ERR_TRY(resnet_forward_one(rm, a->x + (size_t)i0 * c->in_channels * m->hw0, cnt, a->train, &lg, &ft));
    nn_net *net = &m->net;
    ERR_TRY(ops_copy(rm->net.ctx, A(m->logits) + (size_t)i0 * c->num_classes, lg,
                     (size_t)cnt * c->num_classes * sizeof(float)));
    return ops_copy(rm->net.ctx, A(m->feat) + (size_t)i0 * last->planes, ft, (size_t)cnt * last->planes * sizeof(float));
}

// A replica's parameter gradients start at zero; the owner adds them up afterwards.
static int resnet_backward_slice(void *arg, int r, int i0, int cnt) {
    resnet_slices *a = arg;
    resnet_model *m = a->m, *rm = m->rep[r];
    nn_net *rn = &rm->net;
    size_t in_per = (size_t)m->cfg.in_channels * m->hw0;
    ERR_TRY(ops_fill(rn->ctx, rn->grads, 0.0f, rn->n_params));
    return resnet_backward(rm, a->dx ? a->dx + (size_t)i0 * in_per : NULL,
                           a->dlogits + (size_t)i0 * m->cfg.num_classes, cnt);
}

// Training on replicas pays while each replica has enough images for its parameters: every
// replica zeroes, fills and the owner sums a full set of parameter gradients, and transforms
// every weight itself. 2 threads, AMD EPYC Zen 5, images/s per-op / replicas: width 16 batch 64
// 989 / 1106-1115; width 32 batch 64 331-347 / 354-375; width 64 batch 128 116 / 119; width 64
// batch 32 104-107 / 96-101 (700 K parameters per replica image: slower).
#define RN_REP_PARAMS_PER_IMAGE ((size_t)256 << 10)

int resnet_forward(resnet_model *m, const float *x, int n, int train, const float **logits, const float **feature) {
    nn_net *net = &m->net;
    m->last_rep = 0;
    int per = m->rp.n ? (n + m->rp.n - 1) / m->rp.n : n;
    if (!m->rp.n || n < 2 || net->prof || (train && net->n_params > RN_REP_PARAMS_PER_IMAGE * per))
        return resnet_forward_one(m, x, n, train, logits, feature);
    ERR_IF(n < 1 || n > net->max_batch, ERR_USAGE, "resnet_forward: batch %d outside 1..%d (the model's max batch)",
           n, net->max_batch);
    m->last_n = 0;
    int R = m->rp.n < n ? m->rp.n : n;
    resnet_slices a = {.m = m, .x = x, .train = train};
    rn_sync *s = m->sync_own;
    if (train) { // the slices' sizes, for the merges of sync BatchNorm
        s->R = R;
        for (int r = 0; r < R; r++) {
            int i0;
            nn_rep_slice(R, n, r, &i0, &s->imgs[r]);
        }
    }
    ERR_TRY(nn_rep_run(R, n, resnet_forward_slice, &a, train ? &s->bar : NULL));
    if (logits) *logits = A(m->logits);
    if (feature) *feature = A(m->feat);
    m->last_n = n;
    m->last_train = train != 0;
    m->last_rep = train ? R : 0;
    return 0;
}

int resnet_backward(resnet_model *m, float *dx, const float *dlogits, int n) {
    nn_net *net = &m->net;
    ERR_IF(m->last_n == 0 || !m->last_train, ERR_USAGE, "resnet_backward: needs a successful training forward first");
    ERR_IF(n != m->last_n, ERR_USAGE, "resnet_backward: batch %d differs from the forward's %d", n, m->last_n);
    if (m->last_rep) {
        resnet_slices a = {.m = m, .dlogits = dlogits, .dx = dx};
        ERR_TRY(nn_rep_run(m->last_rep, n, resnet_backward_slice, &a, &m->sync_own->bar));
        for (int r = 0; r < m->last_rep; r++)
            ERR_TRY(ops_add(net->ctx, net->grads, net->grads, m->rep[r]->net.grads, net->n_params));
        return 0;
    }
    ERR_TRY(nn_zero_dacts(net, n));
    const rn_block *last = &m->blocks[RN_BLOCKS - 1];
    ERR_TRY(nn_linear_bwd(net, &m->fc, n, A(m->dfeat), dlogits, A(m->feat)));
    ERR_TRY(ops_avgpool_bwd(net->ctx, A(last->dout), A(m->dfeat), n, last->planes, last->hw_out));
    for (int i = RN_BLOCKS - 1; i >= 0; i--) ERR_TRY(block_bwd(m, &m->blocks[i], n));
    ERR_TRY(bn_bwd(m, &m->bn1, OPS_ACT_RELU, n, m->hw0, A(m->dc0), A(m->da0), A(m->c0)));
    return nn_conv_bwd(net, &m->conv1, n, dx, A(m->dc0), A(m->xin));
}
