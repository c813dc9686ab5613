// cases_basic: gpu-check-ops cases for memory, elementwise, shape, softmax, embedding, random,
// loss and optimiser ops, at awkward sizes (odd counts, one element, > 1 M elements).
#include <stdio.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

// --- memory and elementwise -------------------------------------------------------------------

static int case_elementwise(gc_run *r, size_t n) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu", n);
    gc_t a = {0}, b = {0}, y = {0};
    GC_TRY(gc_rand(r, &a, n, -3.f, 3.f));
    GC_TRY(gc_rand(r, &b, n, -2.f, 2.f));
    GC_TRY(gc_rand(r, &y, n, -1.f, 1.f));
    GC_CHECK(r, "copy", what, "y", y, ops_copy(CTX, P(y), P(b), n * sizeof(float)));
    GC_CHECK(r, "fill", what, "y", y, ops_fill(CTX, P(y), 0.625f, n));
    GC_CHECK(r, "add", what, "y", y, ops_add(CTX, P(y), P(a), P(b), n));
    GC_CHECK(r, "scale", what, "y", y, ops_scale(CTX, P(y), -0.75f, n));
    GC_CHECK(r, "axpy", what, "y", y, ops_axpy(CTX, P(y), 0.3f, P(a), n));
    GC_CHECK(r, "axpby", what, "y", y, ops_axpby(CTX, P(y), 0.6f, P(a), -1.3f, P(b), n));
    GC_SEL("axpby_rows") { // one coefficient pair per row; > 256 rows crosses CUDA's launch chunks
        int rows = n > 100000 ? 300 : n >= 1000 ? 17 : 1;
        size_t per = n / (size_t)rows;
        float ca[300], cb[300];
        for (int i = 0; i < rows; i++) {
            ca[i] = (float)(gc_uniform(r) * 2.0 - 1.0);
            cb[i] = (float)(gc_uniform(r) * 2.0 - 1.0);
        }
        char w2[128];
        snprintf(w2, sizeof w2, "%d rows x %zu", rows, per);
        GC_BOTH(r, "axpby_rows", w2, ops_axpby_rows(CTX, P(y), ca, P(a), cb, P(b), rows, per));
        GC_TRY(gc_compare(r, "axpby_rows", w2, "y", &y));
    }
    for (int act = 0; act < OPS_ACT_COUNT; act++) {
        char w2[128];
        snprintf(w2, sizeof w2, "%s %s", what, gc_act_names[act]);
        GC_CHECK(r, "act_fwd", w2, "y", y, ops_act_fwd(CTX, (ops_act)act, P(y), P(a), n));
        GC_SEL("act_bwd") { // y is the accumulating dx
            GC_BOTH(r, "act_bwd", w2, ops_act_bwd(CTX, (ops_act)act, P(y), P(b), P(a), n));
            GC_TRY(gc_compare(r, "act_bwd", w2, "dx", &y));
        }
    }
done:
    GC_FREE(r, &a, &b, &y);
    return rc;
}

// --- shape ops --------------------------------------------------------------------------------

