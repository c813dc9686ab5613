// cuda_host: where the CUDA backend meets the host: staged uploads, downloads, ops_sync and the
// deferred input checks (cuda_internal.h). Nothing here waits for the stream except at a
// synchronisation point (a download, ops_sync, a full ring or a full set of check words).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

#define CUDA_STAGE_MIN ((size_t)1 << 20)  // the ring's first size
#define CUDA_STAGE_MAX ((size_t)64 << 20) // larger uploads go synchronously from the caller's memory
#define CUDA_STAGE_ALIGN(x) (((x) + 255) & ~(size_t)255)

// --- setup ------------------------------------------------------------------------------------

int cuda_host_init(ops_ctx *ctx) {
    cuda_impl *im = cuda_impl_of(ctx);
    CUDA_CHECK(cudaMalloc((void **)&im->flags, sizeof(unsigned long long) * CUDA_FLAG_SLOTS));
    CUDA_CHECK(cudaMemsetAsync(im->flags, 0, sizeof(unsigned long long) * CUDA_FLAG_SLOTS, im->stream));
    for (int i = 0; i < CUDA_STAGE_USES; i++) {
        CUDA_CHECK(cudaEventCreateWithFlags(&im->stage_ev[i], cudaEventDisableTiming));
        im->stage_events = i + 1;
    }
    return 0;
}

void cuda_host_fini(cuda_impl *im) {
    if (im->stage) cudaFreeHost(im->stage);
    for (int i = 0; i < im->stage_events; i++) cudaEventDestroy(im->stage_ev[i]);
    if (im->flags) cudaFree(im->flags);
    im->stage = NULL;
    im->flags = NULL;
    im->stage_events = 0;
}

// --- deferred input checks --------------------------------------------------------------------

int cuda_flag_slot(ops_ctx *ctx, const char *op, cuda_flag_kind kind, int n, int limit, unsigned long long **slot) {
    cuda_impl *im = cuda_impl_of(ctx);
    if (im->flag_used == CUDA_FLAG_SLOTS) CUDA_TRY(cuda_sync_point(ctx));
    int i = im->flag_used++;
    cuda_flag_use u = {op, kind, n, limit};
    im->flag_use[i] = u;
    *slot = im->flags + i;
    return 0;
}

int cuda_sync_point(ops_ctx *ctx) {
    cuda_impl *im = cuda_impl_of(ctx);
    int used = im->flag_used;
    if (used)
        CUDA_CHECK(cudaMemcpyAsync(im->flag_host, im->flags, sizeof(unsigned long long) * used, cudaMemcpyDeviceToHost,
                                   im->stream));
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
    im->flag_used = 0;
    im->stage_first = im->stage_count = 0; // every staged copy has completed
    int bad = -1;
    for (int i = 0; i < used && bad < 0; i++)
        if (im->flag_host[i]) bad = i;
    if (bad < 0) return 0;
    CUDA_CHECK(cudaMemsetAsync(im->flags, 0, sizeof(unsigned long long) * used, im->stream));
    const cuda_flag_use *u = &im->flag_use[bad];
    unsigned long long w = im->flag_host[bad];
    int pos = u->n - (int)(w >> 32), v = (int)(unsigned)(w & 0xffffffffu);
    if (u->kind == CUDA_FLAG_LABEL)
        return cuda_err(ERR_INPUT, "%s: label %d of row %d is outside the %d classes", u->op, v, pos, u->limit);
    return cuda_err(ERR_INPUT, "%s: id %d at position %d is outside 0..%d", u->op, v, pos, u->limit - 1);
}

// --- staged uploads ---------------------------------------------------------------------------

// Room for `need` bytes at *off in the ring: waits (on its event) for the newest copy in flight
// that overlaps, and with it for every older one; grows the ring (after a full wait) when it is
// too small. 0 with *off, 1 when the upload should go synchronously, or an error.
static int cuda_stage_reserve(ops_ctx *ctx, size_t need, size_t *off) {
    cuda_impl *im = cuda_impl_of(ctx);
    if (need > CUDA_STAGE_MAX || im->stage_unavailable) return 1;
    if (need > im->stage_bytes) {
        size_t grow = im->stage_bytes ? im->stage_bytes : CUDA_STAGE_MIN;
        while (grow < need) grow *= 2;
        CUDA_CHECK(cudaStreamSynchronize(im->stream));
        im->stage_first = im->stage_count = 0;
        if (im->stage) CUDA_CHECK(cudaFreeHost(im->stage));
        im->stage = NULL;
        im->stage_bytes = im->stage_head = 0;
        if (cudaHostAlloc((void **)&im->stage, grow, cudaHostAllocDefault) != cudaSuccess) {
            (void)cudaGetLastError(); // no pinned memory: stay synchronous, and do not ask again
            im->stage = NULL;
            im->stage_unavailable = 1;
            return 1;
        }
        im->stage_bytes = grow;
    }
    size_t o = im->stage_head + need <= im->stage_bytes ? im->stage_head : 0;
    int last = -1; // position (from the oldest) of the newest overlapping copy in flight
    for (int k = 0; k < im->stage_count; k++) {
        const cuda_stage_use *u = &im->stage_use[(im->stage_first + k) % CUDA_STAGE_USES];
        if (u->off < o + need && o < u->off + u->len) last = k;
    }
    if (last < 0 && im->stage_count == CUDA_STAGE_USES) last = 0; // no free event: the oldest
    if (last >= 0) {
        // events complete in stream order: the newest overlapping done means all older are done
        CUDA_CHECK(cudaEventSynchronize(im->stage_ev[(im->stage_first + last) % CUDA_STAGE_USES]));
        im->stage_first = (im->stage_first + last + 1) % CUDA_STAGE_USES;
        im->stage_count -= last + 1;
    }
    *off = o;
    return 0;
}

int cuda_upload(ops_ctx *ctx, void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return 0;
    cuda_impl *im = cuda_impl_of(ctx);
    size_t off = 0;
    int rc = cuda_stage_reserve(ctx, CUDA_STAGE_ALIGN(bytes), &off);
    CUDA_TRY(rc);
    if (rc == 1) { // too large for the ring: straight from the caller's memory, then wait
        CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, im->stream));
        CUDA_CHECK(cudaStreamSynchronize(im->stream)); // the host buffer may be reused at once
        return 0;
    }
    memcpy(im->stage + off, host_src, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, im->stage + off, bytes, cudaMemcpyHostToDevice, im->stream));
    int slot = (im->stage_first + im->stage_count) % CUDA_STAGE_USES;
    CUDA_CHECK(cudaEventRecord(im->stage_ev[slot], im->stream));
    cuda_stage_use u = {off, CUDA_STAGE_ALIGN(bytes)};
    im->stage_use[slot] = u;
    im->stage_count++;
    im->stage_head = off + u.len;
    return 0;
}

// --- downloads and ops_sync: the synchronisation points ----------------------------------------

int cuda_download(ops_ctx *ctx, void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, cuda_impl_of(ctx)->stream));
    return cuda_sync_point(ctx);
}

int cuda_sync(ops_ctx *ctx) {
    CUDA_TRY(cuda_sync_point(ctx));
    CUDA_CHECK(cudaGetLastError());
    return 0;
}
