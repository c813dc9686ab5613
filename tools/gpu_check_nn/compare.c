// compare: the UNet and ResNet-18 on two contexts with identical parameters and inputs, outputs
// and gradients compared by norm-wise relative error.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "tools/gpu_check_nn/gcn.h"

// --- helpers ------------------------------------------------------------------------------------

double gcn_rel_err(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)b[i] - a[i];
        num += d * d;
        den += (double)a[i] * a[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

void gcn_row(gcn_opts *o, const char *model, const char *what, double err, double tol, const char *note) {
    int ok = err <= tol;
    o->checks++;
    if (!ok) o->failed++;
    printf("%-9s %-5s %-28s %12.3e %9.1e  %-4s %s\n", model, o->tf32 ? "tf32" : "fp32", what, err, tol,
           ok ? "ok" : "FAIL", note ? note : "");
    fflush(stdout);
}

float *gcn_download(ops_ctx *ctx, const float *dev, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) {
        err_set(ERR_NOMEM, "gpu-check-nn: out of memory for %zu floats", n);
        return NULL;
    }
    if (ops_sync(ctx) < 0 || ops_download(ctx, h, dev, n * sizeof *h) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

float *gcn_upload(ops_ctx *ctx, const float *host, size_t n) {
    float *d = NULL;
    if (ops_alloc(ctx, (void **)&d, n * sizeof *d) < 0) return NULL;
    if (ops_upload(ctx, d, host, n * sizeof *d) < 0) {
        ops_free(ctx, d);
        return NULL;
    }
    return d;
}

void gcn_rand(uint64_t *state, float *h, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        h[i] = lo + (hi - lo) * (float)((double)(z >> 11) * (1.0 / 9007199254740992.0));
    }
}

double gcn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

unet_config gcn_unet_small(void) {
    unet_config c = unet_config_cifar10();
    c.ch = 32;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 2;
    c.n_levels = 2;
    c.num_res_blocks = 1;
    c.attn_res[0] = 8;
    c.n_attn = 1;
    c.in_channels = c.out_ch = 1;
    c.image_size = 16;
    c.num_groups = 8;
    return c;
}

// Compares device arrays a (on ref) and b (on dut) of n floats as one row.
static int gcn_cmp(gcn_opts *o, ops_ctx *ref, ops_ctx *dut, const char *model, const char *what, const float *a,
                   const float *b, size_t n, double tol) {
    float *ha = gcn_download(ref, a, n), *hb = ha ? gcn_download(dut, b, n) : NULL;
    if (!ha || !hb) {
        free(ha);
        return err_last() < 0 ? err_last() : ERR_DEVICE;
    }
    gcn_row(o, model, what, gcn_rel_err(ha, hb, n), tol, NULL);
    free(ha);
    free(hb);
    return 0;
}

// Per-entry gradient errors of a net: the arena as a row, plus the worst entry named.
static int gcn_cmp_grads(gcn_opts *o, const char *model, nn_net *ra, nn_net *rb, double tol) {
    float *ga = gcn_download(ra->ctx, ra->grads, ra->n_params);
    float *gb = ga ? gcn_download(rb->ctx, rb->grads, rb->n_params) : NULL;
    if (!ga || !gb) {
        free(ga);
        return err_last() < 0 ? err_last() : ERR_DEVICE;
    }
    double worst = 0.0, total = 0.0;
    const char *wname = "-";
    for (size_t i = 0; i < ra->n_params; i++) total += (double)ga[i] * ga[i];
    for (int i = 0; i < ra->n_entries; i++) {
        const nn_entry *e = &ra->entries[i];
        if (e->kind != NN_KIND_PARAM) continue;
        double norm = 0.0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)ga[e->offset + j] * ga[e->offset + j];
        if (norm <= 1e-12 * total) continue; // gradients that vanish in exact arithmetic (attention k bias)
        double err = gcn_rel_err(ga + e->offset, gb + e->offset, e->numel);
        if (err > worst) {
            worst = err;
            wname = e->name;
        }
    }
    char note[160];
    snprintf(note, sizeof note, "(worst tensor %s: %.2e)", wname, worst);
    gcn_row(o, model, "param grads (all)", gcn_rel_err(ga, gb, ra->n_params), tol, note);
    free(ga);
    free(gb);
    return 0;
}

