// unet: building the class-conditional DDIM UNet (METHOD.md section 4) and running it: the
// parameter table in the reference state_dict order, the activation plan in forward order, the
// time/label embedding, and the forward/backward walk over the modules of unet_blocks.c.
//
// Forward/backward are explicit per module (llm.c style, see unet_blocks.c): the build records
// the forward as a flat list of steps (resblock, attention, resample, concat) with every skip
// connection resolved to an arena offset, so the forward walks the list and the backward walks
// it in reverse. Nothing is allocated after unet_create.
//
// Replicas (nn_rep.h; CPU, more than one thread): every image of the UNet is computed
// independently of the others (GroupNorm is per image), so a batch is cut into one contiguous
// slice per thread and each thread runs the whole network on its slice. The replicas share the
// master's parameters and have their own activations and gradients; their gradients are added
// into the master's in replica order. Outputs are the same bits as one model computing the
// whole batch (every kernel computes an image the same way whatever else is in the batch;
// dropout numbers are indexed by the image's place in the whole batch); parameter gradients
// are summed in a different order, so their last bits depend on the thread count, as before. Measured on the 2-core AMD EPYC (Zen 5), fmnist
// UNet, batch 16, 2 threads: train step +35%, forward +50% (two one-thread processes on half
// batches stood in for it first). DIFFOOD_REPLICAS=0 turns them off (A/B measurements).
#include "common/nn/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/nn/nn_rep.h"
#include "common/nn/unet_internal.h"

typedef enum { UNET_STEP_RES, UNET_STEP_ATTN, UNET_STEP_RESAMPLE, UNET_STEP_CONCAT, UNET_STEP_COUNT } unet_step_kind;

typedef struct {
    unet_step_kind kind;
    void *mod;
} unet_step;

struct unet_model {
    nn_net net;
    unet_config cfg;
    int temb_ch, levels, nrb;
    // parameters
    nn_linear dense0, dense1;
    nn_conv conv_in, conv_out;
    unet_gn norm_out;
    size_t label_emb;
    unet_resblock *down_rb, *up_rb, mid1, mid2; // down [L][nrb], up [L][nrb+1]
    unet_attn *down_at, *up_at, mid_at;
    unet_resample *down_ds, *up_us; // [L] (down: not the last level; up: not level 0)
    unet_concat *up_cat;            // [L][nrb+1]
    int *level_attn;                // [L]
    // activations
    size_t xin, yin, te, t1, s1, le, temb, stemb, dt1, ds1, dtemb, dstemb, ao, mo, ro, dao;
    unet_tensor h0, hend;
    unet_step *steps;
    int n_steps;
    // last forward
    int last_n, last_drop, last_rep; // last_rep: replicas that computed it (0: this model)
    int last_img0, last_n_all;       // its images within the whole batch
    philox_key last_key;
    // replicas (CPU, threads > 1; see the top of this file): rp.n models on rp's contexts
    nn_rep rp;
    unet_model **rep;
};

// --- configuration --------------------------------------------------------------------------

unet_config unet_config_cifar10(void) {
    unet_config c = {.ch = 128, .ch_mult = {1, 2, 2, 2}, .n_levels = 4, .num_res_blocks = 2,
                     .attn_res = {16}, .n_attn = 1, .dropout = 0.1f, .resamp_with_conv = 1,
                     .in_channels = 3, .out_ch = 3, .image_size = 32, .num_classes = 10, .num_groups = 32};
    return c;
}

