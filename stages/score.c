// score: the scoring stage (METHOD.md 7 and 9; docs/FORMATS.md "Scores store"). Reads the ID
// test features, one or more OOD features stores (made from samples) and the ID train features,
// and writes per-image scores, larger = more OOD: the baselines MSP, MLS, EBO, MDS, KNN, ReAct,
// ViM from the clean images and DiffOOD global/local in logit and feature space for every level
// but the first.
//
//   score --id FEATURES --ood NAME=FEATURES [--ood ...] --train FEATURES --out STORE
//         [--config FILE] [--set score.KEY=V] [--force]
//
// The store key covers the `score` config section and the keys (and names) of every features
// store. Everything is computed in memory, then written in batched commits and marked complete.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/ood/scores.h"
#include "common/stage.h"
#include "common/threads.h"

#define SCORE_VERSION 1
#define SCORE_BATCH 5000 // records per commit
#define SCORE_MAX_SETS 64
#define SCORE_BASELINES 7

static const cli_opt score_opts[] = {
    {"id", "FEATURES", 0, "features store of the ID test set (extract-features on samples)"},
    {"ood", "NAME=FEATURES", 1, "an OOD set: its name and features store (from samples); repeatable"},
    {"train", "FEATURES", 0, "features store of the ID training set (clean images, with labels)"},
    {"out", "STORE", 0, "scores store (created)"},
    {"force", NULL, 0, "replace a scores store made with other parameters or inputs"},
    {0}};

static const cli_spec score_spec = {
    "score", "--id FEATURES --ood NAME=FEATURES [--ood ...] --train FEATURES --out STORE [options]",
    "Scores every image of the ID and OOD sets, larger = more OOD: baselines msp, mls, ebo, mds, knn, react, vim "
    "(from the clean image's logits and features; mds, knn, react and vim fitted on the train features, react and "
    "vim with the classifier's fc read from its checkpoint) and DiffOOD global/local distances in logit and feature "
    "space for every noise level but the first. One table per method, key (set, index) -> f64; set 0 is the ID set.",
    score_opts, CLI_STD_CONFIG | CLI_STD_THREADS | CLI_STD_LOG, 0, 0};

static const char *const score_base_table[SCORE_BASELINES] = {"msp", "mls", "ebo", "mds", "knn", "react", "vim"};
static const char *const score_base_name[SCORE_BASELINES] = {"MSP", "MLS", "EBO", "MDS", "KNN", "ReAct", "ViM"};
static const char *const score_base_space[SCORE_BASELINES] = {"logit", "logit", "logit", "feature",
                                                              "feature", "feature", "feature"};

typedef struct {
    int knn_k, vim_dim;
    double react_pct, mds_eps;
} score_params;

typedef struct {
    int nsets, L, R, ntab;
    const char *name[SCORE_MAX_SETS];
    oscore_features feat[SCORE_MAX_SETS]; // set 0 = ID
    char **table;                          // (ntab) table names
    double **val;                          // (nsets * ntab) score arrays
} score_run;

// --- options and keys --------------------------------------------------------------------------

static int score_read_params(const cfg *c, score_params *p) {
    const char *space = NULL;
    ERR_TRY(cfg_get_int(c, "score.knn_k", &p->knn_k));
    ERR_TRY(cfg_get_int(c, "score.vim_dim", &p->vim_dim));
    ERR_TRY(cfg_get_float(c, "score.react_percentile", &p->react_pct));
    ERR_TRY(cfg_get_float(c, "score.mds_eps", &p->mds_eps));
    ERR_TRY(cfg_get_str(c, "score.space", &space));
    ERR_IF(p->knn_k < 1, ERR_CONFIG, "score.knn_k must be >= 1 (got %d)", p->knn_k);
    ERR_IF(p->vim_dim < 0, ERR_CONFIG, "score.vim_dim must be >= 0 (got %d)", p->vim_dim);
    ERR_IF(!(p->react_pct >= 0 && p->react_pct <= 100), ERR_CONFIG, "score.react_percentile must be in 0..100");
    ERR_IF(!(p->mds_eps >= 0), ERR_CONFIG, "score.mds_eps must be >= 0");
    ERR_IF(strcmp(space, "logit") != 0 && strcmp(space, "feature") != 0, ERR_CONFIG,
           "score.space must be logit or feature, not '%s'", space);
    return 0;
}

