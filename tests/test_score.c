// Tests of the OOD scores (common/ood/scores.h) against numpy/sklearn golden data made by
// tools/torchref/make_score_golden.py (tests/data/score: OpenOOD's formulas for MSP, MLS, EBO,
// MDS, KNN, ReAct, ViM and METHOD.md's DiffOOD global/local), and of bin/score ($DIFFOOD_BIN) end
// to end on features stores built here from the same data: every table equals the golden, meta,
// up to date, conflict/--force and the exit-2 inputs (missing NAME=, duplicate names, clean-image
// features as --id, another classifier, an empty set, NaN features).
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/npy.h"
#include "common/ood/scores.h"
#include "common/stage.h"
#include "common/store.h"
#include "tests/test_util.h"

#define GOLD "tests/data/score/"
#define NMETHODS 7

static const char *const methods[NMETHODS] = {"msp", "mls", "ebo", "mds", "knn", "react", "vim"};

typedef struct {
    npy_header h;
    void *data;
} arr;

static arr load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, GOLD "%s.npy", name);
    arr a;
    ck_assert_msg(npy_load(path, &a.h, &a.data) == 0, "cannot load %s (run tools/torchref/make_score_golden.py)", path);
    return a;
}

static void assert_close(const double *got, const double *want, int64_t n, const char *what) {
    for (int64_t j = 0; j < n; j++) {
        double tol = 1e-6 * fabs(want[j]) + 1e-9;
        ck_assert_msg(fabs(got[j] - want[j]) <= tol, "%s[%lld]: %.12g, golden %.12g", what, (long long)j, got[j], want[j]);
    }
}

// --- the library against the golden ------------------------------------------------------------

START_TEST(test_score_golden_lib) {
    arr trf = load("train_feature"), trl = load("train_label"), W = load("fc_weight"), b = load("fc_bias"),
        par = load("params");
    int64_t N = trf.h.shape[0];
    int D = (int)trf.h.shape[1], K = (int)W.h.shape[0];
    const double *pp = par.data;
    oscore_mds mds;
    oscore_knn knn;
    oscore_vim vim;
    ck_assert_int_eq(oscore_mds_fit(&mds, trf.data, trl.data, N, D, K, pp[4]), 0);
    ck_assert_int_eq(oscore_knn_fit(&knn, trf.data, N, D), 0);
    double thr = 0;
    ck_assert_int_eq(oscore_percentile(trf.data, N * D, 90.0, &thr), 0);
    assert_close(&thr, &pp[0], 1, "react threshold");
    ck_assert_int_eq(oscore_vim_default_dim(D), (int)pp[2]);
    ck_assert_int_eq(oscore_vim_default_dim(512), 256);
    ck_assert_int_eq(oscore_vim_default_dim(768), 512);
    ck_assert_int_eq(oscore_vim_default_dim(2048), 1000);
    ck_assert_int_eq(oscore_vim_fit(&vim, trf.data, N, D, W.data, b.data, K, 0), 0);
    ck_assert_int_eq(vim.dim, (int)pp[2]);
    assert_close(&vim.alpha, &pp[1], 1, "vim alpha");
    for (int s = 0; s < 2; s++) {
        const char *set = s ? "ood" : "id";
        char name[96];
        snprintf(name, sizeof name, "%s_logit", set);
        arr lg = load(name);
        snprintf(name, sizeof name, "%s_feature", set);
        arr ft = load(name);
        int64_t n = lg.h.shape[0];
        double *out = malloc(sizeof(double) * (size_t)n * 8);
        for (int m = 0; m < NMETHODS; m++) {
            switch (m) {
            case 0: oscore_msp(lg.data, n, K, out); break;
            case 1: oscore_mls(lg.data, n, K, out); break;
            case 2: oscore_ebo(lg.data, n, K, out); break;
            case 3: ck_assert_int_eq(oscore_mds_score(&mds, ft.data, n, out), 0); break;
            case 4: ck_assert_int_eq(oscore_knn_score(&knn, ft.data, n, (int)pp[3], out), 0); break;
            case 5: oscore_react(ft.data, n, D, W.data, b.data, K, thr, out); break;
            default: ck_assert_int_eq(oscore_vim_score(&vim, ft.data, n, out), 0); break;
            }
            snprintf(name, sizeof name, "%s_expect_%s", set, methods[m]);
            arr e = load(name);
            ck_assert_int_eq(e.h.shape[0], n);
            snprintf(name, sizeof name, "%s %s", set, methods[m]);
            assert_close(out, e.data, n, name);
            free(e.data);
        }
        for (int sp = 0; sp < 2; sp++) {
            const char *space = sp ? "feature" : "logit";
            snprintf(name, sizeof name, "%s_sample_%s", set, space);
            arr u = load(name);
            int L = (int)u.h.shape[1], R = (int)u.h.shape[2];
            double *g = malloc(sizeof(double) * (size_t)n * L), *l = malloc(sizeof(double) * (size_t)n * L);
            oscore_diffood(u.data, n, L, R, u.h.shape[3], g, l);
            for (int kd = 0; kd < 2; kd++) {
                snprintf(name, sizeof name, "%s_expect_diffood-%s-%s", set, kd ? "local" : "global", space);
                arr e = load(name);
                ck_assert_int_eq(e.h.shape[1], L);
                assert_close(kd ? l : g, e.data, n * L, name);
                free(e.data);
            }
            free(g);
            free(l);
            free(u.data);
        }
        free(out);
        free(lg.data);
        free(ft.data);
    }
    oscore_mds_free(&mds);
    oscore_knn_free(&knn);
    oscore_vim_free(&vim);
    // k beyond the train set is an input error
    double x;
    ck_assert_int_eq(oscore_knn_score(&knn, trf.data, 1, 1, &x), ERR_INPUT);
    free(trf.data);
    free(trl.data);
    free(W.data);
    free(b.data);
    free(par.data);
}
END_TEST

