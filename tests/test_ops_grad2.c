// test_ops_grad2: the remaining backward ops of the CPU backend (shape ops, softmax, embedding,
// dropout, the losses' gradients) against central finite differences of the double-precision
// reference forward; gradient buffers are prefilled so that accumulation is checked too
// (the losses' gradients are assigned, per ops.h, and checked as such).
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "kernels/cpu/ref/ref_ops.h"
#include "kernels/ops.h"
#include "tests/test_ops_ref.h"


// One config for the shape-op forwards: op selects which.
typedef struct {
    int op; // 0 add_channel_bias (w.r.t. bias), 1 concat, 2 upsample, 3 avgpool
    double *x, *b;
    int n, c, cb, h, w;
} shp_cfg;
static void shp_fwd_d(void *p, double *out) {
    shp_cfg *k = p;
    int hw = k->h * k->w;
    if (k->op == 0) ref_add_channel_bias(out, k->x, k->b, k->n, k->c, hw);
    if (k->op == 1) ref_concat_fwd(out, k->x, k->b, k->n, k->c, k->cb, hw);
    if (k->op == 2) ref_upsample2x_fwd(out, k->x, k->n, k->c, k->h, k->w);
    if (k->op == 3) ref_avgpool_fwd(out, k->x, k->n, k->c, hw);
}

START_TEST(test_shape_bwd) {
    int n = 3, c = 5, cb = 2, h = 5, w = 3, hw = h * w;
    size_t nx = (size_t)n * c * hw, nb = (size_t)n * cb * hw;
    float *x = ref_rand(nx, 1, -1, 1), *b = ref_rand(nb > (size_t)n * c ? nb : (size_t)n * c, 2, -1, 1);
    float *r = ref_rand(4 * nx + nb, 3, -1, 1), *px, *pb;
    float *dx = tops_prefill(nx, 4, &px), *db = tops_prefill(nb, 5, &pb);
    shp_cfg cfg = {_i, ref_dup(x, nx), ref_dup(b, nb > (size_t)n * c ? nb : (size_t)n * c), n, c, cb, h, w};
    ops_ctx *ctx = tops_ctx(2);
    switch (_i) {
    case 0: // channel_sum is the adjoint of add_channel_bias w.r.t. the bias (N, C)
        ck_assert_int_eq(ops_channel_sum(ctx, db, r, n, c, hw), 0);
        tops_grad_check(shp_fwd_d, &cfg, cfg.b, (size_t)n * c, nx, r, db, pb, "channel_sum");
        break;
    case 1:
        ck_assert_int_eq(ops_concat_bwd(ctx, dx, db, r, n, c, cb, hw), 0);
        tops_grad_check(shp_fwd_d, &cfg, cfg.x, nx, nx + nb, r, dx, px, "concat_bwd da");
        tops_grad_check(shp_fwd_d, &cfg, cfg.b, nb, nx + nb, r, db, pb, "concat_bwd db");
        break;
    case 2:
        ck_assert_int_eq(ops_upsample2x_bwd(ctx, dx, r, n, c, h, w), 0);
        tops_grad_check(shp_fwd_d, &cfg, cfg.x, nx, 4 * nx, r, dx, px, "upsample2x_bwd");
        break;
    default:
        ck_assert_int_eq(ops_avgpool_bwd(ctx, dx, r, n, c, hw), 0);
        tops_grad_check(shp_fwd_d, &cfg, cfg.x, nx, (size_t)n * c, r, dx, px, "avgpool_bwd");
        break;
    }
    ops_ctx_destroy(ctx);
    free(x), free(b), free(r), free(px), free(pb), free(dx), free(db), free(cfg.x), free(cfg.b);
}
END_TEST

// --- softmax --------------------------------------------------------------------------------------

typedef struct {
    double *x;
    int rows, cols;
    double scale;
} sm_cfg;
static void sm_fwd_d(void *p, double *out) {
    sm_cfg *k = p;
    ref_softmax_fwd(out, k->x, k->rows, k->cols, k->scale);
}

START_TEST(test_softmax_bwd) {
    static const int dims[][2] = {{1, 5}, {7, 13}, {64, 70}};
    static const float scales[] = {1.0f, 0.25f, -0.7f};
    int rows = dims[_i][0], cols = dims[_i][1];
    size_t n = (size_t)rows * cols;
    float *x = ref_rand(n, 10 + _i, -3, 3), *r = ref_rand(n, 11, -1, 1), *y = malloc(n * sizeof *y), *px;
    float *dx = tops_prefill(n, 12, &px);
    sm_cfg cfg = {ref_dup(x, n), rows, cols, scales[_i]};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_softmax_fwd(ctx, y, x, rows, cols, scales[_i]), 0);
    ck_assert_int_eq(ops_softmax_bwd(ctx, dx, r, y, rows, cols, scales[_i]), 0);
    tops_grad_check(sm_fwd_d, &cfg, cfg.x, n, n, r, dx, px, "softmax_bwd");
    ops_ctx_destroy(ctx);
    free(x), free(r), free(y), free(px), free(dx), free(cfg.x);
}
END_TEST