// Copies the params and buffers arenas of net a (ref) into net b (dut).
static int gcn_copy_state(nn_net *a, nn_net *b) {
    float *h = gcn_download(a->ctx, a->params, a->n_params);
    if (!h) return err_last();
    int rc = ops_upload(b->ctx, b->params, h, a->n_params * sizeof *h);
    free(h);
    if (rc < 0 || !a->n_buffers) return rc;
    h = gcn_download(a->ctx, a->buffers, a->n_buffers);
    if (!h) return err_last();
    rc = ops_upload(b->ctx, b->buffers, h, a->n_buffers * sizeof *h);
    free(h);
    return rc;
}

// Tolerances of whole networks: float32 accumulates over ~50 layers; TF32 rounds inputs to 10 bits.
static double gcn_tol(const gcn_opts *o) { return o->tf32 ? 3e-2 : 1e-3; }

// --- UNet -------------------------------------------------------------------------------------

int gcn_compare_unet(gcn_opts *o, ops_ctx *ref, ops_ctx *dut) {
    unet_config cfg = o->paper ? unet_config_cifar10() : gcn_unet_small();
    int n = o->batch, s = cfg.image_size, rc = 0;
    size_t nx = (size_t)n * cfg.in_channels * s * s, ne = (size_t)n * cfg.out_ch * s * s;
    unet_model *ma = NULL, *mb = NULL;
    float *hx = malloc(nx * sizeof *hx), *hd = malloc(ne * sizeof *hd), ht[64];
    int32_t hy[64];
    float *xa = NULL, *xb = NULL, *ta = NULL, *tb = NULL, *da = NULL, *db = NULL, *ea = NULL, *eb = NULL;
    float *dxa = NULL, *dxb = NULL;
    int32_t *ya = NULL, *yb = NULL;
    ERR_GOTO_IF(rc, !hx || !hd || n > 64, ERR_USAGE, "gpu-check-nn: batch %d (1..64) or out of memory", n);
    uint64_t st = o->seed;
    gcn_rand(&st, hx, nx, -1.f, 1.f);
    gcn_rand(&st, hd, ne, -1.f, 1.f);
    gcn_rand(&st, ht, (size_t)n, 0.f, 999.f);
    for (int i = 0; i < n; i++) hy[i] = i % (cfg.num_classes + 1); // the null label K included
    ERR_GOTO(rc, unet_create(&ma, ref, &cfg, n));
    ERR_GOTO(rc, unet_create(&mb, dut, &cfg, n));
    ERR_GOTO(rc, nn_init_default(unet_net(ma), o->seed));
    ERR_GOTO(rc, gcn_copy_state(unet_net(ma), unet_net(mb)));
    xa = gcn_upload(ref, hx, nx), xb = gcn_upload(dut, hx, nx);
    ta = gcn_upload(ref, ht, (size_t)n), tb = gcn_upload(dut, ht, (size_t)n);
    da = gcn_upload(ref, hd, ne), db = gcn_upload(dut, hd, ne);
    ea = gcn_upload(ref, hd, ne), eb = gcn_upload(dut, hd, ne);
    dxa = gcn_upload(ref, hx, nx), dxb = gcn_upload(dut, hx, nx);
    ya = (int32_t *)gcn_upload(ref, (const float *)hy, (size_t)n), yb = (int32_t *)gcn_upload(dut, (const float *)hy, (size_t)n);
    ERR_GOTO_IF(rc, !xa || !xb || !ta || !tb || !da || !db || !ea || !eb || !dxa || !dxb || !ya || !yb,
                err_last() < 0 ? err_last() : ERR_DEVICE, NULL);
    philox_key key = {(uint32_t)o->seed, 77u, 5u, 0u};
    ERR_GOTO(rc, unet_forward(ma, ea, xa, ta, ya, n, 1, key));
    ERR_GOTO(rc, unet_forward(mb, eb, xb, tb, yb, n, 1, key));
    const char *name = o->paper ? "unet" : "unet-s";
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, name, "forward eps (dropout on)", ea, eb, ne, gcn_tol(o)));
    ERR_GOTO(rc, nn_zero_grad(unet_net(ma)));
    ERR_GOTO(rc, nn_zero_grad(unet_net(mb)));
    ERR_GOTO(rc, ops_fill(ref, dxa, 0.f, nx));
    ERR_GOTO(rc, ops_fill(dut, dxb, 0.f, nx));
    ERR_GOTO(rc, unet_backward(ma, dxa, da, n));
    ERR_GOTO(rc, unet_backward(mb, dxb, db, n));
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, name, "backward dx", dxa, dxb, nx, gcn_tol(o)));
    ERR_GOTO(rc, gcn_cmp_grads(o, name, unet_net(ma), unet_net(mb), gcn_tol(o)));