static int case_shape(gc_run *r, int n, int c, int h, int w, int cb) {
    int rc = 0, hw = h * w;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d %dx%d cb%d", n, c, h, w, cb);
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * (c + cb) * hw;
    gc_t x = {0}, x2 = {0}, bias = {0}, y = {0}, dx = {0}, dx2 = {0}, up = {0}, nc = {0};
    GC_TRY(gc_rand(r, &x, nx, -1.f, 1.f));
    GC_TRY(gc_rand(r, &x2, (size_t)n * cb * hw, -1.f, 1.f));
    GC_TRY(gc_rand(r, &bias, (size_t)n * c, -1.f, 1.f));
    GC_TRY(gc_rand(r, &y, ny, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dx, nx, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dx2, (size_t)n * cb * hw, -1.f, 1.f));
    GC_TRY(gc_rand(r, &up, nx * 4, -1.f, 1.f));
    GC_TRY(gc_rand(r, &nc, (size_t)n * c, -1.f, 1.f));
    GC_CHECK(r, "add_channel_bias", what, "y", dx, ops_add_channel_bias(CTX, P(dx), P(bias), n, c, hw));
    GC_CHECK(r, "channel_sum", what, "dbias", bias, ops_channel_sum(CTX, P(bias), P(x), n, c, hw));
    GC_CHECK(r, "concat_fwd", what, "y", y, ops_concat_fwd(CTX, P(y), P(x), P(x2), n, c, cb, hw));
    GC_SEL("concat_bwd") {
        GC_BOTH(r, "concat_bwd", what, ops_concat_bwd(CTX, P(dx), P(dx2), P(y), n, c, cb, hw));
        GC_TRY(gc_compare(r, "concat_bwd", what, "da", &dx));
        GC_TRY(gc_compare(r, "concat_bwd", what, "db", &dx2));
    }
    GC_CHECK(r, "upsample2x_fwd", what, "y", up, ops_upsample2x_fwd(CTX, P(up), P(x), n, c, h, w));
    GC_CHECK(r, "upsample2x_bwd", what, "dx", dx, ops_upsample2x_bwd(CTX, P(dx), P(up), n, c, h, w));
    GC_CHECK(r, "avgpool_fwd", what, "y", nc, ops_avgpool_fwd(CTX, P(nc), P(x), n, c, hw));
    GC_CHECK(r, "avgpool_bwd", what, "dx", dx, ops_avgpool_bwd(CTX, P(dx), P(nc), n, c, hw));
done:
    GC_FREE(r, &x, &x2, &bias, &y, &dx, &dx2, &up, &nc);
    return rc;
}

// --- softmax, embeddings ----------------------------------------------------------------------

static int case_softmax(gc_run *r, int rows, int cols, float scale) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "%dx%d scale %g", rows, cols, (double)scale);
    size_t n = (size_t)rows * cols;
    gc_t x = {0}, y = {0}, dy = {0}, dx = {0};
    GC_TRY(gc_rand(r, &x, n, -8.f, 8.f));
    GC_TRY(gc_rand(r, &y, n, 0.f, 1.f));
    GC_TRY(gc_rand(r, &dy, n, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dx, n, -1.f, 1.f));
    if (gc_selected(r, "softmax_fwd") || gc_selected(r, "softmax_bwd")) {
        GC_BOTH(r, "softmax_fwd", what, ops_softmax_fwd(CTX, P(y), P(x), rows, cols, scale));
        GC_TRY(gc_compare(r, "softmax_fwd", what, "y", &y));
        GC_BOTH(r, "softmax_bwd", what, ops_softmax_bwd(CTX, P(dx), P(dy), P(y), rows, cols, scale));
        GC_TRY(gc_compare(r, "softmax_bwd", what, "dx", &dx));
    }
done:
    GC_FREE(r, &x, &y, &dy, &dx);
    return rc;
}

static int case_embedding(gc_run *r, int n, int rows, int dim) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d rows%d dim%d", n, rows, dim);
    gc_t table = {0}, y = {0}, dy = {0}, dt = {0}, t = {0}, te = {0};
    int32_t *ids_r = NULL, *ids_d = NULL;
    GC_TRY(gc_rand(r, &table, (size_t)rows * dim, -1.f, 1.f));
    GC_TRY(gc_rand(r, &y, (size_t)n * dim, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dy, (size_t)n * dim, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dt, (size_t)rows * dim, -1.f, 1.f));
    GC_TRY(gc_rand(r, &t, (size_t)n, 0.f, 1000.f));
    GC_TRY(gc_rand(r, &te, (size_t)n * dim, -1.f, 1.f));
    GC_TRY(gc_ids(r, &ids_r, &ids_d, n, rows));
    GC_CHECK(r, "embedding_fwd", what, "y", y, ops_embedding_fwd(CTX, P(y), P(table), PI(ids_r, ids_d), n, rows, dim));
    GC_CHECK(r, "embedding_bwd", what, "dtable", dt,
             ops_embedding_bwd(CTX, P(dt), P(dy), PI(ids_r, ids_d), n, rows, dim));
    GC_SEL("embedding_fwd") { // an id out of range is ERR_INPUT on both backends
        int32_t badid = rows;
        GC_TRY(ops_upload(r->ref, ids_r + n / 2, &badid, sizeof badid));
        GC_TRY(ops_upload(r->dut, ids_d + n / 2, &badid, sizeof badid));
        // CUDA reports a bad id at the next synchronisation point, not at the call (ops.h)
        int r1 = ops_embedding_fwd(r->ref, y.ref, table.ref, ids_r, n, rows, dim);
        if (r1 == 0) r1 = ops_sync(r->ref);
        int r2 = ops_embedding_fwd(r->dut, y.dut, table.dut, ids_d, n, rows, dim);
        if (r2 == 0) r2 = ops_sync(r->dut);
        char detail[256];
        snprintf(detail, sizeof detail, "expected ERR_INPUT on both, got ref %d, dut %d (%s)", r1, r2, err_msg());
        gc_expect(r, "embedding_fwd", "id out of range -> ERR_INPUT", r1 == ERR_INPUT && r2 == ERR_INPUT, detail);
        err_clear();
    }
    GC_CHECK(r, "timestep_embedding", what, "y", te, ops_timestep_embedding(CTX, P(te), P(t), n, dim));