// Splits the --ood values into names and paths (borrowed from args / names strdup'd in `buf`).
static int score_parse_ood(const cli_args *a, const char **names, const char **paths, char **buf, int *n) {
    *n = (int)cli_count(a, "ood");
    ERR_IF(*n < 1, ERR_USAGE, "at least one --ood NAME=FEATURES is required");
    ERR_IF(*n >= SCORE_MAX_SETS, ERR_USAGE, "at most %d --ood sets", SCORE_MAX_SETS - 1);
    for (int i = 0; i < *n; i++) {
        const char *v = cli_value(a, "ood", (size_t)i), *eq = strchr(v, '=');
        ERR_IF(!eq || eq == v || !eq[1], ERR_USAGE, "--ood '%s': expected NAME=FEATURES (e.g. mnist=feat/mnist)", v);
        buf[i] = strndup(v, (size_t)(eq - v));
        ERR_IF(!buf[i], ERR_NOMEM, "out of memory");
        names[i] = buf[i];
        paths[i] = eq + 1;
        for (int j = 0; j < i; j++)
            ERR_IF(strcmp(names[j], names[i]) == 0, ERR_USAGE, "--ood name '%s' is given twice", names[i]);
    }
    return 0;
}

static int score_inputs(const char *id, const char *train, const char **names, const char **paths, int n,
                        char **text) {
    char k[HASH_HEX_LEN + 1];
    int rc = 0;
    cJSON *p = cJSON_CreateObject(), *ood = cJSON_AddArrayToObject(p, "ood");
    ERR_GOTO_IF(rc, !p || !ood, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, stage_input_key(id, k));
    cJSON_AddStringToObject(p, "id", k);
    ERR_GOTO(rc, stage_input_key(train, k));
    cJSON_AddStringToObject(p, "train", k);
    for (int i = 0; i < n; i++) {
        ERR_GOTO(rc, stage_input_key(paths[i], k));
        cJSON *o = cJSON_CreateObject();
        ERR_GOTO_IF(rc, !o, ERR_NOMEM, "out of memory");
        cJSON_AddItemToArray(ood, o);
        cJSON_AddStringToObject(o, "name", names[i]);
        cJSON_AddStringToObject(o, "features", k);
    }
    ERR_GOTO(rc, stage_canonical_json(p, text));
fail:
    cJSON_Delete(p);
    return rc;
}

// --- loading and checking the inputs -----------------------------------------------------------

static int score_check_like(const oscore_features *f, const oscore_features *train, const char *role) {
    ERR_IF(strcmp(f->classifier_key, train->classifier_key) != 0, ERR_INPUT,
           "%s (%s): made with another classifier (classifier_key %s) than the train features %s (%s)", f->path, role,
           f->classifier_key, train->path, train->classifier_key);
    ERR_IF(f->K != train->K || f->D != train->D, ERR_INPUT,
           "%s (%s): %d classes, feature_dim %d; the train features %s have %d, %d", f->path, role, f->K, f->D,
           train->path, train->K, train->D);
    return 0;
}

static int score_load(score_run *r, oscore_features *train, const char *id, const char *train_path,
                      const char **names, const char **paths, int n) {
    log_info("loading the features: train %s, id %s, %d OOD set%s", train_path, id, n, n == 1 ? "" : "s");
    ERR_TRY(oscore_features_load(train, train_path, 0));
    ERR_IF(!train->label, ERR_INPUT, "%s: the train features have no `label` table (MDS needs the labels)", train_path);
    r->nsets = n + 1;
    for (int s = 0; s < r->nsets; s++) {
        const char *path = s ? paths[s - 1] : id, *role = s ? "--ood" : "--id";
        oscore_features *f = &r->feat[s];
        ERR_TRY(oscore_features_load(f, path, 1));
        ERR_IF(strcmp(f->source, "samples") != 0, ERR_INPUT,
               "%s (%s): features of clean images (source '%s'); DiffOOD needs features of samples "
               "(run extract-features on a samples store)", path, role, f->source);
        ERR_TRY(score_check_like(f, train, role));
        r->name[s] = s ? names[s - 1] : (f->set[0] ? f->set : "id");
        if (s == 0) {
            r->L = f->L;
            r->R = f->R;
            ERR_IF(r->L < 2, ERR_INPUT, "%s: one noise level only; DiffOOD needs at least two", path);
        } else {
            int same = f->L == r->L && f->R == r->R;
            for (int i = 0; same && i < f->L; i++) same = f->levels[i] == r->feat[0].levels[i];
            ERR_IF(!same, ERR_INPUT, "%s (--ood %s): levels/repeats differ from the ID features %s", path, names[s - 1],
                   id);
        }
        for (int t = 0; t < s; t++)
            ERR_IF(strcmp(r->name[t], r->name[s]) == 0, ERR_USAGE, "set name '%s' is used twice (ID set name from "
                   "meta `set` of %s)", r->name[s], id);
    }
    return 0;
}