// --- embedding ------------------------------------------------------------------------------------

typedef struct {
    double *table;
    const int32_t *ids;
    int n, dim;
} emb_cfg;
static void emb_fwd_d(void *p, double *out) {
    emb_cfg *k = p;
    ref_embedding_fwd(out, k->table, k->ids, k->n, k->dim);
}

START_TEST(test_embedding_bwd) {
    static const int32_t ids[] = {4, 0, 4, 2, 4, 1, 0}; // repeats add up
    int n = 7, rows = 6, dim = 9;
    float *table = ref_rand((size_t)rows * dim, 20, -1, 1), *r = ref_rand((size_t)n * dim, 21, -1, 1), *pt;
    float *dt = tops_prefill((size_t)rows * dim, 22, &pt);
    emb_cfg cfg = {ref_dup(table, (size_t)rows * dim), ids, n, dim};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_embedding_bwd(ctx, dt, r, ids, n, rows, dim), 0);
    tops_grad_check(emb_fwd_d, &cfg, cfg.table, (size_t)rows * dim, (size_t)n * dim, r, dt, pt, "embedding_bwd");
    ops_ctx_destroy(ctx);
    free(table), free(r), free(pt), free(dt), free(cfg.table);
}
END_TEST

// --- dropout --------------------------------------------------------------------------------------

typedef struct {
    double *x;
    size_t n;
    double p;
    philox_key key;
    uint64_t off;
} drop_cfg;
static void drop_fwd_d(void *q, double *out) {
    drop_cfg *k = q;
    ref_dropout_fwd(out, k->x, k->n, k->p, k->key, k->off);
}

START_TEST(test_dropout_bwd) {
    size_t n = 203;
    philox_key key = {7, 8, 9, 10};
    float p = _i ? 0.3f : 0.0f;
    float *x = ref_rand(n, 30, -1, 1), *r = ref_rand(n, 31, -1, 1), *px, *dx = tops_prefill(n, 32, &px);
    drop_cfg cfg = {ref_dup(x, n), n, p, key, 13};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_dropout_bwd(ctx, dx, r, n, p, key, 13), 0);
    tops_grad_check(drop_fwd_d, &cfg, cfg.x, n, n, r, dx, px, "dropout_bwd");
    ops_ctx_destroy(ctx);
    free(x), free(r), free(px), free(dx), free(cfg.x);
}
END_TEST

// --- losses ---------------------------------------------------------------------------------------

typedef struct {
    double *pred, *target;
    const int32_t *labels;
    int n, per;
} loss_cfg;
static void mse_d(void *p, double *out) {
    loss_cfg *k = p;
    out[0] = ref_mse_sum_loss(k->pred, k->target, k->n, k->per);
}
static void xent_d(void *p, double *out) {
    loss_cfg *k = p;
    out[0] = ref_softmax_xent_loss(k->pred, k->labels, k->n, k->per);
}

START_TEST(test_losses) {
    static const int32_t labels[] = {3, 0, 9, 9, 1};
    int n = _i ? 5 : 1, per = _i ? 10 : 37;
    size_t m = (size_t)n * per;
    float *pred = ref_rand(m, 40 + _i, -3, 3), *target = ref_rand(m, 41, -3, 3), *g = ref_rand(m, 42, 5, 6);
    float one = 1.0f, loss = -1;
    loss_cfg cfg = {ref_dup(pred, m), ref_dup(target, m), labels, n, per};
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_mse_sum_loss(ctx, &loss, g, pred, target, n, per), 0);
    double want = ref_mse_sum_loss(cfg.pred, cfg.target, n, per);
    ck_assert_msg(fabs(loss - want) <= 1e-6 * want, "mse_sum_loss %g vs %g", (double)loss, want);
    tops_grad_check(mse_d, &cfg, cfg.pred, m, 1, &one, g, NULL, "mse_sum_loss dpred");
    if (_i) { // cross-entropy over 10 classes
        ref_fill_uniform(g, m, 43, 5, 6);
        ck_assert_int_eq(ops_softmax_xent_loss(ctx, &loss, g, pred, labels, n, per), 0);
        want = ref_softmax_xent_loss(cfg.pred, labels, n, per);
        ck_assert_msg(fabs(loss - want) <= 1e-6 * want, "softmax_xent_loss %g vs %g", (double)loss, want);
        tops_grad_check(xent_d, &cfg, cfg.pred, m, 1, &one, g, NULL, "softmax_xent_loss dlogits");
    }
    ops_ctx_destroy(ctx);
    free(pred), free(target), free(g), free(cfg.pred), free(cfg.target);
}
END_TEST

Suite *suite_ops_grad2(void) {
    Suite *s = suite_create("ops_grad2");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_shape_bwd, 0, 4);
    tcase_add_loop_test(tc, test_softmax_bwd, 0, 3);
    tcase_add_test(tc, test_embedding_bwd);
    tcase_add_loop_test(tc, test_dropout_bwd, 0, 2);
    tcase_add_loop_test(tc, test_losses, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
