// nn_rep: one-thread contexts for per-thread replicas and the parallel run over batch slices
// (see nn_rep.h).
#include "common/nn/nn_rep.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int nn_rep_init(nn_rep *rp, ops_ctx *ctx, int max_batch) {
    rp->n = 0;
    rp->ctx = NULL;
    const char *env = getenv("DIFFOOD_REPLICAS");
    int nt = ops_ctx_threads(ctx);
    if (ops_ctx_device(ctx) != OPS_DEV_CPU || nt < 2 || max_batch < 2 || (env && !strcmp(env, "0"))) return 0;
    int R = nt < max_batch ? nt : max_batch;
    rp->ctx = calloc((size_t)R, sizeof *rp->ctx);
    ERR_IF(!rp->ctx, ERR_NOMEM, "out of memory creating %d replica contexts", R);
    ops_options o = ops_ctx_options(ctx);
    o.threads = 1;
    for (int r = 0; r < R; r++) {
        int rc = ops_ctx_create(&rp->ctx[r], OPS_DEV_CPU, &o);
        if (rc < 0) {
            rp->n = r;
            nn_rep_free(rp);
            return rc;
        }
    }
    rp->n = R;
    return 0;
}

int nn_rep_per(const nn_rep *rp, int max_batch) { return rp->n ? (max_batch + rp->n - 1) / rp->n : max_batch; }

void nn_rep_free(nn_rep *rp) {
    for (int r = 0; rp->ctx && r < rp->n; r++)
        if (rp->ctx[r]) ops_ctx_destroy(rp->ctx[r]);
    free(rp->ctx);
    rp->ctx = NULL;
    rp->n = 0;
}

int nn_rep_run(int R, int n, nn_rep_fn fn, void *arg) {
    int rcs[R];
    char msgs[R][256];
#pragma omp parallel for schedule(static) num_threads(R)
    for (int r = 0; r < R; r++) {
        int i0 = (int)((long)n * r / R), cnt = (int)((long)n * (r + 1) / R) - i0;
        rcs[r] = fn(arg, r, i0, cnt);
        msgs[r][0] = 0;
        if (rcs[r] < 0) snprintf(msgs[r], sizeof msgs[r], "%s", err_msg());
    }
    for (int r = 0; r < R; r++)
        if (rcs[r] < 0) return err_set(rcs[r], "%s", msgs[r]);
    return 0;
}
