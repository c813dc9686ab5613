// gc: the comparison harness of gpu-check-ops. Every op of OPS_LIST runs on a reference context
// (the CPU backend) and on the device under test (CUDA, or a second CPU context with other
// thread counts in --dry-run) on the same random inputs; outputs are downloaded and compared by
// norm-wise relative error ||dut - ref|| / ||ref|| against a tolerance (float32 1e-4, TF32 3e-3),
// NaN/Inf in either side failing. One table row per compared output.
#ifndef DIFFOOD_GC_H
#define DIFFOOD_GC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

typedef struct {
    ops_ctx *ref, *dut;  // reference (CPU) and device under test
    uint64_t rng;        // host random state (splitmix64)
    double tol;          // tolerance of the current phase
    const char *phase;   // "fp32" or "tf32"
    const char *only;    // run only ops whose name contains this (NULL: all)
    int inject;          // harness self-test: perturb the first compared output of the dut
    int quick;           // skip the large cases (emulated backends, smoke runs)
    int checks, failed, errors;
} gc_run;

// A float tensor present on both contexts (same content after gc_rand/gc_fill/gc_set).
typedef struct {
    float *ref, *dut;
    float *host;  // host copy of the initial content (n floats)
    size_t n;
} gc_t;

// Allocates t (n floats) on both contexts with uniform values in [lo, hi). 0 or an err.h code.
int gc_rand(gc_run *r, gc_t *t, size_t n, float lo, float hi);
// Allocates t with every element = v.
int gc_fill(gc_run *r, gc_t *t, size_t n, float v);
// Allocates t from host values (copied).
int gc_set(gc_run *r, gc_t *t, const float *host, size_t n);
// Allocates int32 ids uniformly in [0, rows) on both contexts (*ref, *dut device pointers).
int gc_ids(gc_run *r, int32_t **ref, int32_t **dut, int n, int rows);
void gc_free(gc_run *r, gc_t *t);
void gc_free_ids(gc_run *r, int32_t *ref, int32_t *dut);

// Compares t on both contexts (downloads after a sync), prints a row "op case output err tol
// verdict" and counts it. Returns 0 (a mismatch is a failed row, not an error) or an err.h code.
int gc_compare(gc_run *r, const char *op, const char *what, const char *out, const gc_t *t);
// Records a row for an op call that failed (rc < 0) on one side; returns 0.
int gc_call_failed(gc_run *r, const char *op, const char *what, const char *side, int rc);
// Records a row for an expectation that holds or not (e.g. bad ids rejected on both sides).
void gc_expect(gc_run *r, const char *op, const char *what, int ok, const char *detail);
// 1 when op `name` is selected by --only.
int gc_selected(const gc_run *r, const char *name);
// A uniform double in [0, 1) from the host generator.
double gc_uniform(gc_run *r);

// Runs `expr` on both contexts: inside, CTX is the context and P(t) the side's pointer of a
// gc_t. A failing call records a row and leaves the enclosing case with 0 (after `cleanup`).
#define GC_BOTH(r, op, what, expr)                                                     \
    do {                                                                               \
        for (int gc_side_ = 0; gc_side_ < 2; gc_side_++) {                             \
            ops_ctx *CTX = gc_side_ ? (r)->dut : (r)->ref;                             \
            int gc_rc_ = (expr);                                                       \
            if (gc_rc_ < 0) {                                                          \
                gc_call_failed((r), (op), (what), gc_side_ ? "dut" : "ref", gc_rc_);   \
                goto done;                                                             \
            }                                                                          \
        }                                                                              \
    } while (0)
#define P(t) (gc_side_ ? (t).dut : (t).ref)
#define PI(ref_, dut_) (gc_side_ ? (dut_) : (ref_))

// Inside a case (an int rc and a `done:` label that frees): rc = expr, to `done` when negative.
#define GC_TRY(expr)               \
    do {                           \
        rc = (expr);               \
        if (rc < 0) goto done;     \
    } while (0)
// The statement that follows runs when op `name` is selected by --only.
#define GC_SEL(name) if (gc_selected(r, name))
// One op, one output: when op is selected, runs expr on both contexts and compares t (a gc_t)
// as output `out`.
#define GC_CHECK(r, op, what, out, t, expr)                  \
    do {                                                     \
        if (gc_selected((r), (op))) {                        \
            GC_BOTH((r), (op), (what), expr);                \
            GC_TRY(gc_compare((r), (op), (what), (out), &(t))); \
        }                                                    \
    } while (0)

// Names of the fused activations (ops_act), for case descriptions.
extern const char *const gc_act_names[OPS_ACT_COUNT];
// Frees every tensor of a NULL-terminated list (gc_free on each).
void gc_free_list(gc_run *r, gc_t *const *list);
#define GC_FREE(r, ...) gc_free_list((r), (gc_t *const[]){__VA_ARGS__, NULL})

// Case families (cases_basic.c, cases_nn.c); each returns 0 or an err.h code for harness
// failures (allocation), op mismatches being rows.
int gc_cases_basic(gc_run *r);
int gc_cases_nn(gc_run *r);
// Only the TF32-sensitive ops (convolution, linear, bmm), for the TF32 phase.
int gc_cases_matmul(gc_run *r);

#endif
