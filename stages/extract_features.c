// extract-features: the classifier's logits and penultimate features (METHOD.md 5, 7) of clean
// images, and of the denoised repeats of a samples store, into a features store
// (docs/FORMATS.md "Features store").
//
//   extract-features --classifier CKPT (--images STORE | --samples STORE) --out STORE
//                    [--config FILE] [--set features.batch=N] [--limit N] [--shard I/N]
//                    [--threads N] [--device auto|cpu|cuda] [--force]
//
// Incremental (stage.h): the store's base key covers the classifier's key and the input's
// stable identity (the image store's key; the samples store's cache_key, else base_key, else
// key), never how many images, levels or repeats are asked for. Those form the request (meta
// `request`: {"begin":B,"end":E} for images, plus "levels" and "repeats" for samples), so a
// larger --limit or a samples store with more repeats computes only the records not yet there.
// The index range: the image store's 0..n-1 (a samples store's [begin, end)), cut to its first
// --limit indexes, then --shard I/N takes the contiguous part [I*n/N, (I+1)*n/N) of it. A
// shard's request carries "shard":[I,N], so that `dstore merge` of all N shards gives the store
// of the unsharded run; features of a samples store that is itself shard I/N (sample --shard)
// are shard I/N of the features of the joined samples (and take no --shard of their own).
// features.batch (at most the image store's size) is part of the key: the kernels' numbers
// depend on the batch size, so every call holds exactly that many slots at fixed places
// (fe_pass) and a resumed or extended store equals a fresh one bit for bit.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/samples.h"
#include "common/stage.h"
#include "common/store.h"
#include "common/train/ckpt.h"
#include "kernels/ops.h"

#define FE_VERSION 1
#define FE_MAX_LEVELS 32

static const cli_opt fe_opts[] = {
    {"classifier", "STORE", 0, "classifier checkpoint store (from train --model classifier)"},
    {"images", "STORE", 0, "clean image store (from ingest)"},
    {"samples", "STORE", 0, "samples store (from sample): its repeats and the clean images they came from"},
    {"out", "STORE", 0, "features store (created; extended when it holds fewer records of the same inputs)"},
    {"limit", "N", 0, "only the first N images (of the image store, or of the samples' image range)"},
    {"shard", "I/N", 0, "only part I of N (0 <= I < N) of the images: a contiguous index range"},
    {"force", NULL, 0, "replace an output store made from other inputs"},
    {0}};

static const cli_spec fe_spec = {
    "extract-features", "--classifier STORE (--images STORE | --samples STORE) --out STORE [options]",
    "Runs the classifier on clean images (tables logit, feature, label; key = image index) and, with "
    "--samples, on every denoised repeat (tables sample_logit, sample_feature; key = (index, level, repeat)). "
    "Commits every features.batch images; SIGINT/SIGTERM commit the current batch and exit 3; a rerun "
    "computes only the records that are missing.",
    fe_opts, CLI_STD_ALL, 0, 0};

// What the run reads.
typedef struct {
    int from_samples;
    const char *images_path;        // the clean image store (--images, or the samples' meta images)
    char *images_owned;             // malloc'd meta images of the samples store
    char images_key[HASH_HEX_LEN + 1];
    char *set;                      // image store meta name (else the directory's base name)
    int64_t count;                  // images in the image store
    int c, s;                       // channels, side of the images
    int has_labels;
    const char *samples_path;
    char *records_path;             // meta records of the samples store (NULL: the store itself)
    char *samples_id;               // the samples store's stable identity
    char *samples_cls_key;          // its meta classifier_key
    int n_levels, levels[FE_MAX_LEVELS], repeats;
    int64_t begin, end;             // the range this run asks for
    int shard_i, shard_n;           // the part it is (0, 1: not sharded)
} fe_input;

static void fe_input_free(fe_input *in) {
    free(in->images_owned);
    free(in->set);
    free(in->records_path);
    free(in->samples_id);
    free(in->samples_cls_key);
}

// meta[key] of s into *text, or NULL when absent (not an error).
static int fe_meta_opt(ts_store *s, const char *key, char **text) {
    *text = NULL;
    int rc = ts_meta_get(s, key, text);
    if (rc == ERR_NOTFOUND) {
        *text = NULL;
        return 0;
    }
    return rc < 0 ? rc : 0;
}

