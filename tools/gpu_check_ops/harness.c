// harness: tensors on both contexts, the comparison and the table rows of gpu-check-ops.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/gpu_check_ops/gc.h"

static uint64_t gc_next(gc_run *r) {
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double gc_uniform(gc_run *r) { return (double)(gc_next(r) >> 11) * (1.0 / 9007199254740992.0); }

int gc_selected(const gc_run *r, const char *name) { return !r->only || strstr(name, r->only) != NULL; }

static int gc_alloc_both(gc_run *r, gc_t *t, size_t n) {
    memset(t, 0, sizeof *t);
    t->n = n;
    t->host = malloc((n ? n : 1) * sizeof(float));
    if (!t->host) return err_set(ERR_NOMEM, "gpu-check-ops: out of memory for %zu floats", n);
    int rc = ops_alloc(r->ref, (void **)&t->ref, n * sizeof(float));
    if (rc == 0) rc = ops_alloc(r->dut, (void **)&t->dut, n * sizeof(float));
    if (rc < 0) gc_free(r, t);
    return rc;
}

static int gc_upload_both(gc_run *r, gc_t *t) {
    ERR_TRY(ops_upload(r->ref, t->ref, t->host, t->n * sizeof(float)));
    return ops_upload(r->dut, t->dut, t->host, t->n * sizeof(float));
}

int gc_rand(gc_run *r, gc_t *t, size_t n, float lo, float hi) {
    ERR_TRY(gc_alloc_both(r, t, n));
    for (size_t i = 0; i < n; i++) t->host[i] = lo + (hi - lo) * (float)gc_uniform(r);
    return gc_upload_both(r, t);
}

int gc_fill(gc_run *r, gc_t *t, size_t n, float v) {
    ERR_TRY(gc_alloc_both(r, t, n));
    for (size_t i = 0; i < n; i++) t->host[i] = v;
    return gc_upload_both(r, t);
}

int gc_set(gc_run *r, gc_t *t, const float *host, size_t n) {
    ERR_TRY(gc_alloc_both(r, t, n));
    memcpy(t->host, host, n * sizeof(float));
    return gc_upload_both(r, t);
}

int gc_ids(gc_run *r, int32_t **ref, int32_t **dut, int n, int rows) {
    *ref = *dut = NULL;
    int32_t *h = malloc((size_t)n * sizeof *h);
    if (!h) return err_set(ERR_NOMEM, "gpu-check-ops: out of memory for %d ids", n);
    for (int i = 0; i < n; i++) h[i] = (int32_t)(gc_next(r) % (uint64_t)rows);
    int rc = ops_alloc(r->ref, (void **)ref, (size_t)n * sizeof *h);
    if (rc == 0) rc = ops_alloc(r->dut, (void **)dut, (size_t)n * sizeof *h);
    if (rc == 0) rc = ops_upload(r->ref, *ref, h, (size_t)n * sizeof *h);
    if (rc == 0) rc = ops_upload(r->dut, *dut, h, (size_t)n * sizeof *h);
    free(h);
    if (rc < 0) gc_free_ids(r, *ref, *dut);
    return rc;
}

void gc_free(gc_run *r, gc_t *t) {
    if (t->ref) ops_free(r->ref, t->ref);
    if (t->dut) ops_free(r->dut, t->dut);
    free(t->host);
    memset(t, 0, sizeof *t);
}

void gc_free_list(gc_run *r, gc_t *const *list) {
    for (; *list; list++) gc_free(r, *list);
}

const char *const gc_act_names[OPS_ACT_COUNT] = {"none", "relu", "swish"};

void gc_free_ids(gc_run *r, int32_t *ref, int32_t *dut) {
    if (ref) ops_free(r->ref, ref);
    if (dut) ops_free(r->dut, dut);
}

static void gc_row(gc_run *r, const char *op, const char *what, const char *out, const char *err, const char *verdict) {
    printf("%-20s %-5s %-34s %-8s %12s %9.1e  %s\n", op, r->phase, what, out, err, r->tol, verdict);
    fflush(stdout);
}

int gc_compare(gc_run *r, const char *op, const char *what, const char *out, const gc_t *t) {
    size_t n = t->n;
    float *a = malloc((n ? n : 1) * sizeof(float)), *b = malloc((n ? n : 1) * sizeof(float));
    int rc = 0;
    if (!a || !b) {
        rc = err_set(ERR_NOMEM, "gpu-check-ops: out of memory comparing %s", op);
        goto fail;
    }
    rc = ops_sync(r->dut);
    if (rc == 0) rc = ops_download(r->ref, a, t->ref, n * sizeof(float));
    if (rc == 0) rc = ops_download(r->dut, b, t->dut, n * sizeof(float));
    if (rc < 0) {
        gc_call_failed(r, op, what, "download", rc);
        rc = 0;
        goto fail;
    }
    if (r->inject && n) { // harness self-test: a wrong result must be caught
        b[n / 2] += 0.05f * (fabsf(b[n / 2]) + 1.0f);
        r->inject = 0;
    }
    double num = 0.0, den = 0.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) bad = 1;
        double d = (double)b[i] - a[i];
        num += d * d;
        den += (double)a[i] * a[i];
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    char err[32];
    snprintf(err, sizeof err, bad ? "NaN/Inf" : "%.3e", rel);
    int ok = !bad && rel <= r->tol;
    r->checks++;
    if (!ok) r->failed++;
    gc_row(r, op, what, out, err, ok ? "ok" : "FAIL");
fail:
    free(a);
    free(b);
    return rc;
}

int gc_call_failed(gc_run *r, const char *op, const char *what, const char *side, int rc) {
    r->checks++;
    r->failed++;
    r->errors++;
    gc_row(r, op, what, side, "error", "FAIL");
    printf("    %s: %s (%s)\n", side, err_msg(), err_str(rc));
    err_clear();
    return 0;
}

void gc_expect(gc_run *r, const char *op, const char *what, int ok, const char *detail) {
    r->checks++;
    if (!ok) r->failed++;
    gc_row(r, op, what, "-", "-", ok ? "ok" : "FAIL");
    if (!ok && detail) printf("    %s\n", detail);
}