fail:
    if (xa) ops_free(ref, xa);
    if (ta) ops_free(ref, ta);
    if (da) ops_free(ref, da);
    if (ea) ops_free(ref, ea);
    if (dxa) ops_free(ref, dxa);
    if (ya) ops_free(ref, ya);
    if (xb) ops_free(dut, xb);
    if (tb) ops_free(dut, tb);
    if (db) ops_free(dut, db);
    if (eb) ops_free(dut, eb);
    if (dxb) ops_free(dut, dxb);
    if (yb) ops_free(dut, yb);
    unet_destroy(ma);
    unet_destroy(mb);
    free(hx);
    free(hd);
    return rc;
}

// --- ResNet-18 --------------------------------------------------------------------------------

int gcn_compare_resnet(gcn_opts *o, ops_ctx *ref, ops_ctx *dut) {
    resnet_config cfg = resnet_config_default();
    int n = o->batch < 2 ? 2 : o->batch, s = cfg.image_size, rc = 0;
    size_t nx = (size_t)n * cfg.in_channels * s * s, nl = (size_t)n * cfg.num_classes;
    resnet_model *ma = NULL, *mb = NULL;
    float *hx = malloc(nx * sizeof *hx), *hl = malloc(nl * sizeof *hl);
    float *xa = NULL, *xb = NULL, *dla = NULL, *dlb = NULL, *dxa = NULL, *dxb = NULL;
    const float *la = NULL, *lb = NULL;
    ERR_GOTO_IF(rc, !hx || !hl, ERR_NOMEM, "gpu-check-nn: out of memory");
    uint64_t st = o->seed + 1;
    gcn_rand(&st, hx, nx, -2.f, 2.f);
    gcn_rand(&st, hl, nl, -1.f, 1.f);
    ERR_GOTO(rc, resnet_create(&ma, ref, &cfg, n));
    ERR_GOTO(rc, resnet_create(&mb, dut, &cfg, n));
    ERR_GOTO(rc, nn_init_default(resnet_net(ma), o->seed));
    ERR_GOTO(rc, gcn_copy_state(resnet_net(ma), resnet_net(mb)));
    xa = gcn_upload(ref, hx, nx), xb = gcn_upload(dut, hx, nx);
    dla = gcn_upload(ref, hl, nl), dlb = gcn_upload(dut, hl, nl);
    dxa = gcn_upload(ref, hx, nx), dxb = gcn_upload(dut, hx, nx);
    ERR_GOTO_IF(rc, !xa || !xb || !dla || !dlb || !dxa || !dxb, err_last() < 0 ? err_last() : ERR_DEVICE, NULL);
    ERR_GOTO(rc, resnet_forward(ma, xa, n, 1, &la, NULL));
    ERR_GOTO(rc, resnet_forward(mb, xb, n, 1, &lb, NULL));
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, "resnet18", "train forward logits", la, lb, nl, gcn_tol(o)));
    nn_net *na = resnet_net(ma), *nb = resnet_net(mb);
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, "resnet18", "running statistics", na->buffers, nb->buffers, na->n_buffers,
                         gcn_tol(o)));
    ERR_GOTO(rc, nn_zero_grad(na));
    ERR_GOTO(rc, nn_zero_grad(nb));
    ERR_GOTO(rc, ops_fill(ref, dxa, 0.f, nx));
    ERR_GOTO(rc, ops_fill(dut, dxb, 0.f, nx));
    ERR_GOTO(rc, resnet_backward(ma, dxa, dla, n));
    ERR_GOTO(rc, resnet_backward(mb, dxb, dlb, n));
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, "resnet18", "backward dx", dxa, dxb, nx, gcn_tol(o)));
    ERR_GOTO(rc, gcn_cmp_grads(o, "resnet18", na, nb, gcn_tol(o)));
    ERR_GOTO(rc, resnet_forward(ma, xa, n, 0, &la, NULL));
    ERR_GOTO(rc, resnet_forward(mb, xb, n, 0, &lb, NULL));
    ERR_GOTO(rc, gcn_cmp(o, ref, dut, "resnet18", "eval forward logits", la, lb, nl, gcn_tol(o)));
fail:
    if (xa) ops_free(ref, xa);
    if (dla) ops_free(ref, dla);
    if (dxa) ops_free(ref, dxa);
    if (xb) ops_free(dut, xb);
    if (dlb) ops_free(dut, dlb);
    if (dxb) ops_free(dut, dxb);
    resnet_destroy(ma);
    resnet_destroy(mb);
    free(hx);
    free(hl);
    return rc;
}