// The image store: key, size, shape (of record 0), labels, name.
static int fe_read_images(fe_input *in) {
    ts_store *s = NULL;
    ts_record_info ri;
    ts_key k;
    uint64_t n = 0;
    int rc = 0;
    ERR_TRY(stage_input_key(in->images_path, in->images_key));
    ERR_TRY(ts_open(&s, in->images_path, TS_RDONLY));
    rc = ts_count(s, "image", &n);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_INPUT, "%s: not an image store (no table image)", in->images_path);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, n == 0, ERR_INPUT, "%s: the image store holds no images", in->images_path);
    in->count = (int64_t)n;
    ts_key_u64(&k, 0);
    rc = ts_get_info(s, "image", &k, &ri);
    if (rc == ERR_NOTFOUND) rc = err_set(ERR_INPUT, "%s: table image has no record 0", in->images_path);
    ERR_GOTO(rc, rc);
    ERR_GOTO_IF(rc, ri.dtype != TS_U8 || ri.rank != 3 || ri.shape[1] != ri.shape[2] || ri.shape[0] < 1 || ri.shape[0] > 4,
                ERR_INPUT, "%s: image 0 is %s of rank %d, expected u8 (C, S, S) with 1..4 channels", in->images_path,
                ts_dtype_name(ri.dtype), ri.rank);
    in->c = (int)ri.shape[0];
    in->s = (int)ri.shape[1];
    rc = ts_table_exists(s, "label");
    ERR_GOTO(rc, rc);
    in->has_labels = rc;
    ERR_GOTO(rc, fe_meta_opt(s, "dataset", &in->set));
    if (!in->set) { // the directory's base name
        in->set = strdup(in->images_path);
        ERR_GOTO_IF(rc, !in->set, ERR_NOMEM, "out of memory");
        size_t len = strlen(in->set);
        while (len > 1 && in->set[len - 1] == '/') in->set[--len] = '\0';
        char *slash = strrchr(in->set, '/');
        if (slash && slash[1]) memmove(in->set, slash + 1, strlen(slash + 1) + 1);
    }
    rc = 0;
fail:
    ts_close(s);
    return rc;
}

// The samples store (common/samples.h: complete, made by sample, its cache entry there): its
// request, clean image store, records, classifier key and identity.
static int fe_read_samples(fe_input *in) {
    smp_view v;
    int rc = 0;
    ERR_TRY(smp_open(&v, in->samples_path));
    ERR_GOTO_IF(rc, v.req.n_levels < 1 || v.req.n_levels > FE_MAX_LEVELS || v.req.repeats < 1, ERR_CORRUPT,
                "%s: meta request has %d levels and %d repeats", in->samples_path, v.req.n_levels, v.req.repeats);
    in->n_levels = v.req.n_levels;
    memcpy(in->levels, v.req.levels, sizeof(int) * (size_t)v.req.n_levels);
    in->repeats = v.req.repeats;
    in->begin = v.req.begin;
    in->end = v.req.end;
    in->shard_i = v.req.shard_i;
    in->shard_n = v.req.shard_n;
    in->images_owned = strdup(v.images);
    in->images_path = in->images_owned;
    in->records_path = v.records ? strdup(v.records) : NULL;
    in->samples_cls_key = v.classifier_key[0] ? strdup(v.classifier_key) : NULL;
    in->samples_id = strdup(v.cache_key[0] ? v.cache_key : v.key);
    ERR_GOTO_IF(rc, !in->images_owned || !in->samples_id || (v.records && !in->records_path), ERR_NOMEM,
                "out of memory");
    ERR_GOTO(rc, fe_read_images(in));
    ERR_GOTO_IF(rc, v.images_key[0] && strcmp(v.images_key, in->images_key) != 0, ERR_INPUT,
                "%s: made from images of key %s, but its image store %s now has key %s (rerun sample)",
                in->samples_path, v.images_key, in->images_path, in->images_key);
    ERR_GOTO_IF(rc, in->end > in->count, ERR_INPUT, "%s: the request ends at image %lld, but %s holds %lld images",
                in->samples_path, (long long)in->end, in->images_path, (long long)in->count);
fail:
    smp_close(&v);
    return rc;
}

