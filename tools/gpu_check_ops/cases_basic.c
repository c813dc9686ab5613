// cases_basic: gpu-check-ops cases for memory, elementwise, shape, softmax, embedding, random,
// loss and optimiser ops, at awkward sizes (odd counts, one element, > 1 M elements).
#include <stdio.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

#define A(expr)                  \
    do {                         \
        rc = (expr);             \
        if (rc < 0) goto done;   \
    } while (0)
#define SEL(name) if (gc_selected(r, name))

static const char *const gc_act_names[OPS_ACT_COUNT] = {"none", "relu", "swish"};

// --- memory and elementwise -------------------------------------------------------------------

static int case_elementwise(gc_run *r, size_t n) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu", n);
    gc_t a = {0}, b = {0}, y = {0};
    A(gc_rand(r, &a, n, -3.f, 3.f));
    A(gc_rand(r, &b, n, -2.f, 2.f));
    A(gc_rand(r, &y, n, -1.f, 1.f));
    SEL("copy") {
        GC_BOTH(r, "copy", what, ops_copy(CTX, P(y), P(b), n * sizeof(float)));
        A(gc_compare(r, "copy", what, "y", &y));
    }
    SEL("fill") {
        GC_BOTH(r, "fill", what, ops_fill(CTX, P(y), 0.625f, n));
        A(gc_compare(r, "fill", what, "y", &y));
    }
    SEL("add") {
        GC_BOTH(r, "add", what, ops_add(CTX, P(y), P(a), P(b), n));
        A(gc_compare(r, "add", what, "y", &y));
    }
    SEL("scale") {
        GC_BOTH(r, "scale", what, ops_scale(CTX, P(y), -0.75f, n));
        A(gc_compare(r, "scale", what, "y", &y));
    }
    SEL("axpy") {
        GC_BOTH(r, "axpy", what, ops_axpy(CTX, P(y), 0.3f, P(a), n));
        A(gc_compare(r, "axpy", what, "y", &y));
    }
    SEL("axpby") {
        GC_BOTH(r, "axpby", what, ops_axpby(CTX, P(y), 0.6f, P(a), -1.3f, P(b), n));
        A(gc_compare(r, "axpby", what, "y", &y));
    }
    for (int act = 0; act < OPS_ACT_COUNT; act++) {
        char w2[128];
        snprintf(w2, sizeof w2, "%s %s", what, gc_act_names[act]);
        SEL("act_fwd") {
            GC_BOTH(r, "act_fwd", w2, ops_act_fwd(CTX, (ops_act)act, P(y), P(a), n));
            A(gc_compare(r, "act_fwd", w2, "y", &y));
        }
        SEL("act_bwd") { // y is the accumulating dx
            GC_BOTH(r, "act_bwd", w2, ops_act_bwd(CTX, (ops_act)act, P(y), P(b), P(a), n));
            A(gc_compare(r, "act_bwd", w2, "dx", &y));
        }
    }
done:
    gc_free(r, &a);
    gc_free(r, &b);
    gc_free(r, &y);
    return rc;
}

// --- shape ops --------------------------------------------------------------------------------

