// nn_rep: replicas of a network on the CPU, one per thread, each computing a contiguous slice of
// the batch with a one-thread context of its own (the UNet always, the ResNet in eval mode:
// networks whose images never meet). One parallel region per forward or backward instead of
// one per op (~600 for a UNet step): no thread waits at a barrier for one that sleeps or that
// the kernel descheduled, and the ops run without synchronisation.
//
// Ownership: an nn_rep owns its contexts; the network that uses it owns the replica models,
// which read its parameters (nn_net_share_params) and must be destroyed before the contexts.
//
// DIFFOOD_REPLICAS=0 in the environment turns replicas off (A/B measurements).
#ifndef DIFFOOD_NN_REP_H
#define DIFFOOD_NN_REP_H

#include <pthread.h>

#include "kernels/ops.h"

typedef struct {
    int n;          // replicas (0: none; the network runs on its own context)
    ops_ctx **ctx;  // n one-thread CPU contexts
} nn_rep;

// Creates min(threads, max_batch) one-thread contexts when `ctx` is a CPU context with more
// than one thread and max_batch >= 2 (rp->n = 0 otherwise, or with DIFFOOD_REPLICAS=0).
// ERR_NOMEM or context errors (rp is then empty).
int nn_rep_init(nn_rep *rp, ops_ctx *ctx, int max_batch);
// Images per replica for max_batch images.
int nn_rep_per(const nn_rep *rp, int max_batch);
void nn_rep_free(nn_rep *rp);

// A barrier for the replicas of one nn_rep_run, where their work meets (sync BatchNorm: every
// replica's partial statistics before any of them merges them). A replica that waits spins
// briefly, then sleeps on a condition variable: on a busy machine no thread burns the core that
// the last one needs. A failing replica (nn_rep_run marks it when fn returns an error) releases
// every waiter, now and later, with ERR_INTERNAL, so that none waits forever for it.
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int R, arrived;
    unsigned gen;   // completed barriers (read while spinning: atomic)
    int failed;     // replica that failed first, -1 none (atomic)
} nn_rep_sync;

int nn_rep_sync_init(nn_rep_sync *s); // ERR_INTERNAL when pthreads fail
void nn_rep_sync_free(nn_rep_sync *s);
// Waits until all R replicas of the current run have called it: 0, or ERR_INTERNAL (with a
// message) once a replica has failed.
int nn_rep_sync_wait(nn_rep_sync *s);

// fn(arg, r, i0, cnt) for r = 0..R-1 on R threads, replica r computing images i0..i0+cnt-1 of n
// (contiguous slices, as equal as can be; floor(n r / R) .. floor(n (r+1) / R), nn_rep_slice).
// sync (may be NULL) is the barrier fn may wait at: reset for R replicas first. Returns 0, or the
// failing replica's code with its message (messages are per thread, err.h): the first to fail
// when sync is given (the others only saw it at the barrier), else the lowest-numbered.
typedef int (*nn_rep_fn)(void *arg, int r, int i0, int cnt);
int nn_rep_run(int R, int n, nn_rep_fn fn, void *arg, nn_rep_sync *sync);
// Replica r's first image and image count of n over R.
void nn_rep_slice(int R, int n, int r, int *i0, int *cnt);

#endif