done:
    gc_free_ids(r, ids_r, ids_d);
    GC_FREE(r, &table, &y, &dy, &dt, &t, &te);
    return rc;
}

// --- randomness -------------------------------------------------------------------------------

static int case_random(gc_run *r, size_t n, uint64_t offset, float p) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu offset %llu p %g", n, (unsigned long long)offset, (double)p);
    philox_key key = {0x12345678u, 0x9abcdef0u, 7u, 1u};
    gc_t y = {0}, x = {0}, dx = {0};
    GC_TRY(gc_rand(r, &y, n, -1.f, 1.f));
    GC_TRY(gc_rand(r, &x, n, -1.f, 1.f));
    GC_TRY(gc_rand(r, &dx, n, -1.f, 1.f));
    GC_CHECK(r, "randn", what, "y", y, ops_randn(CTX, P(y), n, key, offset));
    GC_CHECK(r, "dropout_fwd", what, "y", y, ops_dropout_fwd(CTX, P(y), P(x), n, p, key, offset));
    GC_CHECK(r, "dropout_bwd", what, "dx", dx, ops_dropout_bwd(CTX, P(dx), P(x), n, p, key, offset));
done:
    GC_FREE(r, &y, &x, &dx);
    return rc;
}

// --- losses -----------------------------------------------------------------------------------

static int case_losses(gc_run *r, int n, int per, int k) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d per%d k%d", n, per, k);
    gc_t pred = {0}, target = {0}, dpred = {0}, loss = {0}, logits = {0}, dlogits = {0}, ss = {0};
    int32_t *lab_r = NULL, *lab_d = NULL;
    GC_TRY(gc_rand(r, &pred, (size_t)n * per, -2.f, 2.f));
    GC_TRY(gc_rand(r, &target, (size_t)n * per, -2.f, 2.f));
    GC_TRY(gc_rand(r, &dpred, (size_t)n * per, -1.f, 1.f));
    GC_TRY(gc_fill(r, &loss, 1, 0.f));
    GC_TRY(gc_rand(r, &logits, (size_t)n * k, -6.f, 6.f));
    GC_TRY(gc_rand(r, &dlogits, (size_t)n * k, -1.f, 1.f));
    GC_TRY(gc_fill(r, &ss, 1, 0.f));
    GC_TRY(gc_ids(r, &lab_r, &lab_d, n, k));
    GC_SEL("mse_sum_loss") {
        GC_BOTH(r, "mse_sum_loss", what, ops_mse_sum_loss(CTX, P(loss), P(dpred), P(pred), P(target), n, per));
        GC_TRY(gc_compare(r, "mse_sum_loss", what, "loss", &loss));
        GC_TRY(gc_compare(r, "mse_sum_loss", what, "dpred", &dpred));
    }
    GC_SEL("softmax_xent_loss") {
        GC_BOTH(r, "softmax_xent_loss", what,
                ops_softmax_xent_loss(CTX, P(loss), P(dlogits), P(logits), PI(lab_r, lab_d), n, k));
        GC_TRY(gc_compare(r, "softmax_xent_loss", what, "loss", &loss));
        GC_TRY(gc_compare(r, "softmax_xent_loss", what, "dlogits", &dlogits));
        int32_t badlab = -1; // a label out of range is ERR_INPUT on both backends (CUDA: at the sync)
        GC_TRY(ops_upload(r->ref, lab_r + n - 1, &badlab, sizeof badlab));
        GC_TRY(ops_upload(r->dut, lab_d + n - 1, &badlab, sizeof badlab));
        int r1 = ops_softmax_xent_loss(r->ref, loss.ref, dlogits.ref, logits.ref, lab_r, n, k);
        if (r1 == 0) r1 = ops_sync(r->ref);
        int r2 = ops_softmax_xent_loss(r->dut, loss.dut, dlogits.dut, logits.dut, lab_d, n, k);
        if (r2 == 0) r2 = ops_sync(r->dut);
        char detail[256];
        snprintf(detail, sizeof detail, "expected ERR_INPUT on both, got ref %d, dut %d (%s)", r1, r2, err_msg());
        gc_expect(r, "softmax_xent_loss", "label out of range -> ERR_INPUT", r1 == ERR_INPUT && r2 == ERR_INPUT, detail);
        err_clear();
    }
    GC_CHECK(r, "sumsq", what, "out", ss, ops_sumsq(CTX, P(ss), P(pred), (size_t)n * per));