// The canonical request of this run.
static int fe_request(const fe_input *in, char **text) {
    cJSON *j = cJSON_CreateObject();
    ERR_IF(!j, ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(j, "begin", (double)in->begin);
    cJSON_AddNumberToObject(j, "end", (double)in->end);
    if (in->from_samples) {
        cJSON_AddItemToObject(j, "levels", cJSON_CreateIntArray(in->levels, in->n_levels));
        cJSON_AddNumberToObject(j, "repeats", in->repeats);
    }
    if (in->shard_n > 1) {
        int sh[2] = {in->shard_i, in->shard_n};
        cJSON_AddItemToObject(j, "shard", cJSON_CreateIntArray(sh, 2));
    }
    int rc = stage_canonical_json(j, text);
    cJSON_Delete(j);
    return rc;
}

static int fe_inputs(const fe_input *in, const char *cls_key, int batch, char **params, char **inputs) {
    cJSON *p = cJSON_CreateObject(), *q = cJSON_CreateObject();
    int rc = 0;
    ERR_GOTO_IF(rc, !p || !q, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(p, "source", in->from_samples ? "samples" : "images");
    cJSON_AddNumberToObject(p, "batch", batch); // see fe_pass
    cJSON_AddStringToObject(q, "classifier", cls_key);
    cJSON_AddStringToObject(q, "images", in->images_key);
    if (in->from_samples) cJSON_AddStringToObject(q, "samples", in->samples_id);
    ERR_GOTO(rc, stage_canonical_json(p, params));
    ERR_GOTO(rc, stage_canonical_json(q, inputs));
fail:
    cJSON_Delete(p);
    cJSON_Delete(q);
    return rc;
}

// --- the work -------------------------------------------------------------------------------

typedef struct {
    ts_store *out, *img, *rec; // rec: where `sample` lives (NULL for --images)
    const char *out_path, *rec_path;
    const fe_input *in;
    ckpt_classifier cls;
    int batch, K, D, P, resume;
    uint8_t *u8;               // (batch, P)
    float *x01, *logits, *feat; // (batch, P), (batch, K), (batch, D)
    uint32_t (*keys)[3];       // (batch) the gathered (index, level, repeat)
    int *slots;                // (batch) their slots in the batch
    uint64_t done, total;
} fe_run;

static int fe_put_vec(ts_store *s, const char *table, const ts_key *k, const float *v, int n) {
    ts_tensor t;
    int64_t shape[1] = {n};
    ERR_TRY(ts_tensor_init(&t, TS_F32, 1, shape, (void *)v));
    return ts_put(s, table, k, &t, TS_CODEC_SHUFFLE_ZSTD);
}

// Reads one input record into buf: u8 image `index`, or the f32 sample (index, level, repeat).
static int fe_read(fe_run *r, int sample, const uint32_t key[3], void *buf) {
    ts_key k;
    ts_tensor t;
    ts_store *s = sample ? r->rec : r->img;
    const char *table = sample ? "sample" : "image";
    if (sample) ts_key_tuple(&k, 3, key);
    else ts_key_u64(&k, key[0]);
    size_t cap = (size_t)r->P * (sample ? sizeof(float) : 1);
    int rc = ts_get_into(s, table, &k, &t, buf, cap);
    char kb[64];
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_INPUT, "%s: table %s has no record %s", ts_path(s), table, ts_key_format(&k, kb, sizeof kb));
    if (rc == ERR_INPUT || (rc >= 0 && (t.dtype != (sample ? TS_F32 : TS_U8) || (size_t)ts_tensor_numel(&t) != (size_t)r->P)))
        return err_set(ERR_INPUT, "%s: table %s, record %s is not %s (%d, %d, %d) like the images of %s", ts_path(s),
                       table, ts_key_format(&k, kb, sizeof kb), sample ? "f32" : "u8", r->in->c, r->in->s, r->in->s,
                       r->in->images_path);
    return rc < 0 ? rc : 0;
}

// Runs the classifier on the batch holding the n gathered inputs (in r->slots) and commits their records in one batch.
static int fe_flush(fe_run *r, int sample, int n) {
    if (n == 0) return 0;
    int rc = 0;
    ERR_TRY(ckpt_classifier_run(&r->cls, sample ? NULL : r->u8, sample ? r->x01 : NULL, r->batch, r->logits, r->feat));
    ERR_TRY(ts_begin_write(r->out));
    for (int i = 0; i < n; i++) {
        ts_key k;
        if (sample) ts_key_tuple(&k, 3, r->keys[i]);
        else ts_key_u64(&k, r->keys[i][0]);
        ERR_GOTO(rc, fe_put_vec(r->out, sample ? "sample_logit" : "logit", &k, r->logits + (size_t)r->slots[i] * r->K, r->K));
        ERR_GOTO(rc, fe_put_vec(r->out, sample ? "sample_feature" : "feature", &k, r->feat + (size_t)r->slots[i] * r->D, r->D));
        if (!sample && r->in->has_labels) {
            ts_tensor t;
            rc = ts_get(r->img, "label", &k, &t);
            if (rc == ERR_NOTFOUND)
                rc = err_set(ERR_INPUT, "%s: table label has no record %u", r->in->images_path, r->keys[i][0]);
            ERR_GOTO(rc, rc);
            rc = ts_put(r->out, "label", &k, &t, TS_CODEC_RAW);
            ts_tensor_free(&t);
            ERR_GOTO(rc, rc);
        }
    }
    ERR_GOTO(rc, ts_commit(r->out));
    r->done += (uint64_t)n;
    prog_update(r->done, NULL);
    return cli_check_interrupt();
fail:
    ts_abort(r->out);
    return rc;
}

// Whether the output lacks record `key` (always on a fresh store).
static int fe_missing(fe_run *r, int sample, const uint32_t key[3]) {
    if (!r->resume) return 1;
    ts_key k;
    if (sample) ts_key_tuple(&k, 3, key);
    else ts_key_u64(&k, key[0]);
    int rc = ts_has(r->out, sample ? "sample_logit" : "logit", &k);
    return rc < 0 ? rc : !rc;
}

// One pass over the requested records of a kind (clean images, or samples). The classifier's
// numbers depend on how many images a call holds and where (kernels pick their summation order
// by batch size), so every call has exactly `batch` slots and image i always sits in slot
// i % batch of the call of group i / batch (per level and repeat for samples); unused slots are
// zero. A record thus depends only on its input, whatever was computed before: a resumed or
// extended store equals a fresh one bit for bit. count != 0 only counts the missing records
// into r->total.
static int fe_pass(fe_run *r, int sample, int count) {
    const fe_input *in = r->in;
    int levels = sample ? in->n_levels : 1, reps = sample ? in->repeats : 1, B = r->batch;
    if (in->end <= in->begin) return 0;
    for (int64_t g = in->begin / B; g <= (in->end - 1) / B; g++)
        for (int l = 0; l < levels; l++)
            for (int q = 0; q < reps; q++) {
                int64_t i0 = g * B > in->begin ? g * B : in->begin, i1 = (g + 1) * B < in->end ? (g + 1) * B : in->end;
                int n = 0;
                for (int64_t i = i0; i < i1; i++) {
                    uint32_t key[3] = {(uint32_t)i, sample ? (uint32_t)in->levels[l] : 0, (uint32_t)q};
                    int m = fe_missing(r, sample, key);
                    ERR_TRY(m);
                    if (!m) continue;
                    if (count) {
                        r->total++;
                        continue;
                    }
                    if (n == 0) {
                        if (sample) memset(r->x01, 0, sizeof(float) * (size_t)B * r->P);
                        else memset(r->u8, 0, (size_t)B * r->P);
                    }
                    size_t slot = (size_t)(i - g * B);
                    memcpy(r->keys[n], key, sizeof key);
                    r->slots[n++] = (int)slot;
                    ERR_TRY(fe_read(r, sample, key, sample ? (void *)(r->x01 + slot * r->P) : (void *)(r->u8 + slot * r->P)));
                }
                ERR_TRY(fe_flush(r, sample, n));
            }
    return 0;
}

static int fe_meta(fe_run *r, const char *cls_path) {
    const fe_input *in = r->in;
    char buf[64], *abs = realpath(cls_path, NULL);
    int rc = 0;
    ERR_IF(!abs, ERR_IO, "%s: cannot resolve the path", cls_path);
    ERR_GOTO(rc, ts_begin_write(r->out));
    ERR_GOTO(rc, ts_meta_put(r->out, "classifier_key", r->cls.key));
    ERR_GOTO(rc, ts_meta_put(r->out, "classifier", abs));
    snprintf(buf, sizeof buf, "%d", r->K);
    ERR_GOTO(rc, ts_meta_put(r->out, "num_classes", buf));
    snprintf(buf, sizeof buf, "%d", r->D);
    ERR_GOTO(rc, ts_meta_put(r->out, "feature_dim", buf));
    ERR_GOTO(rc, ts_meta_put(r->out, "source", in->from_samples ? "samples" : "images"));
    ERR_GOTO(rc, ts_meta_put(r->out, "set", in->set));
    snprintf(buf, sizeof buf, "%lld", (long long)(in->end - in->begin));
    ERR_GOTO(rc, ts_meta_put(r->out, "n", buf));
    if (in->from_samples) {
        cJSON *lv = cJSON_CreateIntArray(in->levels, in->n_levels);
        char *t = lv ? cJSON_PrintUnformatted(lv) : NULL;
        cJSON_Delete(lv);
        ERR_GOTO_IF(rc, !t, ERR_NOMEM, "out of memory");
        rc = ts_meta_put(r->out, "levels", t);
        free(t);
        ERR_GOTO(rc, rc);
        snprintf(buf, sizeof buf, "%d", in->repeats);
        ERR_GOTO(rc, ts_meta_put(r->out, "repeats", buf));
    }
    ERR_GOTO(rc, stage_mark_complete(r->out));
    ERR_GOTO(rc, ts_commit(r->out));
fail:
    if (rc < 0) ts_abort(r->out);
    free(abs);
    return rc;
}

static int fe_alloc(fe_run *r) {
    size_t b = (size_t)r->batch;
    r->u8 = malloc(b * r->P);
    r->x01 = malloc(sizeof(float) * b * r->P);
    r->logits = malloc(sizeof(float) * b * r->K);
    r->feat = malloc(sizeof(float) * b * r->D);
    r->keys = malloc(sizeof *r->keys * b);
    r->slots = malloc(sizeof *r->slots * b);
    ERR_IF(!r->u8 || !r->x01 || !r->logits || !r->feat || !r->keys || !r->slots, ERR_NOMEM, "out of memory for a batch of %d", r->batch);
    return 0;
}

static void fe_free(fe_run *r) {
    ckpt_classifier_close(&r->cls);
    if (r->rec && r->rec != r->img) ts_close(r->rec);
    ts_close(r->img);
    ts_close(r->out);
    free(r->u8);
    free(r->x01);
    free(r->logits);
    free(r->feat);
    free(r->keys);
    free(r->slots);
}

static int fe_summary(const char *status, const char *out, const fe_input *in, uint64_t done) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    cJSON_AddStringToObject(x, "source", in->from_samples ? "samples" : "images");
    cJSON_AddNumberToObject(x, "begin", (double)in->begin);
    cJSON_AddNumberToObject(x, "end", (double)in->end);
    cJSON_AddNumberToObject(x, "computed", (double)done);
    int rc = cli_summary(stdout, status, x);
    cJSON_Delete(x);
    return rc;
}