// --- computing ---------------------------------------------------------------------------------

static int score_tables(score_run *r) {
    r->ntab = SCORE_BASELINES + 4 * (r->L - 1);
    r->table = calloc((size_t)r->ntab, sizeof(char *));
    r->val = calloc((size_t)r->ntab * (size_t)r->nsets, sizeof(double *));
    ERR_IF(!r->table || !r->val, ERR_NOMEM, "out of memory");
    for (int t = 0; t < SCORE_BASELINES; t++) r->table[t] = strdup(score_base_table[t]);
    static const char *const space[2] = {"logit", "feature"}, *const kind[2] = {"global", "local"};
    int t = SCORE_BASELINES;
    for (int sp = 0; sp < 2; sp++)
        for (int kd = 0; kd < 2; kd++)
            for (int i = 1; i < r->L; i++) {
                char name[96];
                snprintf(name, sizeof name, "diffood-%s-%s-t%d", kind[kd], space[sp], r->feat[0].levels[i]);
                r->table[t++] = strdup(name);
            }
    for (int i = 0; i < r->ntab; i++) ERR_IF(!r->table[i], ERR_NOMEM, "out of memory");
    for (int s = 0; s < r->nsets; s++)
        for (int i = 0; i < r->ntab; i++) {
            r->val[s * r->ntab + i] = malloc(sizeof(double) * (size_t)r->feat[s].n);
            ERR_IF(!r->val[s * r->ntab + i], ERR_NOMEM, "out of memory");
        }
    return 0;
}

// DiffOOD tables of one set: (n, L) arrays scattered into the per-level tables.
static int score_diffood(score_run *r, int s) {
    const oscore_features *f = &r->feat[s];
    int L = r->L;
    double *g = malloc(sizeof(double) * (size_t)f->n * L), *l = malloc(sizeof(double) * (size_t)f->n * L);
    if (!g || !l) {
        free(g);
        free(l);
        return err_set(ERR_NOMEM, "out of memory (DiffOOD scores of %s)", f->path);
    }
    for (int sp = 0; sp < 2; sp++) {
        oscore_diffood(sp ? f->sample_feature : f->sample_logit, f->n, L, r->R, sp ? f->D : f->K, g, l);
        for (int kd = 0; kd < 2; kd++)
            for (int i = 1; i < L; i++) {
                double *dst = r->val[s * r->ntab + SCORE_BASELINES + (sp * 2 + kd) * (L - 1) + (i - 1)];
                for (int64_t j = 0; j < f->n; j++) dst[j] = (kd ? l : g)[j * L + i];
            }
    }
    free(g);
    free(l);
    return 0;
}

