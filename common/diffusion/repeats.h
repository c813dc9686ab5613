// repeats: the repeat samples of a samples store (common/samples.h), computed in fixed blocks.
//
// Block (level, repeat, b) is one denoising (denoise.h) of images [b G, (b + 1) G) of the image
// store at slots 0..G-1 (G = sample.batch); every UNet call holds exactly G images, a black image
// in the slots the request does not cover. The CPU kernels' last bits depend on a batch's size
// and an image's slot in it, never on the other images' values, so a record is the same whatever
// the request, shard, resume point or cache history (and sample.batch belongs to the store's base
// key). A block is computed when one of its records in the request is missing; it is committed
// in one write batch, and records already there are never rewritten.
#ifndef DIFFOOD_REPEATS_H
#define DIFFOOD_REPEATS_H

#include <stdint.h>

#include "common/diffusion/denoise.h"
#include "common/samples.h"
#include "common/store.h"

typedef struct {
    ts_store *rec;         // the store that holds table `sample` (written)
    dn_ctx *dn;            // built for at least `batch` jobs
    smp_request req;       // the records to have
    int batch;             // G
    int c, s;              // image channels and size
    const uint8_t *img;    // (req.end - req.begin, c, s, s) the request's clean images (host)
    const int32_t *pred;   // (req.end - req.begin) the guidance labels
    float *out;            // (batch, c, s, s) host scratch
    // Called once before the first block (done = 0) and after every block with the network
    // evaluations done and to do and the samples written so far; a negative return (an err.h
    // code, e.g. ERR_INTERRUPTED) stops the work after the committed block. May be NULL.
    int (*progress)(void *user, uint64_t done, uint64_t todo, int level, uint64_t computed);
    void *user;
} repeats_plan;

// Computes every missing record of the request. *computed (may be NULL) counts the records
// written. ERR_NOMEM, store, device and denoiser errors, or the progress callback's code.
int repeats_compute(const repeats_plan *p, uint64_t *computed);

#endif
