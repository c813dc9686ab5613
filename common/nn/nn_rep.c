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

void nn_rep_slice(int R, int n, int r, int *i0, int *cnt) {
    *i0 = (int)((long)n * r / R);
    *cnt = (int)((long)n * (r + 1) / R) - *i0;
}

int nn_rep_sync_init(nn_rep_sync *s) {
    memset(s, 0, sizeof *s);
    s->failed = -1;
    ERR_IF(pthread_mutex_init(&s->mu, NULL), ERR_INTERNAL, "cannot create the replicas' barrier mutex");
    if (pthread_cond_init(&s->cv, NULL)) {
        pthread_mutex_destroy(&s->mu);
        return err_set(ERR_INTERNAL, "cannot create the replicas' barrier condition");
    }
    return 0;
}

void nn_rep_sync_free(nn_rep_sync *s) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

// Spinning before sleeping: about the cost of a wake-up (a few microseconds); the replicas reach
// a barrier within that of each other on a quiet machine, and sleep when one is descheduled.
#define NN_REP_SPIN 4000
#if defined(__x86_64__) || defined(__i386__)
#define NN_REP_PAUSE() __builtin_ia32_pause()
#else
#define NN_REP_PAUSE() ((void)0)
#endif

static int nn_rep_sync_failed(nn_rep_sync *s) {
    return err_set(ERR_INTERNAL, "replica %d failed while the others waited for it",
                   __atomic_load_n(&s->failed, __ATOMIC_ACQUIRE));
}

int nn_rep_sync_wait(nn_rep_sync *s) {
    pthread_mutex_lock(&s->mu);
    unsigned gen = s->gen;
    if (s->failed >= 0) {
        pthread_mutex_unlock(&s->mu);
        return nn_rep_sync_failed(s);
    }
    if (++s->arrived == s->R) {
        s->arrived = 0;
        __atomic_store_n(&s->gen, gen + 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < NN_REP_SPIN; i++) {
        if (__atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != gen) return 0;
        if (__atomic_load_n(&s->failed, __ATOMIC_ACQUIRE) >= 0) break;
        NN_REP_PAUSE();
    }
    pthread_mutex_lock(&s->mu);
    while (s->gen == gen && s->failed < 0) pthread_cond_wait(&s->cv, &s->mu);
    int passed = s->gen != gen;
    pthread_mutex_unlock(&s->mu);
    return passed ? 0 : nn_rep_sync_failed(s);
}

static void nn_rep_sync_fail(nn_rep_sync *s, int r) {
    pthread_mutex_lock(&s->mu);
    if (s->failed < 0) __atomic_store_n(&s->failed, r, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int nn_rep_run(int R, int n, nn_rep_fn fn, void *arg, nn_rep_sync *sync) {
    int rcs[R];
    char msgs[R][256];
    if (sync) {
        sync->R = R;
        sync->arrived = 0;
        sync->failed = -1;
    }
#pragma omp parallel for schedule(static) num_threads(R)
    for (int r = 0; r < R; r++) {
        int i0, cnt;
        nn_rep_slice(R, n, r, &i0, &cnt);
        rcs[r] = fn(arg, r, i0, cnt);
        msgs[r][0] = 0;
        if (rcs[r] < 0) {
            snprintf(msgs[r], sizeof msgs[r], "%s", err_msg());
            if (sync) nn_rep_sync_fail(sync, r);
        }
    }
    int first = sync ? sync->failed : -1;
    if (first >= 0) return err_set(rcs[first], "%s", msgs[first]);
    for (int r = 0; r < R; r++)
        if (rcs[r] < 0) return err_set(rcs[r], "%s", msgs[r]);
    return 0;
}