static int score_compute(score_run *r, const oscore_features *train, const score_params *p, const float *W,
                         const float *b, double *react_thr, int *vim_dim) {
    oscore_mds mds = {0};
    oscore_knn knn = {0};
    oscore_vim vim = {0};
    int K = train->K, D = train->D, rc = 0;
    ERR_GOTO_IF(rc, p->knn_k > train->n, ERR_CONFIG, "score.knn_k = %d exceeds the %lld train features of %s",
                p->knn_k, (long long)train->n, train->path);
    log_info("fitting MDS, KNN, ReAct and ViM on %lld train features (D = %d)", (long long)train->n, D);
    ERR_GOTO(rc, oscore_mds_fit(&mds, train->feature, train->label, train->n, D, K, p->mds_eps));
    ERR_GOTO(rc, oscore_knn_fit(&knn, train->feature, train->n, D));
    ERR_GOTO(rc, oscore_percentile(train->feature, train->n * D, p->react_pct, react_thr));
    ERR_GOTO(rc, oscore_vim_fit(&vim, train->feature, train->n, D, W, b, K, p->vim_dim));
    *vim_dim = vim.dim;
    ERR_GOTO(rc, cli_check_interrupt());
    for (int s = 0; s < r->nsets; s++) {
        const oscore_features *f = &r->feat[s];
        double **v = r->val + s * r->ntab;
        log_info("scoring %s: %lld images", r->name[s], (long long)f->n);
        oscore_msp(f->logit, f->n, K, v[0]);
        oscore_mls(f->logit, f->n, K, v[1]);
        oscore_ebo(f->logit, f->n, K, v[2]);
        ERR_GOTO(rc, oscore_mds_score(&mds, f->feature, f->n, v[3]));
        ERR_GOTO(rc, oscore_knn_score(&knn, f->feature, f->n, p->knn_k, v[4]));
        oscore_react(f->feature, f->n, D, W, b, K, *react_thr, v[5]);
        ERR_GOTO(rc, oscore_vim_score(&vim, f->feature, f->n, v[6]));
        ERR_GOTO(rc, score_diffood(r, s));
        for (int t = 0; t < r->ntab; t++)
            for (int64_t j = 0; j < f->n; j++)
                ERR_GOTO_IF(rc, !isfinite(v[t][j]), ERR_INPUT, "%s: score '%s' of image %u is not finite", f->path,
                            r->table[t], f->index[j]);
        ERR_GOTO(rc, cli_check_interrupt());
    }
fail:
    oscore_mds_free(&mds);
    oscore_knn_free(&knn);
    oscore_vim_free(&vim);
    return rc;
}

// --- writing -----------------------------------------------------------------------------------

static int score_meta_json(ts_store *st, const char *key, cJSON *j) {
    char *text = NULL;
    int rc = stage_canonical_json(j, &text);
    if (rc == 0) rc = ts_meta_put(st, key, text);
    free(text);
    return rc;
}

static int score_meta(ts_store *st, const score_run *r, const oscore_features *train, const score_params *p,
                      double thr, int vim_dim, int64_t *n_correct) {
    int rc = 0;
    char num[64];
    cJSON *sets = cJSON_CreateArray(), *methods = cJSON_CreateArray(), *levels = cJSON_CreateArray();
    ERR_GOTO_IF(rc, !sets || !methods || !levels, ERR_NOMEM, "out of memory");
    for (int s = 0; s < r->nsets; s++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(sets, o);
        cJSON_AddStringToObject(o, "name", r->name[s]);
        cJSON_AddStringToObject(o, "role", s ? "ood" : "id");
        cJSON_AddNumberToObject(o, "n", (double)r->feat[s].n);
        cJSON_AddStringToObject(o, "features_key", r->feat[s].key);
        cJSON_AddStringToObject(o, "features", r->feat[s].path);
    }
    for (int t = 0; t < r->ntab; t++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(methods, o);
        cJSON_AddStringToObject(o, "table", r->table[t]);
        if (t < SCORE_BASELINES) {
            cJSON_AddStringToObject(o, "name", score_base_name[t]);
            cJSON_AddStringToObject(o, "family", "baseline");
            cJSON_AddStringToObject(o, "space", score_base_space[t]);
        } else {
            int q = t - SCORE_BASELINES, sp = q / (2 * (r->L - 1)), kd = (q / (r->L - 1)) % 2, i = q % (r->L - 1) + 1;
            cJSON_AddStringToObject(o, "name", kd ? "DiffOOD local" : "DiffOOD global");
            cJSON_AddStringToObject(o, "family", "diffood");
            cJSON_AddStringToObject(o, "space", sp ? "feature" : "logit");
            cJSON_AddStringToObject(o, "kind", kd ? "local" : "global");
            cJSON_AddNumberToObject(o, "level", r->feat[0].levels[i]);
        }
    }
    for (int i = 0; i < r->L; i++) cJSON_AddItemToArray(levels, cJSON_CreateNumber(r->feat[0].levels[i]));
    ERR_GOTO(rc, score_meta_json(st, "sets", sets));
    ERR_GOTO(rc, score_meta_json(st, "methods", methods));
    ERR_GOTO(rc, score_meta_json(st, "levels", levels));
    snprintf(num, sizeof num, "%d", r->R);
    ERR_GOTO(rc, ts_meta_put(st, "repeats", num));
    snprintf(num, sizeof num, "%d", vim_dim);
    ERR_GOTO(rc, ts_meta_put(st, "vim_dim", num));
    snprintf(num, sizeof num, "%d", p->knn_k);
    ERR_GOTO(rc, ts_meta_put(st, "knn_k", num));
    snprintf(num, sizeof num, "%.17g", thr);
    ERR_GOTO(rc, ts_meta_put(st, "react_threshold", num));
    ERR_GOTO(rc, ts_meta_put(st, "classifier_key", train->classifier_key));
    const oscore_features *id = &r->feat[0];
    if (id->label) {
        int64_t ok = 0;
        for (int64_t j = 0; j < id->n; j++) {
            const float *z = id->logit + j * id->K;
            int best = 0;
            for (int c = 1; c < id->K; c++)
                if (z[c] > z[best]) best = c;
            ok += best == id->label[j];
        }
        *n_correct = ok;
        snprintf(num, sizeof num, "%.17g", (double)ok / (double)id->n);
        ERR_GOTO(rc, ts_meta_put(st, "accuracy", num));
        snprintf(num, sizeof num, "%lld", (long long)ok);
        ERR_GOTO(rc, ts_meta_put(st, "id_n_correct", num));
    }
fail:
    cJSON_Delete(sets);
    cJSON_Delete(methods);
    cJSON_Delete(levels);
    return rc;
}