// --- stores for the stage ----------------------------------------------------------------------

static char cls_key[HASH_HEX_LEN + 1];

// A complete store made through the stage API with meta written by `fill`.
static ts_store *open_stage_store(const char *path, const char *stage, const char *tag) {
    char inputs[128];
    snprintf(inputs, sizeof inputs, "{\"tag\":\"%s\"}", tag);
    stage_id id = {.stage = stage, .version = 1, .params = "{}", .inputs = inputs};
    ts_store *s = NULL;
    stage_state st;
    ck_assert_int_eq(stage_open_output(&s, path, &id, 1, &st), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    return s;
}

static void put_f32(ts_store *s, const char *table, const ts_key *k, const float *v, int64_t dim) {
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 1, &dim, (void *)v), 0);
    ck_assert_int_eq(ts_put(s, table, k, &t, TS_CODEC_SHUFFLE_ZSTD), 0);
}

static void make_classifier(const char *path) {
    arr W = load("fc_weight"), b = load("fc_bias");
    ts_store *s = open_stage_store(path, "train", "cls");
    ts_key k;
    ts_tensor t;
    ck_assert_int_eq(ts_key_str(&k, "fc.weight"), 0);
    ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 2, W.h.shape, W.data), 0);
    ck_assert_int_eq(ts_put(s, "best_param", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_key_str(&k, "fc.bias"), 0);
    ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 1, b.h.shape, b.data), 0);
    ck_assert_int_eq(ts_put(s, "best_param", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_commit(s), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    char *key = tu_meta(s, "key");
    snprintf(cls_key, sizeof cls_key, "%s", key);
    free(key);
    ts_close(s);
    free(W.data);
    free(b.data);
}

enum { MK_SAMPLES = 1, MK_NAN = 2, MK_EMPTY = 4, MK_OTHER_CLS = 8 };

// A features store from the golden set `set` (train, id, ood).
static void make_features(const char *path, const char *set, unsigned flags) {
    char name[64];
    snprintf(name, sizeof name, "%s_logit", set);
    arr lg = load(name);
    snprintf(name, sizeof name, "%s_feature", set);
    arr ft = load(name);
    snprintf(name, sizeof name, "%s_label", set);
    arr lb = load(name);
    int64_t n = lg.h.shape[0], K = lg.h.shape[1], D = ft.h.shape[1];
    char tag[64];
    snprintf(tag, sizeof tag, "%s-%u", set, flags);
    ts_store *s = open_stage_store(path, "extract-features", tag);
    char num[32];
    ck_assert_int_eq(ts_meta_put(s, "classifier_key", (flags & MK_OTHER_CLS) ? "0123456789abcdef0123456789abcdef" : cls_key), 0);
    ck_assert_int_eq(ts_meta_put(s, "classifier", tu_path("cls")), 0);
    snprintf(num, sizeof num, "%lld", (long long)K);
    ck_assert_int_eq(ts_meta_put(s, "num_classes", num), 0);
    snprintf(num, sizeof num, "%lld", (long long)D);
    ck_assert_int_eq(ts_meta_put(s, "feature_dim", num), 0);
    ck_assert_int_eq(ts_meta_put(s, "source", (flags & MK_SAMPLES) ? "samples" : "images"), 0);
    ck_assert_int_eq(ts_meta_put(s, "set", strcmp(set, "id") == 0 ? "fashion_mnist" : set), 0);
    snprintf(num, sizeof num, "%lld", (flags & MK_EMPTY) ? 0LL : (long long)n);
    ck_assert_int_eq(ts_meta_put(s, "n", num), 0);
    if (flags & MK_NAN) ((float *)ft.data)[5] = NAN;
    for (int64_t j = 0; j < n && !(flags & MK_EMPTY); j++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, (uint64_t)j);
        put_f32(s, "logit", &k, (float *)lg.data + j * K, K);
        put_f32(s, "feature", &k, (float *)ft.data + j * D, D);
        ck_assert_int_eq(ts_tensor_init(&t, TS_I32, 0, NULL, (int32_t *)lb.data + j), 0);
        ck_assert_int_eq(ts_put(s, "label", &k, &t, TS_CODEC_RAW), 0);
    }
    if (flags & MK_SAMPLES) {
        arr lv = load("levels");
        snprintf(name, sizeof name, "%s_sample_logit", set);
        arr sl = load(name);
        snprintf(name, sizeof name, "%s_sample_feature", set);
        arr sf = load(name);
        int L = (int)sl.h.shape[1], R = (int)sl.h.shape[2];
        const int32_t *levels = lv.data;
        ck_assert_int_eq(ts_meta_put(s, "levels", "[0,120,240]"), 0);
        snprintf(num, sizeof num, "%d", R);
        ck_assert_int_eq(ts_meta_put(s, "repeats", num), 0);
        for (int64_t j = 0; j < n && !(flags & MK_EMPTY); j++)
            for (int i = 0; i < L; i++)
                for (int r = 0; r < R; r++) {
                    uint32_t kv[3] = {(uint32_t)j, (uint32_t)levels[i], (uint32_t)r};
                    ts_key k;
                    ts_key_tuple(&k, 3, kv);
                    int64_t pos = (j * L + i) * R + r;
                    put_f32(s, "sample_logit", &k, (float *)sl.data + pos * K, K);
                    put_f32(s, "sample_feature", &k, (float *)sf.data + pos * D, D);
                }
        free(lv.data);
        free(sl.data);
        free(sf.data);
    }
    ck_assert_int_eq(ts_commit(s), 0);
    ck_assert_int_eq(stage_mark_complete(s), 0);
    ts_close(s);
    free(lg.data);
    free(ft.data);
    free(lb.data);
}

