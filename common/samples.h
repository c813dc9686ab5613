// samples: the samples store of the `sample` stage (docs/FORMATS.md "Samples store"): its
// request (which levels, repeats and image range it is complete for) and a reader that follows
// a cache reference (meta `records`) to where the records live.
//
// Record keys: table `sample`, ts_key_tuple (index, level, repeat) -> f32 (C, H, W) in [0, 1];
// table `pred`, ts_key_u64 (index) -> f32 (2) [predicted label, max softmax].
#ifndef DIFFOOD_SAMPLES_H
#define DIFFOOD_SAMPLES_H

#include <stdint.h>

#include "common/hash.h"
#include "common/stage.h"
#include "common/store.h"

#define SMP_MAX_LEVELS 32

// What a samples store holds: every index in [begin, end), every level, repeats 0..repeats-1.
typedef struct {
    int n_levels;
    int levels[SMP_MAX_LEVELS]; // ascending, distinct
    int repeats;
    int64_t begin, end;
    int shard_i, shard_n; // 0, 1 when not sharded
} smp_request;

// Canonical JSON text of r (meta `request`): {"begin":B,"end":E,"levels":[...],"repeats":R}
// plus "shard":[I,N] when shard_n > 1. *text malloc'd (caller frees). ERR_NOMEM.
int smp_request_text(const smp_request *r, char **text);
// Parses meta `request` text into *r; ERR_CORRUPT naming `where` for anything malformed.
int smp_request_parse(smp_request *r, const char *text, const char *where);
// The image range of shard i of n over count images: [i*count/n, (i+1)*count/n).
void smp_shard_range(int64_t count, int i, int n, int64_t *begin, int64_t *end);
// Parses "I/N" (0 <= I < N): 0 or ERR_USAGE naming the text.
int smp_shard_parse(const char *text, int *i, int *n);

// Keys of the two record tables.
void smp_key(ts_key *k, uint32_t index, uint32_t level, uint32_t repeat);

// --- the writer's side (the sample stage) -------------------------------------------------------

// The store that holds the records of the samples store `out` (open for writing, at out_path):
// the cache entry its meta `records` names; else, with cache != NULL and no records of its own,
// the entry CACHE/sample-BASEKEY.store (created with stage "sample-cache" and base_id's params and
// inputs; its real path goes into meta `records`); else `out` itself (*rec == out: do not close
// it twice). Store errors; ERR_CONFLICT for an entry of other parameters.
int smp_records_open(ts_store *out, const char *out_path, const char *cache, const stage_id *base_id,
                     const char *base_key, ts_store **rec);
// 1 when the samples store at `path` names a cache entry (meta records) that no longer exists
// (a rerun must compute its records again); 0 otherwise, also when it cannot be read.
int smp_entry_lost(const char *path);

// --- the reader ----------------------------------------------------------------------------------

// A complete samples store opened for reading.
typedef struct {
    ts_store *own;   // the samples store
    ts_store *rec;   // where `sample` and `pred` live: `own`, or the cache entry named by `records`
    smp_request req;
    char *images;    // meta images: the clean image store's path (malloc'd)
    char key[HASH_HEX_LEN + 1], images_key[HASH_HEX_LEN + 1], classifier_key[HASH_HEX_LEN + 1],
        denoiser_key[HASH_HEX_LEN + 1];
    char cache_key[HASH_HEX_LEN + 1]; // what determines a record (empty when absent)
    char *records;   // meta records: the cache entry's path (malloc'd), or NULL
} smp_view;

// Opens the samples store at `path` read only: it must be complete (ERR_INPUT "incomplete ...
// (rerun sample)"), made by `sample` (ERR_INPUT otherwise), and its cache entry must exist
// (ERR_INPUT naming the missing entry). Release with smp_close.
int smp_open(smp_view *v, const char *path);
void smp_close(smp_view *v);
// Record (index, level, repeat) into buf (cap bytes); *t describes it. ERR_NOTFOUND naming the
// store and key when absent, ERR_CORRUPT.
int smp_get(smp_view *v, uint32_t index, uint32_t level, uint32_t repeat, ts_tensor *t, float *buf, size_t cap);
// The clean image's prediction [label, max softmax] into pred[2].
int smp_get_pred(smp_view *v, uint32_t index, float pred[2]);

#endif