int unet_config_check(const unet_config *c) {
    ERR_IF(c->ch < 4 || c->ch % 2, ERR_CONFIG, "unet.ch = %d: must be even and at least 4", c->ch);
    ERR_IF(c->n_levels < 1 || c->n_levels > UNET_MAX_LEVELS, ERR_CONFIG, "unet.ch_mult: %d levels (1..%d allowed)",
           c->n_levels, UNET_MAX_LEVELS);
    for (int i = 0; i < c->n_levels; i++)
        ERR_IF(c->ch_mult[i] < 1, ERR_CONFIG, "unet.ch_mult[%d] = %d: must be positive", i, c->ch_mult[i]);
    ERR_IF(c->num_res_blocks < 1 || c->num_res_blocks > 16, ERR_CONFIG, "unet.num_res_blocks = %d (1..16 allowed)",
           c->num_res_blocks);
    ERR_IF(c->n_attn < 0 || c->n_attn > UNET_MAX_ATTN, ERR_CONFIG, "unet.attn_resolutions: %d entries (at most %d)",
           c->n_attn, UNET_MAX_ATTN);
    ERR_IF(!(c->dropout >= 0.0f && c->dropout < 1.0f), ERR_CONFIG, "unet.dropout = %g: must be in [0, 1)",
           (double)c->dropout);
    ERR_IF(!c->resamp_with_conv, ERR_UNSUPPORTED,
           "unet.resamp_with_conv = false is not supported (the op API has no 2x2 average pooling)");
    ERR_IF(c->in_channels < 1 || c->out_ch < 1, ERR_CONFIG, "unet.in_channels = %d, unet.out_ch = %d: must be positive",
           c->in_channels, c->out_ch);
    ERR_IF(c->num_classes < 1, ERR_CONFIG, "unet.num_classes = %d: must be positive", c->num_classes);
    ERR_IF(c->num_groups < 1, ERR_CONFIG, "unet.num_groups = %d: must be positive", c->num_groups);
    int div = 1 << (c->n_levels - 1);
    ERR_IF(c->image_size < div || c->image_size % div, ERR_CONFIG,
           "unet.image_size = %d: must be a multiple of %d for %d levels", c->image_size, div, c->n_levels);
    for (int i = 0; i < c->n_levels; i++) {
        int chans = c->ch * c->ch_mult[i];
        ERR_IF(chans % c->num_groups || c->ch % c->num_groups, ERR_CONFIG,
               "unet.num_groups = %d does not divide the %d channels of level %d (ch %d x ch_mult %d)",
               c->num_groups, chans, i, c->ch, c->ch_mult[i]);
    }
    return 0;
}

const unet_config *unet_cfg(const unet_model *m) { return &m->cfg; }
nn_net *unet_net(unet_model *m) { return &m->net; }

// --- building ---------------------------------------------------------------------------------

static int unet_has_attn(const unet_config *c, int res) {
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn_res[i] == res) return 1;
    return 0;
}