static char errbuf[8192];

static int run_score(const char *const *args) { return tu_run_stderr("score", args, errbuf, sizeof errbuf); }

// The scores of one table and set from the store, in index order.
static void read_scores(ts_store *s, const char *table, uint32_t set, int64_t n, double *out) {
    for (int64_t j = 0; j < n; j++) {
        uint32_t kv[2] = {set, (uint32_t)j};
        ts_key k;
        ts_tensor t;
        ts_key_tuple(&k, 2, kv);
        ck_assert_msg(ts_get(s, table, &k, &t) == 0, "table %s record (%u, %lld)", table, set, (long long)j);
        ck_assert(t.dtype == TS_F64 && t.rank == 0);
        out[j] = *(double *)t.data;
        ts_tensor_free(&t);
    }
}

START_TEST(test_score_stage) {
    make_classifier(tu_path("cls"));
    make_features(tu_path("train"), "train", 0);
    make_features(tu_path("id"), "id", MK_SAMPLES);
    make_features(tu_path("ood"), "ood", MK_SAMPLES);
    char ood_arg[300];
    snprintf(ood_arg, sizeof ood_arg, "far=%s", tu_path("ood"));
    const char *args[] = {"--id", tu_path("id"), "--ood", ood_arg, "--train", tu_path("train"), "--out",
                          tu_path("scores"), NULL};
    ck_assert_msg(run_score(args) == 0, "score failed: %s", errbuf);
    char outbuf[4096];
    ck_assert_ptr_nonnull(strstr(tu_read_text(tu_path("stdout.txt"), outbuf, sizeof outbuf), "\"status\":\"ok\""));

    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, tu_path("scores"), TS_RDONLY), 0);
    double got[64];
    for (int set = 0; set < 2; set++) {
        const char *sn = set ? "ood" : "id";
        char name[96];
        for (int m = 0; m < NMETHODS; m++) {
            snprintf(name, sizeof name, "%s_expect_%s", sn, methods[m]);
            arr e = load(name);
            read_scores(s, methods[m], (uint32_t)set, e.h.shape[0], got);
            assert_close(got, e.data, e.h.shape[0], name);
            free(e.data);
        }
        static const char *const kinds[2] = {"global", "local"}, *const spaces[2] = {"logit", "feature"};
        static const int lv[2] = {120, 240};
        for (int kd = 0; kd < 2; kd++)
            for (int sp = 0; sp < 2; sp++) {
                snprintf(name, sizeof name, "%s_expect_diffood-%s-%s", sn, kinds[kd], spaces[sp]);
                arr e = load(name);
                int64_t n = e.h.shape[0], L = e.h.shape[1];
                double *col = malloc(sizeof(double) * (size_t)n);
                for (int i = 1; i < L; i++) {
                    char table[96];
                    snprintf(table, sizeof table, "diffood-%s-%s-t%d", kinds[kd], spaces[sp], lv[i - 1]);
                    read_scores(s, table, (uint32_t)set, n, got);
                    for (int64_t j = 0; j < n; j++) col[j] = ((double *)e.data)[j * L + i];
                    assert_close(got, col, n, table);
                }
                free(col);
                free(e.data);
            }
    }
    // meta
    char *sets = tu_meta(s, "sets"), *meth = tu_meta(s, "methods"), *acc = tu_meta(s, "accuracy"),
         *vd = tu_meta(s, "vim_dim"), *kk = tu_meta(s, "knn_k"), *rep = tu_meta(s, "repeats"),
         *lev = tu_meta(s, "levels"), *thr = tu_meta(s, "react_threshold"), *ck = tu_meta(s, "classifier_key"),
         *nc = tu_meta(s, "id_n_correct");
    cJSON *js = cJSON_Parse(sets), *jm = cJSON_Parse(meth);
    ck_assert_int_eq(cJSON_GetArraySize(js), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(js, 0), "name")->valuestring, "fashion_mnist");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(js, 0), "role")->valuestring, "id");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(js, 1), "name")->valuestring, "far");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(js, 1), "role")->valuestring, "ood");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(js, 1), "n")->valueint, 40);
    ck_assert_int_eq(cJSON_GetArraySize(jm), NMETHODS + 8);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jm, 0), "table")->valuestring, "msp");
    cJSON *d0 = cJSON_GetArrayItem(jm, NMETHODS);
    ck_assert_str_eq(cJSON_GetObjectItem(d0, "table")->valuestring, "diffood-global-logit-t120");
    ck_assert_str_eq(cJSON_GetObjectItem(d0, "family")->valuestring, "diffood");
    ck_assert_int_eq(cJSON_GetObjectItem(d0, "level")->valueint, 120);
    ck_assert_str_eq(vd, "8");
    ck_assert_str_eq(kk, "50");
    ck_assert_str_eq(rep, "2");
    ck_assert_str_eq(lev, "[0,120,240]");
    ck_assert_str_eq(ck, cls_key);
    arr par = load("params");
    assert_close((double[]){atof(thr)}, par.data, 1, "meta react_threshold");
    // accuracy from the golden logits and labels
    arr lg = load("id_logit"), lb = load("id_label");
    int64_t ok = 0, n = lg.h.shape[0], K = lg.h.shape[1];
    for (int64_t j = 0; j < n; j++) {
        const float *z = (float *)lg.data + j * K;
        int best = 0;
        for (int c = 1; c < K; c++)
            if (z[c] > z[best]) best = c;
        ok += best == ((int32_t *)lb.data)[j];
    }
    ck_assert_int_eq(atoll(nc), ok);
    ck_assert(fabs(atof(acc) - (double)ok / n) < 1e-12);
    cJSON_Delete(js);
    cJSON_Delete(jm);
    free(sets); free(meth); free(acc); free(vd); free(kk); free(rep); free(lev); free(thr); free(ck); free(nc);
    free(par.data); free(lg.data); free(lb.data);
    ts_close(s);

    // up to date, well under a second
    double t0 = tu_now();
    ck_assert_int_eq(run_score(args), 0);
    ck_assert_double_lt(tu_now() - t0, 1.0);
    ck_assert_ptr_nonnull(strstr(tu_read_text(tu_path("stdout.txt"), outbuf, sizeof outbuf), "up to date"));
    // other parameters: conflict, then --force
    const char *args2[] = {"--id", tu_path("id"), "--ood", ood_arg, "--train", tu_path("train"), "--out",
                           tu_path("scores"), "--set", "score.knn_k=10", NULL};
    ck_assert_int_eq(run_score(args2), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--force"));
    const char *args3[] = {"--id", tu_path("id"), "--ood", ood_arg, "--train", tu_path("train"), "--out",
                           tu_path("scores"), "--set", "score.knn_k=10", "--force", NULL};
    ck_assert_msg(run_score(args3) == 0, "%s", errbuf);
}
END_TEST