done:
    gc_free_ids(r, lab_r, lab_d);
    GC_FREE(r, &pred, &target, &dpred, &loss, &logits, &dlogits, &ss);
    return rc;
}

// --- optimisers (three steps each) ------------------------------------------------------------

static int case_optim(gc_run *r, size_t n) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu 3 steps", n);
    gc_t p = {0}, g = {0}, m = {0}, v = {0}, buf = {0}, ema = {0};
    GC_TRY(gc_rand(r, &p, n, -1.f, 1.f));
    GC_TRY(gc_rand(r, &g, n, -0.1f, 0.1f));
    GC_TRY(gc_fill(r, &m, n, 0.f));
    GC_TRY(gc_fill(r, &v, n, 0.f));
    GC_TRY(gc_fill(r, &buf, n, 0.f));
    GC_TRY(gc_rand(r, &ema, n, -1.f, 1.f));
    GC_SEL("adamw") {
        for (int step = 1; step <= 3; step++)
            GC_BOTH(r, "adamw", what, ops_adamw(CTX, P(p), P(g), P(m), P(v), n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step));
        GC_TRY(gc_compare(r, "adamw", what, "p", &p));
        GC_TRY(gc_compare(r, "adamw", what, "m", &m));
        GC_TRY(gc_compare(r, "adamw", what, "v", &v));
    }
    GC_SEL("sgd") {
        for (int nest = 0; nest < 2; nest++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s%s", what, nest ? " nesterov" : "");
            for (int step = 1; step <= 3; step++)
                GC_BOTH(r, "sgd", w2, ops_sgd(CTX, P(p), P(g), P(buf), n, 0.1f, 0.9f, 5e-4f, nest));
            GC_TRY(gc_compare(r, "sgd", w2, "p", &p));
            GC_TRY(gc_compare(r, "sgd", w2, "buf", &buf));
        }
    }
    GC_SEL("ema") {
        for (int step = 1; step <= 3; step++) GC_BOTH(r, "ema", what, ops_ema(CTX, P(ema), P(p), n, 0.9999f));
        GC_TRY(gc_compare(r, "ema", what, "ema", &ema));
    }
done:
    GC_FREE(r, &p, &g, &m, &v, &buf, &ema);
    return rc;
}

int gc_cases_basic(gc_run *r) {
    int big = !r->quick;
    ERR_TRY(case_elementwise(r, 1));
    ERR_TRY(case_elementwise(r, big ? 1000003 : 1003));
    ERR_TRY(case_shape(r, 3, 5, 7, 9, 6));
    if (big) ERR_TRY(case_shape(r, 2, 64, 16, 16, 128));
    ERR_TRY(case_softmax(r, 37, 1, 1.f));
    ERR_TRY(case_softmax(r, 5, 1024, 0.125f));
    if (big) ERR_TRY(case_softmax(r, 1024, 77, 0.088f));
    ERR_TRY(case_embedding(r, 37, 11, 65));
    if (big) ERR_TRY(case_embedding(r, 128, 1001, 512));
    ERR_TRY(case_embedding(r, 9, 3, 7));
    ERR_TRY(case_random(r, 1001, 3, 0.1f));
    if (big) ERR_TRY(case_random(r, 1 << 20, 4096, 0.5f));
    ERR_TRY(case_losses(r, 7, 3073, 10));
    if (big) ERR_TRY(case_losses(r, 128, 3072, 1000));
    ERR_TRY(case_optim(r, 10007));
    if (big) ERR_TRY(case_optim(r, 1 << 22));
    return 0;
}