// Parameters, in the reference state_dict order.
static int unet_build_params(unet_model *m) {
    const unet_config *c = &m->cfg;
    nn_net *net = &m->net;
    int L = m->levels, nrb = m->nrb, ch = c->ch, g = c->num_groups, S = c->image_size;
    char name[NN_NAME_MAX];
    ERR_TRY(nn_linear_add(net, &m->dense0, "temb.dense.0", ch, m->temb_ch));
    ERR_TRY(nn_linear_add(net, &m->dense1, "temb.dense.1", m->temb_ch, m->temb_ch));
    ERR_TRY(nn_conv_add(net, &m->conv_in, "conv_in", c->in_channels, ch, 3, 1, 1, 1, 1, 1, S, S, 1));
    int block_in = ch;
    for (int i = 0; i < L; i++) {
        int res = S >> i, block_out = ch * c->ch_mult[i];
        m->level_attn[i] = unet_has_attn(c, res);
        for (int b = 0; b < nrb; b++) {
            snprintf(name, sizeof name, "down.%d.block.%d", i, b);
            ERR_TRY(unet_resblock_params(net, &m->down_rb[i * nrb + b], name, block_in, block_out, m->temb_ch, g, res, res));
            block_in = block_out;
        }
        for (int b = 0; m->level_attn[i] && b < nrb; b++) {
            snprintf(name, sizeof name, "down.%d.attn.%d", i, b);
            ERR_TRY(unet_attn_params(net, &m->down_at[i * nrb + b], name, block_in, g, res, res));
        }
        if (i != L - 1) {
            snprintf(name, sizeof name, "down.%d.downsample", i);
            ERR_TRY(unet_resample_params(net, &m->down_ds[i], name, block_in, res, res, 0));
        }
    }
    int rmid = S >> (L - 1);
    ERR_TRY(unet_resblock_params(net, &m->mid1, "mid.block_1", block_in, block_in, m->temb_ch, g, rmid, rmid));
    ERR_TRY(unet_attn_params(net, &m->mid_at, "mid.attn_1", block_in, g, rmid, rmid));
    ERR_TRY(unet_resblock_params(net, &m->mid2, "mid.block_2", block_in, block_in, m->temb_ch, g, rmid, rmid));
    // Up levels are listed 0..L-1 in the state_dict but built L-1..0: the input width of level
    // i's first block is the output width of level i+1 (or of the middle for the last level).
    for (int i = 0; i < L; i++) {
        int res = S >> i, block_out = ch * c->ch_mult[i];
        int in = i == L - 1 ? ch * c->ch_mult[L - 1] : ch * c->ch_mult[i + 1];
        for (int b = 0; b <= nrb; b++) {
            int skip_in = b == nrb ? (i == 0 ? ch : ch * c->ch_mult[i - 1]) : block_out;
            snprintf(name, sizeof name, "up.%d.block.%d", i, b);
            ERR_TRY(unet_resblock_params(net, &m->up_rb[i * (nrb + 1) + b], name, in + skip_in, block_out, m->temb_ch,
                                         g, res, res));
            in = block_out;
        }
        for (int b = 0; m->level_attn[i] && b <= nrb; b++) {
            snprintf(name, sizeof name, "up.%d.attn.%d", i, b);
            ERR_TRY(unet_attn_params(net, &m->up_at[i * (nrb + 1) + b], name, block_out, g, res, res));
        }
        if (i != 0) {
            snprintf(name, sizeof name, "up.%d.upsample", i);
            ERR_TRY(unet_resample_params(net, &m->up_us[i], name, block_out, res, res, 1));
        }
    }
    ERR_TRY(unet_gn_add(net, &m->norm_out, "norm_out", ch * c->ch_mult[0], g));
    ERR_TRY(nn_conv_add(net, &m->conv_out, "conv_out", ch * c->ch_mult[0], c->out_ch, 3, 1, 1, 1, 1, 1, S, S, 1));
    int de[2] = {c->num_classes + 1, m->temb_ch};
    return nn_add(net, &m->label_emb, NN_KIND_PARAM, NN_INIT_NORMAL, 0, 2, de, "label_emb.weight");
}

static void unet_push_step(unet_model *m, unet_step_kind kind, void *mod) {
    m->steps[m->n_steps++] = (unet_step){kind, mod};
}