// Runs score with --id ID --ood OOD... --train TRAIN, expects exit 2 and `needle` in stderr.
static void expect_bad(const char *id, const char *ood1, const char *ood2, const char *train, const char *needle) {
    const char *args[16];
    int n = 0;
    args[n++] = "--id";
    args[n++] = id;
    args[n++] = "--ood";
    args[n++] = ood1;
    if (ood2) {
        args[n++] = "--ood";
        args[n++] = ood2;
    }
    args[n++] = "--train";
    args[n++] = train;
    args[n++] = "--out";
    args[n++] = tu_path("bad-scores");
    args[n] = NULL;
    int rc = run_score(args);
    ck_assert_msg(rc == 2, "expected exit 2 (%s), got %d: %s", needle, rc, errbuf);
    ck_assert_msg(strstr(errbuf, needle) != NULL, "stderr lacks '%s': %s", needle, errbuf);
    tu_assert_not_complete(tu_path("bad-scores"));
}

START_TEST(test_score_bad_inputs) {
    make_classifier(tu_path("cls"));
    make_features(tu_path("train"), "train", 0);
    make_features(tu_path("id"), "id", MK_SAMPLES);
    make_features(tu_path("ood"), "ood", MK_SAMPLES);
    make_features(tu_path("ood-clean"), "ood", 0);
    make_features(tu_path("ood-nan"), "ood", MK_SAMPLES | MK_NAN);
    make_features(tu_path("ood-empty"), "ood", MK_SAMPLES | MK_EMPTY);
    make_features(tu_path("ood-other"), "ood", MK_SAMPLES | MK_OTHER_CLS);
    char a[300], b2[300];
    const char *id = tu_path("id"), *tr = tu_path("train");
    expect_bad(id, tu_path("ood"), NULL, tr, "NAME=FEATURES");
    snprintf(a, sizeof a, "x=%s", tu_path("ood"));
    snprintf(b2, sizeof b2, "x=%s", tu_path("ood-nan"));
    expect_bad(id, a, b2, tr, "given twice");
    expect_bad(tr, a, NULL, tr, "DiffOOD needs features of samples");
    snprintf(b2, sizeof b2, "x=%s", tu_path("ood-clean"));
    expect_bad(id, b2, NULL, tr, "DiffOOD needs features of samples");
    snprintf(b2, sizeof b2, "x=%s", tu_path("ood-nan"));
    expect_bad(id, b2, NULL, tr, "non-finite");
    snprintf(b2, sizeof b2, "x=%s", tu_path("ood-empty"));
    expect_bad(id, b2, NULL, tr, "empty set");
    snprintf(b2, sizeof b2, "x=%s", tu_path("ood-other"));
    expect_bad(id, b2, NULL, tr, "another classifier");
    snprintf(b2, sizeof b2, "x=%s", tu_path("missing"));
    expect_bad(id, b2, NULL, tr, "missing");
    const char *help[] = {"--help", NULL}, *noood[] = {"--id", id, "--train", tr, "--out", tu_path("o"), NULL};
    ck_assert_int_eq(run_score(help), 0);
    ck_assert_int_eq(run_score(noood), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--ood"));
}
END_TEST

Suite *suite_score(void) {
    Suite *s = suite_create("score");
    TCase *tc = tcase_create("score");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_score_golden_lib);
    tcase_add_test(tc, test_score_stage);
    tcase_add_test(tc, test_score_bad_inputs);
    suite_add_tcase(s, tc);
    return s;
}