static int case_shape(gc_run *r, int n, int c, int h, int w, int cb) {
    int rc = 0, hw = h * w;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d %dx%d cb%d", n, c, h, w, cb);
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * (c + cb) * hw;
    gc_t x = {0}, x2 = {0}, bias = {0}, y = {0}, dx = {0}, dx2 = {0}, up = {0}, nc = {0};
    A(gc_rand(r, &x, nx, -1.f, 1.f));
    A(gc_rand(r, &x2, (size_t)n * cb * hw, -1.f, 1.f));
    A(gc_rand(r, &bias, (size_t)n * c, -1.f, 1.f));
    A(gc_rand(r, &y, ny, -1.f, 1.f));
    A(gc_rand(r, &dx, nx, -1.f, 1.f));
    A(gc_rand(r, &dx2, (size_t)n * cb * hw, -1.f, 1.f));
    A(gc_rand(r, &up, nx * 4, -1.f, 1.f));
    A(gc_rand(r, &nc, (size_t)n * c, -1.f, 1.f));
    SEL("add_channel_bias") {
        GC_BOTH(r, "add_channel_bias", what, ops_add_channel_bias(CTX, P(dx), P(bias), n, c, hw));
        A(gc_compare(r, "add_channel_bias", what, "y", &dx));
    }
    SEL("channel_sum") {
        GC_BOTH(r, "channel_sum", what, ops_channel_sum(CTX, P(bias), P(x), n, c, hw));
        A(gc_compare(r, "channel_sum", what, "dbias", &bias));
    }
    SEL("concat_fwd") {
        GC_BOTH(r, "concat_fwd", what, ops_concat_fwd(CTX, P(y), P(x), P(x2), n, c, cb, hw));
        A(gc_compare(r, "concat_fwd", what, "y", &y));
    }
    SEL("concat_bwd") {
        GC_BOTH(r, "concat_bwd", what, ops_concat_bwd(CTX, P(dx), P(dx2), P(y), n, c, cb, hw));
        A(gc_compare(r, "concat_bwd", what, "da", &dx));
        A(gc_compare(r, "concat_bwd", what, "db", &dx2));
    }
    SEL("upsample2x_fwd") {
        GC_BOTH(r, "upsample2x_fwd", what, ops_upsample2x_fwd(CTX, P(up), P(x), n, c, h, w));
        A(gc_compare(r, "upsample2x_fwd", what, "y", &up));
    }
    SEL("upsample2x_bwd") {
        GC_BOTH(r, "upsample2x_bwd", what, ops_upsample2x_bwd(CTX, P(dx), P(up), n, c, h, w));
        A(gc_compare(r, "upsample2x_bwd", what, "dx", &dx));
    }
    SEL("avgpool_fwd") {
        GC_BOTH(r, "avgpool_fwd", what, ops_avgpool_fwd(CTX, P(nc), P(x), n, c, hw));
        A(gc_compare(r, "avgpool_fwd", what, "y", &nc));
    }
    SEL("avgpool_bwd") {
        GC_BOTH(r, "avgpool_bwd", what, ops_avgpool_bwd(CTX, P(dx), P(nc), n, c, hw));
        A(gc_compare(r, "avgpool_bwd", what, "dx", &dx));
    }
done:
    gc_free(r, &x);
    gc_free(r, &x2);
    gc_free(r, &bias);
    gc_free(r, &y);
    gc_free(r, &dx);
    gc_free(r, &dx2);
    gc_free(r, &up);
    gc_free(r, &nc);
    return rc;
}

// --- softmax, embeddings ----------------------------------------------------------------------

static int case_softmax(gc_run *r, int rows, int cols, float scale) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "%dx%d scale %g", rows, cols, (double)scale);
    size_t n = (size_t)rows * cols;
    gc_t x = {0}, y = {0}, dy = {0}, dx = {0};
    A(gc_rand(r, &x, n, -8.f, 8.f));
    A(gc_rand(r, &y, n, 0.f, 1.f));
    A(gc_rand(r, &dy, n, -1.f, 1.f));
    A(gc_rand(r, &dx, n, -1.f, 1.f));
    if (gc_selected(r, "softmax_fwd") || gc_selected(r, "softmax_bwd")) {
        GC_BOTH(r, "softmax_fwd", what, ops_softmax_fwd(CTX, P(y), P(x), rows, cols, scale));
        A(gc_compare(r, "softmax_fwd", what, "y", &y));
        GC_BOTH(r, "softmax_bwd", what, ops_softmax_bwd(CTX, P(dx), P(dy), P(y), rows, cols, scale));
        A(gc_compare(r, "softmax_bwd", what, "dx", &dx));
    }
done:
    gc_free(r, &x);
    gc_free(r, &y);
    gc_free(r, &dy);
    gc_free(r, &dx);
    return rc;
}