// Activations, in forward order, and the step list; resolves the skip stack.
static void unet_build_acts(unet_model *m) {
    const unet_config *c = &m->cfg;
    nn_net *net = &m->net;
    int L = m->levels, nrb = m->nrb, S = c->image_size, T = m->temb_ch, drop = c->dropout > 0.0f;
    m->xin = nn_act(net, (size_t)c->in_channels * S * S, 0);
    m->yin = nn_act(net, 1, 0);
    m->te = nn_act(net, (size_t)c->ch, 0);
    m->t1 = nn_act(net, (size_t)T, 0);
    m->s1 = nn_act(net, (size_t)T, 0);
    m->le = nn_act(net, (size_t)T, 0);
    m->temb = nn_act(net, (size_t)T, 0);
    m->stemb = nn_act(net, (size_t)T, 0);
    m->dt1 = nn_dact(net, (size_t)T);
    m->ds1 = nn_dact(net, (size_t)T);
    m->dtemb = nn_dact(net, (size_t)T);
    m->dstemb = nn_dact(net, (size_t)T);
    m->h0 = unet_tensor_new(net, c->ch, S, S);

    unet_tensor stack[UNET_MAX_LEVELS * 18 + 2];
    int sp = 0;
    stack[sp++] = m->h0;
    for (int i = 0; i < L; i++) {
        for (int b = 0; b < nrb; b++) {
            unet_resblock *rb = &m->down_rb[i * nrb + b];
            unet_resblock_acts(net, rb, stack[sp - 1], drop);
            unet_push_step(m, UNET_STEP_RES, rb);
            unet_tensor h = rb->out;
            if (m->level_attn[i]) {
                unet_attn *at = &m->down_at[i * nrb + b];
                unet_attn_acts(net, at, h);
                unet_push_step(m, UNET_STEP_ATTN, at);
                h = at->out;
            }
            stack[sp++] = h;
        }
        if (i != L - 1) {
            unet_resample_acts(net, &m->down_ds[i], stack[sp - 1]);
            unet_push_step(m, UNET_STEP_RESAMPLE, &m->down_ds[i]);
            stack[sp++] = m->down_ds[i].out;
        }
    }
    unet_resblock_acts(net, &m->mid1, stack[sp - 1], drop);
    unet_push_step(m, UNET_STEP_RES, &m->mid1);
    unet_attn_acts(net, &m->mid_at, m->mid1.out);
    unet_push_step(m, UNET_STEP_ATTN, &m->mid_at);
    unet_resblock_acts(net, &m->mid2, m->mid_at.out, drop);
    unet_push_step(m, UNET_STEP_RES, &m->mid2);
    unet_tensor h = m->mid2.out;
    for (int i = L - 1; i >= 0; i--) {
        for (int b = 0; b <= nrb; b++) {
            unet_concat *cc = &m->up_cat[i * (nrb + 1) + b];
            unet_concat_acts(net, cc, h, stack[--sp]);
            unet_push_step(m, UNET_STEP_CONCAT, cc);
            unet_resblock *rb = &m->up_rb[i * (nrb + 1) + b];
            unet_resblock_acts(net, rb, cc->out, drop);
            unet_push_step(m, UNET_STEP_RES, rb);
            h = rb->out;
            if (m->level_attn[i]) {
                unet_attn *at = &m->up_at[i * (nrb + 1) + b];
                unet_attn_acts(net, at, h);
                unet_push_step(m, UNET_STEP_ATTN, at);
                h = at->out;
            }
        }
        if (i != 0) {
            unet_resample_acts(net, &m->up_us[i], h);
            unet_push_step(m, UNET_STEP_RESAMPLE, &m->up_us[i]);
            h = m->up_us[i].out;
        }
    }
    m->hend = h;
    size_t per = (size_t)h.c * S * S;
    m->ao = nn_act(net, per, 0);
    m->mo = nn_act(net, (size_t)c->num_groups, 0);
    m->ro = nn_act(net, (size_t)c->num_groups, 0);
    m->dao = nn_dact(net, per);
}

void unet_destroy(unet_model *m) {
    if (!m) return;
    for (int r = 0; m->rep && r < m->rp.n; r++) unet_destroy(m->rep[r]); // before their contexts and params
    free(m->rep);
    nn_rep_free(&m->rp);
    nn_net_free(&m->net);
    free(m->down_rb);
    free(m->up_rb);
    free(m->down_at);
    free(m->up_at);
    free(m->down_ds);
    free(m->up_us);
    free(m->up_cat);
    free(m->level_attn);
    free(m->steps);
    free(m);
}