// Writes every score record in batches of SCORE_BATCH, polling for SIGINT/SIGTERM after each.
static int score_write(ts_store *st, const score_run *r, uint64_t *records) {
    uint64_t total = 0, done = 0, in_batch = 0;
    for (int s = 0; s < r->nsets; s++) total += (uint64_t)r->feat[s].n * (uint64_t)r->ntab;
    prog_begin("write", total);
    ERR_TRY(ts_begin_write(st));
    for (int t = 0; t < r->ntab; t++)
        for (int s = 0; s < r->nsets; s++)
            for (int64_t j = 0; j < r->feat[s].n; j++) {
                uint32_t kv[2] = {(uint32_t)s, r->feat[s].index[j]};
                ts_key k;
                ts_tensor x;
                ts_key_tuple(&k, 2, kv);
                ERR_TRY(ts_tensor_init(&x, TS_F64, 0, NULL, &r->val[s * r->ntab + t][j]));
                ERR_TRY(ts_put(st, r->table[t], &k, &x, TS_CODEC_RAW));
                done++;
                if (++in_batch == SCORE_BATCH) {
                    ERR_TRY(ts_commit(st));
                    prog_update(done, NULL);
                    ERR_TRY(cli_check_interrupt());
                    ERR_TRY(ts_begin_write(st));
                    in_batch = 0;
                }
            }
    prog_end();
    *records = done;
    return 0;
}

static void score_run_free(score_run *r) {
    for (int s = 0; s < r->nsets; s++) oscore_features_free(&r->feat[s]);
    for (int i = 0; r->val && i < r->ntab * r->nsets; i++) free(r->val[i]);
    for (int i = 0; r->table && i < r->ntab; i++) free(r->table[i]);
    free(r->val);
    free(r->table);
}

