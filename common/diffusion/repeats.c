// repeats: the repeat samples of a samples store in fixed blocks (repeats.h).
#include <stdlib.h>

#include "common/diffusion/repeats.h"
#include "common/err.h"

// 1 when a record of [a, e) x (level, repeat) is missing.
static int repeats_missing(const repeats_plan *r, int64_t a, int64_t e, int level, int repeat) {
    for (int64_t i = a; i < e; i++) {
        ts_key key;
        smp_key(&key, (uint32_t)i, (uint32_t)level, (uint32_t)repeat);
        int h = ts_has(r->rec, "sample", &key);
        ERR_TRY(h);
        if (!h) return 1;
    }
    return 0;
}

// Puts the block's records of [a, e) that are not there yet (slot i - lo); *put counts them.
static int repeats_put(const repeats_plan *r, int64_t lo, int64_t a, int64_t e, int level, int repeat, uint64_t *put) {
    int rc = 0;
    int64_t shape[3] = {r->c, r->s, r->s};
    size_t per = (size_t)r->c * r->s * r->s;
    ERR_TRY(ts_begin_write(r->rec));
    for (int64_t i = a; i < e; i++) {
        ts_key k;
        ts_tensor t;
        smp_key(&k, (uint32_t)i, (uint32_t)level, (uint32_t)repeat);
        int h = ts_has(r->rec, "sample", &k);
        ERR_GOTO(rc, h);
        if (h) continue; // a record already there is never rewritten
        ts_tensor_init(&t, TS_F32, 3, shape, r->out + (size_t)(i - lo) * per);
        ERR_GOTO(rc, ts_put(r->rec, "sample", &k, &t, TS_CODEC_SHUFFLE_ZSTD));
        (*put)++;
    }
    return ts_commit(r->rec);
fail:
    ts_abort(r->rec);
    return rc;
}

int repeats_compute(const repeats_plan *r, uint64_t *computed) {
    const int G = r->batch;
    int64_t B = r->req.begin, E = r->req.end;
    size_t per = (size_t)r->c * r->s * r->s;
    dn_job *jobs = malloc(sizeof(dn_job) * (size_t)G);
    uint8_t *black = calloc(per, 1);
    uint64_t todo = 0, done = 0, put = 0; // progress in network evaluations (level 0: one per block)
    int rc = 0;
    ERR_GOTO_IF(rc, !jobs || !black, ERR_NOMEM, "out of memory");
    for (int pass = 0; pass < 2; pass++) // count, then compute
        for (int l = 0; l < r->req.n_levels; l++) {
            int level = r->req.levels[l], units = dn_evals(r->dn, level) + 1;
            for (int k = 0; k < r->req.repeats; k++)
                for (int64_t lo = B / G * G; lo < E; lo += G) {
                    int64_t a = lo > B ? lo : B, e = lo + G < E ? lo + G : E;
                    int miss = repeats_missing(r, a, e, level, k);
                    ERR_GOTO(rc, miss);
                    if (!miss) continue;
                    if (pass == 0) {
                        todo += (uint64_t)units;
                        continue;
                    }
                    if (done == 0 && r->progress) ERR_GOTO(rc, r->progress(r->user, 0, todo, level, put));
                    for (int s = 0; s < G; s++) {
                        int64_t i = lo + s;
                        int real = i >= B && i < E;
                        jobs[s] = (dn_job){real ? r->img + (size_t)(i - B) * per : black, (uint32_t)i, (uint32_t)k,
                                           real ? r->pred[i - B] : 0};
                    }
                    ERR_GOTO(rc, dn_run(r->dn, jobs, G, level, r->out));
                    ERR_GOTO(rc, repeats_put(r, lo, a, e, level, k, &put));
                    done += (uint64_t)units;
                    if (r->progress) ERR_GOTO(rc, r->progress(r->user, done, todo, level, put));
                }
        }
fail:
    if (computed) *computed = put;
    free(jobs);
    free(black);
    return rc;
}