static int unet_create_one(unet_model **out, ops_ctx *ctx, const unet_config *cfg, int max_batch) {
    *out = NULL;
    ERR_TRY(unet_config_check(cfg));
    ERR_IF(max_batch < 1, ERR_USAGE, "unet: max_batch = %d must be at least 1", max_batch);
    int rc = 0;
    unet_model *m = calloc(1, sizeof *m);
    ERR_IF(!m, ERR_NOMEM, "out of memory creating the UNet");
    nn_net_init(&m->net, ctx, max_batch);
    m->cfg = *cfg;
    m->temb_ch = 4 * cfg->ch;
    m->levels = cfg->n_levels;
    m->nrb = cfg->num_res_blocks;
    size_t L = (size_t)m->levels, nd = L * (size_t)m->nrb, nu = L * (size_t)(m->nrb + 1);
    m->down_rb = calloc(nd, sizeof *m->down_rb);
    m->down_at = calloc(nd, sizeof *m->down_at);
    m->up_rb = calloc(nu, sizeof *m->up_rb);
    m->up_at = calloc(nu, sizeof *m->up_at);
    m->up_cat = calloc(nu, sizeof *m->up_cat);
    m->down_ds = calloc(L, sizeof *m->down_ds);
    m->up_us = calloc(L, sizeof *m->up_us);
    m->level_attn = calloc(L, sizeof *m->level_attn);
    m->steps = calloc(3 * (nd + nu) + 2 * L + 4, sizeof *m->steps);
    ERR_GOTO_IF(rc, !m->down_rb || !m->down_at || !m->up_rb || !m->up_at || !m->up_cat || !m->down_ds || !m->up_us ||
                        !m->level_attn || !m->steps,
                ERR_NOMEM, "out of memory creating the UNet");
    ERR_GOTO(rc, unet_build_params(m));
    unet_build_acts(m);
    ERR_GOTO(rc, nn_net_alloc(&m->net));
    *out = m;
    return 0;
fail:
    unet_destroy(m);
    return err_prefix(rc, "unet: ");
}

// One replica per thread of a CPU context (see the top of this file), each for its share of
// max_batch images, reading m's parameters.
static int unet_create_replicas(unet_model *m, ops_ctx *ctx, int max_batch) {
    ERR_TRY(nn_rep_init(&m->rp, ctx, max_batch));
    if (!m->rp.n) return 0;
    m->rep = calloc((size_t)m->rp.n, sizeof *m->rep);
    ERR_IF(!m->rep, ERR_NOMEM, "out of memory creating the UNet's replicas");
    for (int r = 0; r < m->rp.n; r++) {
        ERR_TRY(unet_create_one(&m->rep[r], m->rp.ctx[r], &m->cfg, nn_rep_per(&m->rp, max_batch)));
        nn_net_share_params(&m->rep[r]->net, &m->net);
    }
    return 0;
}

int unet_create(unet_model **out, ops_ctx *ctx, const unet_config *cfg, int max_batch) {
    unet_model *m = NULL;
    ERR_TRY(unet_create_one(&m, ctx, cfg, max_batch));
    int rc = unet_create_replicas(m, ctx, max_batch);
    if (rc < 0) {
        unet_destroy(m);
        return err_prefix(rc, "unet: ");
    }
    *out = m;
    return 0;
}

// --- forward / backward -------------------------------------------------------------------------

#define P(off) (net->params + (off))
#define G(off) (net->grads + (off))
#define A(off) nn_ptr(net, (off))