static int case_embedding(gc_run *r, int n, int rows, int dim) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d rows%d dim%d", n, rows, dim);
    gc_t table = {0}, y = {0}, dy = {0}, dt = {0}, t = {0}, te = {0};
    int32_t *ids_r = NULL, *ids_d = NULL;
    A(gc_rand(r, &table, (size_t)rows * dim, -1.f, 1.f));
    A(gc_rand(r, &y, (size_t)n * dim, -1.f, 1.f));
    A(gc_rand(r, &dy, (size_t)n * dim, -1.f, 1.f));
    A(gc_rand(r, &dt, (size_t)rows * dim, -1.f, 1.f));
    A(gc_rand(r, &t, (size_t)n, 0.f, 1000.f));
    A(gc_rand(r, &te, (size_t)n * dim, -1.f, 1.f));
    A(gc_ids(r, &ids_r, &ids_d, n, rows));
    SEL("embedding_fwd") {
        GC_BOTH(r, "embedding_fwd", what, ops_embedding_fwd(CTX, P(y), P(table), PI(ids_r, ids_d), n, rows, dim));
        A(gc_compare(r, "embedding_fwd", what, "y", &y));
    }
    SEL("embedding_bwd") {
        GC_BOTH(r, "embedding_bwd", what, ops_embedding_bwd(CTX, P(dt), P(dy), PI(ids_r, ids_d), n, rows, dim));
        A(gc_compare(r, "embedding_bwd", what, "dtable", &dt));
    }
    SEL("embedding_fwd") { // an id out of range is ERR_INPUT on both backends
        int32_t badid = rows;
        A(ops_upload(r->ref, ids_r + n / 2, &badid, sizeof badid));
        A(ops_upload(r->dut, ids_d + n / 2, &badid, sizeof badid));
        int r1 = ops_embedding_fwd(r->ref, y.ref, table.ref, ids_r, n, rows, dim);
        int r2 = ops_embedding_fwd(r->dut, y.dut, table.dut, ids_d, n, rows, dim);
        char detail[256];
        snprintf(detail, sizeof detail, "expected ERR_INPUT on both, got ref %d, dut %d (%s)", r1, r2, err_msg());
        gc_expect(r, "embedding_fwd", "id out of range -> ERR_INPUT", r1 == ERR_INPUT && r2 == ERR_INPUT, detail);
        err_clear();
    }
    SEL("timestep_embedding") {
        GC_BOTH(r, "timestep_embedding", what, ops_timestep_embedding(CTX, P(te), P(t), n, dim));
        A(gc_compare(r, "timestep_embedding", what, "y", &te));
    }
done:
    gc_free_ids(r, ids_r, ids_d);
    gc_free(r, &table);
    gc_free(r, &y);
    gc_free(r, &dy);
    gc_free(r, &dt);
    gc_free(r, &t);
    gc_free(r, &te);
    return rc;
}

// --- randomness -------------------------------------------------------------------------------

static int case_random(gc_run *r, size_t n, uint64_t offset, float p) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu offset %llu p %g", n, (unsigned long long)offset, (double)p);
    philox_key key = {0x12345678u, 0x9abcdef0u, 7u, 1u};
    gc_t y = {0}, x = {0}, dx = {0};
    A(gc_rand(r, &y, n, -1.f, 1.f));
    A(gc_rand(r, &x, n, -1.f, 1.f));
    A(gc_rand(r, &dx, n, -1.f, 1.f));
    SEL("randn") {
        GC_BOTH(r, "randn", what, ops_randn(CTX, P(y), n, key, offset));
        A(gc_compare(r, "randn", what, "y", &y));
    }
    SEL("dropout_fwd") {
        GC_BOTH(r, "dropout_fwd", what, ops_dropout_fwd(CTX, P(y), P(x), n, p, key, offset));
        A(gc_compare(r, "dropout_fwd", what, "y", &y));
    }
    SEL("dropout_bwd") {
        GC_BOTH(r, "dropout_bwd", what, ops_dropout_bwd(CTX, P(dx), P(x), n, p, key, offset));
        A(gc_compare(r, "dropout_bwd", what, "dx", &dx));
    }
done:
    gc_free(r, &y);
    gc_free(r, &x);
    gc_free(r, &dx);
    return rc;
}

// --- losses -----------------------------------------------------------------------------------