// --- main -----------------------------------------------------------------------------------

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    char *params = NULL, *inputs = NULL, *request = NULL, cls_key[HASH_HEX_LEN + 1];
    ops_ctx *ctx = NULL;
    fe_input in;
    fe_run r;
    memset(&in, 0, sizeof in);
    memset(&r, 0, sizeof r);
    stage_state st;
    int rc = cli_parse(&a, &fe_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &fe_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    const char *cls = cli_get(a, "classifier"), *out = cli_get(a, "out"), *shard = cli_get(a, "shard");
    in.images_path = cli_get(a, "images");
    in.samples_path = cli_get(a, "samples");
    in.from_samples = in.samples_path != NULL;
    ERR_GOTO_IF(rc, !cls, ERR_USAGE, "--classifier STORE is required");
    ERR_GOTO_IF(rc, !out, ERR_USAGE, "--out STORE is required");
    ERR_GOTO_IF(rc, !in.images_path == !in.samples_path, ERR_USAGE, "give exactly one of --images and --samples");
    long limit = 0;
    int si = 0, sn = 1;
    ERR_GOTO(rc, cli_get_int(a, "limit", 0, &limit));
    ERR_GOTO_IF(rc, cli_has(a, "limit") && limit < 1, ERR_USAGE, "--limit must be at least 1");
    if (shard) ERR_GOTO(rc, smp_shard_parse(shard, &si, &sn));
    ERR_GOTO(rc, cli_load_config(a, &c));
    int batch = 0;
    ERR_GOTO(rc, cfg_get_int(c, "features.batch", &batch));
    ERR_GOTO_IF(rc, batch < 1, ERR_CONFIG, "features.batch must be at least 1, not %d", batch);
    ERR_GOTO(rc, cli_install_interrupt());

    // inputs, request, key: cheap, so that an up-to-date store is answered at once
    ERR_GOTO(rc, stage_input_key(cls, cls_key));
    if (in.from_samples) {
        ERR_GOTO(rc, fe_read_samples(&in));
        ERR_GOTO_IF(rc, in.samples_cls_key && strcmp(in.samples_cls_key, cls_key) != 0, ERR_INPUT,
                    "%s was made with another classifier (classifier_key %s) than %s (key %s)", in.samples_path,
                    in.samples_cls_key, cls, cls_key);
        ERR_GOTO_IF(rc, in.shard_n > 1 && (shard || limit > 0), ERR_USAGE,
                    "%s is shard %d/%d of its images (sample --shard): its features take no %s", in.samples_path,
                    in.shard_i, in.shard_n, shard ? "--shard" : "--limit");
    } else {
        ERR_GOTO(rc, fe_read_images(&in));
        in.begin = 0;
        in.end = in.count;
        in.shard_n = 1;
    }
    if (batch > in.count) batch = (int)in.count; // fewer slots than images in the store: a fixed layout too
    if (limit > 0 && in.end - in.begin > limit) in.end = in.begin + limit;
    int64_t n0 = in.end - in.begin, b0 = in.begin;
    in.begin = b0 + n0 * si / sn;
    in.end = b0 + n0 * (si + 1) / sn;
    if (sn > 1) {
        in.shard_i = si;
        in.shard_n = sn;
    }
    ERR_GOTO(rc, fe_inputs(&in, cls_key, batch, &params, &inputs));
    ERR_GOTO(rc, fe_request(&in, &request));
    stage_id id = {"extract-features", FE_VERSION, params, inputs, request};
    ERR_GOTO(rc, stage_probe(out, &id, cli_has(a, "force"), &st));
    if (st == STAGE_UP_TO_DATE) {
        log_info("%s: up to date", out);
        ERR_GOTO(rc, fe_summary("up to date", out, &in, 0));
        goto fail;
    }

    ops_options oo = ops_options_default();
    oo.threads = cli_threads(a);
    ERR_GOTO(rc, ops_ctx_create_named(&ctx, cli_device(a), &oo));
    rc = ckpt_classifier_open(&r.cls, cls, ctx, in.c, in.s, batch);
    if (rc == ERR_INPUT && strstr(err_msg(), "channel")) err_prefix(rc, "images %s: ", in.images_path); // a shape mismatch
    ERR_GOTO(rc, rc);
    r.in = &in;
    r.batch = batch;
    r.K = ckpt_classifier_classes(&r.cls);
    r.D = ckpt_classifier_feature_dim(&r.cls);
    r.P = in.c * in.s * in.s;
    r.out_path = out;
    ERR_GOTO(rc, fe_alloc(&r));
    ERR_GOTO(rc, ts_open(&r.img, in.images_path, TS_RDONLY));
    if (in.from_samples) {
        const char *rp = in.records_path ? in.records_path : in.samples_path;
        rc = ts_open(&r.rec, rp, TS_RDONLY);
        if (rc == ERR_NOTFOUND) err_prefix(rc, "%s: meta records: ", in.samples_path);
        ERR_GOTO(rc, rc);
    }

    ERR_GOTO(rc, stage_open_output(&r.out, out, &id, cli_has(a, "force"), &st));
    r.resume = st == STAGE_RESUME;
    if (st != STAGE_UP_TO_DATE) {
        for (int pass = 0; pass < 1 + in.from_samples; pass++) ERR_GOTO(rc, fe_pass(&r, pass, 1));
        log_info("%s: %s, %llu records to compute for images [%lld, %lld) of %s (%s)", out, stage_state_name(st),
                 (unsigned long long)r.total, (long long)in.begin, (long long)in.end,
                 in.from_samples ? in.samples_path : in.images_path, ops_device_name(ops_ctx_device(ctx)));
        prog_begin("extract-features", r.total);
        for (int pass = 0; pass < 1 + in.from_samples; pass++) ERR_GOTO(rc, fe_pass(&r, pass, 0));
        prog_end();
        ERR_GOTO(rc, fe_meta(&r, cls));
    }
    ERR_GOTO(rc, fe_summary("ok", out, &in, r.done));
fail:
    prog_end();
    fe_free(&r);
    ops_ctx_destroy(ctx);
    fe_input_free(&in);
    free(params);
    free(inputs);
    free(request);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