// The forward of images img0 .. img0+n-1 of a batch of n_all (all of it: img0 0, n_all n).
static int unet_forward_one(unet_model *m, float *eps, const float *x, const float *t, const int32_t *y, int n,
                            int train, philox_key key, int img0, int n_all) {
    nn_net *net = &m->net;
    const unet_config *c = &m->cfg;
    int S = c->image_size, T = m->temb_ch;
    ERR_IF(n < 1 || n > net->max_batch, ERR_USAGE, "unet_forward: batch %d outside 1..%d (the model's max batch)", n,
           net->max_batch);
    m->last_n = 0;
    unet_run r = {.net = net, .n = n, .drop = train && c->dropout > 0.0f, .p = c->dropout, .key = key,
                  .img0 = img0, .n_all = n_all, .stemb = m->stemb, .dstemb = m->dstemb};
    ERR_TRY(ops_copy(net->ctx, A(m->xin), x, (size_t)n * c->in_channels * S * S * sizeof(float)));
    ERR_TRY(ops_copy(net->ctx, A(m->yin), y, (size_t)n * sizeof(int32_t)));
    // time and label embedding: temb = dense1(swish(dense0(sinusoid(t)))) + label_emb[y]
    ERR_TRY(ops_timestep_embedding(net->ctx, A(m->te), t, n, c->ch));
    ERR_TRY(nn_linear_fwd(net, &m->dense0, n, A(m->t1), A(m->te)));
    ERR_TRY(ops_act_fwd(net->ctx, OPS_ACT_SWISH, A(m->s1), A(m->t1), (size_t)n * T));
    ERR_TRY(nn_linear_fwd(net, &m->dense1, n, A(m->temb), A(m->s1)));
    int rc = ops_embedding_fwd(net->ctx, A(m->le), P(m->label_emb), (const int32_t *)A(m->yin), n,
                               c->num_classes + 1, T);
    if (rc < 0) return err_prefix(rc, "unet_forward: labels must be 0..%d (%d = null label): ", c->num_classes,
                                  c->num_classes);
    ERR_TRY(ops_add(net->ctx, A(m->temb), A(m->temb), A(m->le), (size_t)n * T));
    ERR_TRY(ops_act_fwd(net->ctx, OPS_ACT_SWISH, A(m->stemb), A(m->temb), (size_t)n * T));
    ERR_TRY(nn_conv_fwd(net, &m->conv_in, n, A(m->h0.x), A(m->xin)));
    for (int i = 0; i < m->n_steps; i++) {
        unet_step *s = &m->steps[i];
        switch (s->kind) {
        case UNET_STEP_RES: ERR_TRY(unet_resblock_fwd(&r, s->mod)); break;
        case UNET_STEP_ATTN: ERR_TRY(unet_attn_fwd(&r, s->mod)); break;
        case UNET_STEP_RESAMPLE: ERR_TRY(unet_resample_fwd(&r, s->mod)); break;
        default: ERR_TRY(unet_concat_fwd(&r, s->mod)); break;
        }
    }
    ERR_TRY(ops_groupnorm_fwd(net->ctx, OPS_ACT_SWISH, A(m->ao), A(m->mo), A(m->ro), A(m->hend.x), P(m->norm_out.g),
                              P(m->norm_out.b), n, m->hend.c, S * S, c->num_groups, UNET_GN_EPS));
    ERR_TRY(nn_conv_fwd(net, &m->conv_out, n, eps, A(m->ao)));
    m->last_n = n;
    m->last_drop = r.drop;
    m->last_key = key;
    m->last_rep = 0;
    m->last_img0 = img0;
    m->last_n_all = n_all;
    return 0;
}

static int unet_backward_one(unet_model *m, float *dx, const float *deps, int n) {
    nn_net *net = &m->net;
    const unet_config *c = &m->cfg;
    int S = c->image_size, T = m->temb_ch;
    ERR_IF(m->last_n == 0, ERR_USAGE, "unet_backward: no successful forward to differentiate");
    ERR_IF(n != m->last_n, ERR_USAGE, "unet_backward: batch %d differs from the forward's %d", n, m->last_n);
    unet_run r = {.net = net, .n = n, .drop = m->last_drop, .p = c->dropout, .key = m->last_key,
                  .img0 = m->last_img0, .n_all = m->last_n_all, .stemb = m->stemb, .dstemb = m->dstemb};
    ERR_TRY(nn_zero_dacts(net, n));
    ERR_TRY(nn_conv_bwd(net, &m->conv_out, n, A(m->dao), deps, A(m->ao)));
    ERR_TRY(ops_groupnorm_bwd(net->ctx, OPS_ACT_SWISH, A(m->hend.dx), G(m->norm_out.g), G(m->norm_out.b), A(m->dao),
                              A(m->hend.x), A(m->mo), A(m->ro), P(m->norm_out.g), P(m->norm_out.b), n, m->hend.c,
                              S * S, c->num_groups));
    for (int i = m->n_steps - 1; i >= 0; i--) {
        unet_step *s = &m->steps[i];
        switch (s->kind) {
        case UNET_STEP_RES: ERR_TRY(unet_resblock_bwd(&r, s->mod)); break;
        case UNET_STEP_ATTN: ERR_TRY(unet_attn_bwd(&r, s->mod)); break;
        case UNET_STEP_RESAMPLE: ERR_TRY(unet_resample_bwd(&r, s->mod)); break;
        default: ERR_TRY(unet_concat_bwd(&r, s->mod)); break;
        }
    }
    ERR_TRY(nn_conv_bwd(net, &m->conv_in, n, dx, A(m->h0.dx), A(m->xin)));
    ERR_TRY(ops_act_bwd(net->ctx, OPS_ACT_SWISH, A(m->dtemb), A(m->dstemb), A(m->temb), (size_t)n * T));
    ERR_TRY(ops_embedding_bwd(net->ctx, G(m->label_emb), A(m->dtemb), (const int32_t *)A(m->yin), n,
                              c->num_classes + 1, T));
    ERR_TRY(nn_linear_bwd(net, &m->dense1, n, A(m->ds1), A(m->dtemb), A(m->s1)));
    ERR_TRY(ops_act_bwd(net->ctx, OPS_ACT_SWISH, A(m->dt1), A(m->ds1), A(m->t1), (size_t)n * T));
    return nn_linear_bwd(net, &m->dense0, n, NULL, A(m->dt1), A(m->te));
}