static int case_losses(gc_run *r, int n, int per, int k) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n%d per%d k%d", n, per, k);
    gc_t pred = {0}, target = {0}, dpred = {0}, loss = {0}, logits = {0}, dlogits = {0}, ss = {0};
    int32_t *lab_r = NULL, *lab_d = NULL;
    A(gc_rand(r, &pred, (size_t)n * per, -2.f, 2.f));
    A(gc_rand(r, &target, (size_t)n * per, -2.f, 2.f));
    A(gc_rand(r, &dpred, (size_t)n * per, -1.f, 1.f));
    A(gc_fill(r, &loss, 1, 0.f));
    A(gc_rand(r, &logits, (size_t)n * k, -6.f, 6.f));
    A(gc_rand(r, &dlogits, (size_t)n * k, -1.f, 1.f));
    A(gc_fill(r, &ss, 1, 0.f));
    A(gc_ids(r, &lab_r, &lab_d, n, k));
    SEL("mse_sum_loss") {
        GC_BOTH(r, "mse_sum_loss", what, ops_mse_sum_loss(CTX, P(loss), P(dpred), P(pred), P(target), n, per));
        A(gc_compare(r, "mse_sum_loss", what, "loss", &loss));
        A(gc_compare(r, "mse_sum_loss", what, "dpred", &dpred));
    }
    SEL("softmax_xent_loss") {
        GC_BOTH(r, "softmax_xent_loss", what,
                ops_softmax_xent_loss(CTX, P(loss), P(dlogits), P(logits), PI(lab_r, lab_d), n, k));
        A(gc_compare(r, "softmax_xent_loss", what, "loss", &loss));
        A(gc_compare(r, "softmax_xent_loss", what, "dlogits", &dlogits));
    }
    SEL("sumsq") {
        GC_BOTH(r, "sumsq", what, ops_sumsq(CTX, P(ss), P(pred), (size_t)n * per));
        A(gc_compare(r, "sumsq", what, "out", &ss));
    }
done:
    gc_free_ids(r, lab_r, lab_d);
    gc_free(r, &pred);
    gc_free(r, &target);
    gc_free(r, &dpred);
    gc_free(r, &loss);
    gc_free(r, &logits);
    gc_free(r, &dlogits);
    gc_free(r, &ss);
    return rc;
}

// --- optimisers (three steps each) ------------------------------------------------------------

static int case_optim(gc_run *r, size_t n) {
    int rc = 0;
    char what[96];
    snprintf(what, sizeof what, "n=%zu 3 steps", n);
    gc_t p = {0}, g = {0}, m = {0}, v = {0}, buf = {0}, ema = {0};
    A(gc_rand(r, &p, n, -1.f, 1.f));
    A(gc_rand(r, &g, n, -0.1f, 0.1f));
    A(gc_fill(r, &m, n, 0.f));
    A(gc_fill(r, &v, n, 0.f));
    A(gc_fill(r, &buf, n, 0.f));
    A(gc_rand(r, &ema, n, -1.f, 1.f));
    SEL("adamw") {
        for (int step = 1; step <= 3; step++)
            GC_BOTH(r, "adamw", what, ops_adamw(CTX, P(p), P(g), P(m), P(v), n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step));
        A(gc_compare(r, "adamw", what, "p", &p));
        A(gc_compare(r, "adamw", what, "m", &m));
        A(gc_compare(r, "adamw", what, "v", &v));
    }
    SEL("sgd") {
        for (int nest = 0; nest < 2; nest++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s%s", what, nest ? " nesterov" : "");
            for (int step = 1; step <= 3; step++)
                GC_BOTH(r, "sgd", w2, ops_sgd(CTX, P(p), P(g), P(buf), n, 0.1f, 0.9f, 5e-4f, nest));
            A(gc_compare(r, "sgd", w2, "p", &p));
            A(gc_compare(r, "sgd", w2, "buf", &buf));
        }
    }
    SEL("ema") {
        for (int step = 1; step <= 3; step++) GC_BOTH(r, "ema", what, ops_ema(CTX, P(ema), P(p), n, 0.9999f));
        A(gc_compare(r, "ema", what, "ema", &ema));
    }
done:
    gc_free(r, &p);
    gc_free(r, &g);
    gc_free(r, &m);
    gc_free(r, &v);
    gc_free(r, &buf);
    gc_free(r, &ema);
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