static int score_summary(const char *status, const char *out, const score_run *r, uint64_t records, double acc) {
    cJSON *x = cJSON_CreateObject();
    ERR_IF(!x, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(x, "out", out);
    if (r) {
        cJSON_AddNumberToObject(x, "sets", r->nsets);
        cJSON_AddNumberToObject(x, "methods", r->ntab);
        cJSON_AddNumberToObject(x, "records", (double)records);
        if (acc >= 0) cJSON_AddNumberToObject(x, "accuracy", acc);
    }
    int rc = cli_summary(stdout, status, x);
    cJSON_Delete(x);
    return rc;
}

int main(int argc, char **argv) {
    cli_args *a = NULL;
    cfg *c = NULL;
    char *params = NULL, *inputs = NULL, *ood_names[SCORE_MAX_SETS] = {0};
    const char *names[SCORE_MAX_SETS], *paths[SCORE_MAX_SETS];
    float *W = NULL, *b = NULL;
    ts_store *st = NULL;
    score_run run;
    oscore_features train;
    memset(&run, 0, sizeof run);
    memset(&train, 0, sizeof train);
    score_params p;
    stage_state state;
    int nood = 0;
    int rc = cli_parse(&a, &score_spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &score_spec);
        cli_args_free(a);
        return 0;
    }
    if (rc < 0) goto fail;
    const char *id = cli_get(a, "id"), *trainp = cli_get(a, "train"), *out = cli_get(a, "out");
    ERR_GOTO_IF(rc, !id, ERR_USAGE, "--id FEATURES is required");
    ERR_GOTO_IF(rc, !trainp, ERR_USAGE, "--train FEATURES is required");
    ERR_GOTO_IF(rc, !out, ERR_USAGE, "--out STORE is required");
    ERR_GOTO(rc, score_parse_ood(a, names, paths, ood_names, &nood));
    ERR_GOTO(rc, cli_load_config(a, &c));
    ERR_GOTO(rc, score_read_params(c, &p));
    omp_set_num_threads(thr_count(cli_threads(a)));
    openblas_set_num_threads(thr_count(cli_threads(a)));
    ERR_GOTO(rc, cli_install_interrupt());
    ERR_GOTO(rc, cfg_canonical(c, "score", &params));
    ERR_GOTO(rc, score_inputs(id, trainp, names, paths, nood, &inputs));
    stage_id sid = {.stage = "score", .version = SCORE_VERSION, .params = params, .inputs = inputs};
    ERR_GOTO(rc, stage_probe(out, &sid, cli_has(a, "force"), &state));
    if (state == STAGE_UP_TO_DATE) {
        log_info("%s: up to date", out);
        ERR_GOTO(rc, score_summary("up to date", out, NULL, 0, -1));
        goto fail;
    }
    ERR_GOTO(rc, score_load(&run, &train, id, trainp, names, paths, nood));
    const char *clsp = train.classifier ? train.classifier : run.feat[0].classifier;
    ERR_GOTO_IF(rc, !clsp, ERR_INPUT, "%s: no meta `classifier` (the checkpoint path ReAct and ViM read the fc from)",
                trainp);
    char ckey[HASH_HEX_LEN + 1];
    ERR_GOTO(rc, stage_input_key(clsp, ckey));
    ERR_GOTO_IF(rc, strcmp(ckey, train.classifier_key) != 0, ERR_INPUT,
                "%s: the classifier checkpoint there (key %s) is not the one the features were made with (%s)", clsp,
                ckey, train.classifier_key);
    ERR_GOTO(rc, oscore_load_fc(clsp, train.K, train.D, &W, &b));
    ERR_GOTO(rc, score_tables(&run));
    double thr = 0;
    int vim_dim = 0;
    ERR_GOTO(rc, score_compute(&run, &train, &p, W, b, &thr, &vim_dim));

    ERR_GOTO(rc, stage_open_output(&st, out, &sid, cli_has(a, "force"), &state));
    log_info("%s: %s, %d sets, %d tables, ReAct threshold %.6g, ViM dim %d", out, stage_state_name(state), run.nsets,
             run.ntab, thr, vim_dim);
    uint64_t records = 0;
    int64_t n_correct = -1;
    ERR_GOTO(rc, score_write(st, &run, &records));
    ERR_GOTO(rc, score_meta(st, &run, &train, &p, thr, vim_dim, &n_correct));
    ERR_GOTO(rc, ts_commit(st));
    ERR_GOTO(rc, stage_mark_complete(st));
    ERR_GOTO(rc, score_summary("ok", out, &run, records, n_correct >= 0 ? (double)n_correct / run.feat[0].n : -1));
fail:
    ts_close(st);
    score_run_free(&run);
    oscore_features_free(&train);
    for (int i = 0; i < SCORE_MAX_SETS; i++) free(ood_names[i]);
    free(W);
    free(b);
    free(params);
    free(inputs);
    cfg_free(c);
    cli_args_free(a);
    return rc < 0 ? cli_fail(rc) : 0;
}