// The arguments of a forward or backward that replicas compute slice by slice.
typedef struct {
    unet_model *m;
    float *eps, *dx;
    const float *x, *t, *deps;
    const int32_t *y;
    int n, train;
    philox_key key;
    size_t in_per, out_per;
} unet_slices;

static int unet_forward_slice(void *arg, int r, int i0, int cnt) {
    unet_slices *a = arg;
    return unet_forward_one(a->m->rep[r], a->eps + i0 * a->out_per, a->x + i0 * a->in_per, a->t + i0, a->y + i0, cnt,
                            a->train, a->key, i0, a->n);
}

static int unet_backward_slice(void *arg, int r, int i0, int cnt) {
    unet_slices *a = arg;
    nn_net *rn = &a->m->rep[r]->net;
    ERR_TRY(ops_fill(rn->ctx, rn->grads, 0.0f, rn->n_params));
    return unet_backward_one(a->m->rep[r], a->dx ? a->dx + i0 * a->in_per : NULL, a->deps + i0 * a->out_per, cnt);
}

static unet_slices unet_slices_of(unet_model *m, int n) {
    const unet_config *c = &m->cfg;
    size_t plane = (size_t)c->image_size * c->image_size;
    return (unet_slices){.m = m, .n = n, .in_per = c->in_channels * plane, .out_per = c->out_ch * plane};
}

int unet_forward(unet_model *m, float *eps, const float *x, const float *t, const int32_t *y, int n, int train,
                 philox_key key) {
    if (!m->rp.n || n < 2 || m->net.prof) return unet_forward_one(m, eps, x, t, y, n, train, key, 0, n);
    ERR_IF(n < 1 || n > m->net.max_batch, ERR_USAGE, "unet_forward: batch %d outside 1..%d (the model's max batch)",
           n, m->net.max_batch);
    unet_slices a = unet_slices_of(m, n);
    a.eps = eps, a.x = x, a.t = t, a.y = y, a.train = train, a.key = key;
    int R = m->rp.n < n ? m->rp.n : n;
    m->last_n = m->last_rep = 0;
    ERR_TRY(nn_rep_run(R, n, unet_forward_slice, &a, NULL));
    m->last_n = n;
    m->last_rep = R;
    return 0;
}

int unet_backward(unet_model *m, float *dx, const float *deps, int n) {
    if (!m->last_rep) return unet_backward_one(m, dx, deps, n);
    ERR_IF(n != m->last_n, ERR_USAGE, "unet_backward: batch %d differs from the forward's %d", n, m->last_n);
    unet_slices a = unet_slices_of(m, n);
    a.dx = dx, a.deps = deps;
    ERR_TRY(nn_rep_run(m->last_rep, n, unet_backward_slice, &a, NULL));
    nn_net *net = &m->net;
    for (int r = 0; r < m->last_rep; r++)
        ERR_TRY(ops_add(net->ctx, net->grads, net->grads, m->rep[r]->net.grads, net->n_params));
    return 0;
}
