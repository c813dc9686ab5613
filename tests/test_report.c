// Suite report: the report stage end to end on scores stores built here with the store API
// (1 ID + 2 OOD sets with several levels, training logs and a samples store whose records sit in
// a cache entry; and 1 OOD set with one level): report.json holds every method with metrics
// equal to a direct ood_metrics computation, report.html is well-formed (python3 html.parser,
// balanced tags) with one ROC chart per OOD set and inlined pictures, stdout ends with the JSON
// summary; a missing or incomplete store, NaN scores and an empty set exit 2 naming the cause.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/ood/metrics.h"
#include "common/stage.h"
#include "common/store.h"
#include "tests/test_util.h"

#define RT_MAX_METHODS 8
#define RT_MAX_SETS 3

typedef struct {
    const char *table, *name, *family, *space, *kind;
    int level;
} rt_method;

typedef struct {
    int nsets, nmethods;
    size_t n[RT_MAX_SETS];
    double *scores[RT_MAX_METHODS][RT_MAX_SETS];
} rt_data;

static const char *const rt_set_names[RT_MAX_SETS] = {"fashion_mnist", "mnist", "kmnist"};

static const rt_method rt_methods3[] = {
    {"msp", "MSP", "baseline", "logit", "", -1},
    {"ebo", "EBO", "baseline", "logit", "", -1},
    {"knn", "KNN", "baseline", "feature", "", -1},
    {"mds", "MDS", "baseline", "feature", "", -1},
    {"diffood-global-logit-t120", "DiffOOD global", "diffood", "logit", "global", 120},
    {"diffood-global-logit-t240", "DiffOOD global", "diffood", "logit", "global", 240},
    {"diffood-local-logit-t240", "DiffOOD local", "diffood", "logit", "local", 240},
};
static const rt_method rt_methods1[] = {
    {"msp", "MSP", "baseline", "logit", "", -1},
    {"diffood-global-logit-t120", "DiffOOD global", "diffood", "logit", "global", 120},
};

static uint64_t rt_state;
static double rt_uniform(void) {
    rt_state = rt_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((rt_state >> 11) + 0.5) / 9007199254740992.0;
}
static double rt_normal(void) {
    return sqrt(-2 * log(rt_uniform())) * cos(6.283185307179586 * rt_uniform());
}

static void rt_free(rt_data *d) {
    for (int m = 0; m < d->nmethods; m++)
        for (int s = 0; s < d->nsets; s++) free(d->scores[m][s]);
}

// Writes a scores store at path: per method and set normal scores shifted by (set * (m + 1) /
// 4), rounded to 1/8 for the baselines (ties). bad: 1 -> a NaN in set 1 of the last method, 2
// -> set 1 of the last method empty; complete: mark the store complete.
static void rt_make_scores(const char *path, rt_data *d, const rt_method *ms, int nmethods, int nsets, int bad,
                           int complete) {
    memset(d, 0, sizeof *d);
    rt_state = 12345;
    d->nsets = nsets, d->nmethods = nmethods;
    size_t sizes[RT_MAX_SETS] = {300, 200, 150};
    ts_store *s = NULL;
    stage_id id = {.stage = "score", .version = 1, .params = "{}", .inputs = "{}"};
    stage_state st;
    ck_assert_int_eq(stage_open_output(&s, path, &id, 0, &st), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    cJSON *sets = cJSON_CreateArray(), *methods = cJSON_CreateArray();
    for (int k = 0; k < nsets; k++) {
        d->n[k] = sizes[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", rt_set_names[k]);
        cJSON_AddStringToObject(o, "role", k ? "ood" : "id");
        cJSON_AddNumberToObject(o, "n", (double)sizes[k]);
        cJSON_AddItemToArray(sets, o);
    }
    for (int m = 0; m < nmethods; m++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", ms[m].table);
        cJSON_AddStringToObject(o, "name", ms[m].name);
        cJSON_AddStringToObject(o, "family", ms[m].family);
        cJSON_AddStringToObject(o, "space", ms[m].space);
        if (*ms[m].kind) cJSON_AddStringToObject(o, "kind", ms[m].kind);
        if (ms[m].level >= 0) cJSON_AddNumberToObject(o, "level", ms[m].level);
        cJSON_AddItemToArray(methods, o);
        for (int k = 0; k < nsets; k++) {
            size_t n = bad == 2 && m == nmethods - 1 && k == 1 ? 0 : sizes[k];
            d->scores[m][k] = malloc((sizes[k] + 1) * sizeof(double));
            d->n[k] = sizes[k];
            for (size_t i = 0; i < n; i++) {
                double x = rt_normal() + k * (m + 1) / 4.0;
                if (strcmp(ms[m].family, "baseline") == 0) x = round(x * 8) / 8;
                if (bad == 1 && m == nmethods - 1 && k == 1 && i == 7) x = NAN;
                d->scores[m][k][i] = x;
                uint32_t v[2] = {(uint32_t)k, (uint32_t)i};
                ts_key key;
                ts_key_tuple(&key, 2, v);
                ts_tensor t;
                ck_assert_int_eq(ts_tensor_init(&t, TS_F64, 0, NULL, &d->scores[m][k][i]), 0);
                ck_assert_int_eq(ts_put(s, ms[m].table, &key, &t, TS_CODEC_RAW), 0);
            }
        }
    }
    char *t1 = cJSON_PrintUnformatted(sets), *t2 = cJSON_PrintUnformatted(methods);
    ck_assert_int_eq(ts_meta_put(s, "sets", t1), 0);
    ck_assert_int_eq(ts_meta_put(s, "methods", t2), 0);
    ck_assert_int_eq(ts_meta_put(s, "levels", "[0,120,240]"), 0);
    ck_assert_int_eq(ts_meta_put(s, "repeats", "4"), 0);
    ck_assert_int_eq(ts_meta_put(s, "accuracy", "0.9137"), 0);
    free(t1), free(t2);
    cJSON_Delete(sets), cJSON_Delete(methods);
    if (complete) ck_assert_int_eq(stage_mark_complete(s), 0);
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
}

// A checkpoint store with a `log` table (and `val_acc` for the classifier).
static void rt_make_ckpt(const char *path, const char *model) {
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    ck_assert_int_eq(ts_meta_put(s, "model", model), 0);
    for (int i = 0; i < 60; i++) {
        float row[5] = {(float)(i * 50), (float)(0.03 + 1.0 / (1 + i)), 1e-4f, 1.0f, 500.0f};
        ts_key k;
        ts_key_u64(&k, (uint64_t)i * 50);
        ts_tensor t;
        int64_t shape[1] = {5};
        ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 1, shape, row), 0);
        ck_assert_int_eq(ts_put(s, "log", &k, &t, TS_CODEC_RAW), 0);
    }
    for (int e = 0; strcmp(model, "classifier") == 0 && e < 10; e++) {
        float row[3] = {(float)e, (float)(0.8 + 0.01 * e), 0.5f};
        ts_key k;
        ts_key_u64(&k, (uint64_t)e);
        ts_tensor t;
        int64_t shape[1] = {3};
        ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 1, shape, row), 0);
        ck_assert_int_eq(ts_put(s, "val_acc", &k, &t, TS_CODEC_RAW), 0);
    }
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
}

// An image store of set `name` (10 grey 8x8 images) and a samples store whose records live in a
// cache entry store (meta `records`): levels 0, 120, 240, 2 repeats, images [0, 10).
static void rt_make_samples(const char *dir, const char *name) {
    char img[512], smp[512], rec[512];
    snprintf(img, sizeof img, "%s/images-%s", dir, name);
    snprintf(smp, sizeof smp, "%s/samples-%s", dir, name);
    snprintf(rec, sizeof rec, "%s/cache-%s", dir, name);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, img, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    ck_assert_int_eq(ts_meta_put(s, "dataset", name), 0);
    int64_t shape[3] = {1, 8, 8};
    for (int i = 0; i < 10; i++) {
        uint8_t px[64];
        for (int p = 0; p < 64; p++) px[p] = (uint8_t)(((p / 8 + p % 8 + i) % 4) * 80);
        ts_key k;
        ts_key_u64(&k, (uint64_t)i);
        ts_tensor t;
        ck_assert_int_eq(ts_tensor_init(&t, TS_U8, 3, shape, px), 0);
        ck_assert_int_eq(ts_put(s, "image", &k, &t, TS_CODEC_RAW), 0);
    }
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, rec, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    int levels[3] = {0, 120, 240};
    for (int i = 0; i < 10; i++)
        for (int l = 0; l < 3; l++)
            for (int q = 0; q < 2; q++) {
                float px[64];
                for (int p = 0; p < 64; p++) px[p] = (float)((p + i + l * 7 + q * 3) % 11) / 10.0f;
                uint32_t v[3] = {(uint32_t)i, (uint32_t)levels[l], (uint32_t)q};
                ts_key k;
                ts_key_tuple(&k, 3, v);
                ts_tensor t;
                ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 3, shape, px), 0);
                ck_assert_int_eq(ts_put(s, "sample", &k, &t, TS_CODEC_SHUFFLE_ZSTD), 0);
            }
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, smp, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_meta_put(s, "request", "{\"begin\":0,\"end\":10,\"levels\":[0,120,240],\"repeats\":2}"), 0);
    ck_assert_int_eq(ts_meta_put(s, "images", img), 0);
    ck_assert_int_eq(ts_meta_put(s, "records", rec), 0);
    ck_assert_int_eq(ts_meta_put(s, "stage", "sample"), 0); // a finished samples store (common/samples.h)
    ck_assert_int_eq(ts_meta_put(s, "complete", "true"), 0);
    ts_close(s);
}

// --- checks ------------------------------------------------------------------------------------

static int rt_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

// report.json holds every method with metrics equal to ood_metrics_compute on the same scores.
static void rt_check_json(const char *path, const rt_data *d, const rt_method *ms) {
    size_t n;
    char *text = tu_read_file(path, &n);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_msg(j != NULL, "%s does not parse", path);
    const cJSON *sets = cJSON_GetObjectItem(j, "sets"), *methods = cJSON_GetObjectItem(j, "methods");
    ck_assert_int_eq(cJSON_GetArraySize(sets), d->nsets);
    ck_assert_int_eq(cJSON_GetArraySize(methods), d->nmethods);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(j, "accuracy")->valuedouble, 0.9137, 1e-12);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "repeats")->valueint, 4);
    for (int k = 0; k < d->nsets; k++) {
        const cJSON *o = cJSON_GetArrayItem(sets, k);
        ck_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, rt_set_names[k]);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "n")->valueint, (int)d->n[k]);
    }
    for (int m = 0; m < d->nmethods; m++) {
        const cJSON *o = cJSON_GetArrayItem(methods, m);
        ck_assert_str_eq(cJSON_GetObjectItem(o, "table")->valuestring, ms[m].table);
        ck_assert_str_eq(cJSON_GetObjectItem(o, "family")->valuestring, ms[m].family);
        const cJSON *mm = cJSON_GetObjectItem(o, "metrics");
        for (int k = 1; k < d->nsets; k++) {
            ood_metrics want;
            ck_assert_int_eq(ood_metrics_compute(d->scores[m][0], d->n[0], d->scores[m][k], d->n[k], &want), 0);
            const cJSON *got = cJSON_GetObjectItem(mm, rt_set_names[k]);
            ck_assert_msg(got != NULL, "%s: no metrics for %s", ms[m].table, rt_set_names[k]);
            ck_assert_double_eq_tol(cJSON_GetObjectItem(got, "auroc")->valuedouble, want.auroc, 1e-12);
            ck_assert_double_eq_tol(cJSON_GetObjectItem(got, "aupr_in")->valuedouble, want.aupr_in, 1e-12);
            ck_assert_double_eq_tol(cJSON_GetObjectItem(got, "aupr_out")->valuedouble, want.aupr_out, 1e-12);
            ck_assert_double_eq_tol(cJSON_GetObjectItem(got, "fpr95")->valuedouble, want.fpr95, 1e-12);
        }
    }
    cJSON_Delete(j);
}

// report.html parses with python3's html.parser with balanced tags; returns its text.
static char *rt_check_html(const char *path) {
    const char *py = tu_put("check_html.py",
                            "import sys\nfrom html.parser import HTMLParser\n"
                            "VOID = {'meta','br','img','input','link','hr','wbr','col','area','base','source'}\n"
                            "class P(HTMLParser):\n"
                            "    def __init__(s):\n        super().__init__(); s.stack = []\n"
                            "    def handle_starttag(s, t, a):\n        if t not in VOID: s.stack.append(t)\n"
                            "    def handle_startendtag(s, t, a): pass\n"
                            "    def handle_endtag(s, t):\n"
                            "        if t in VOID: return\n"
                            "        assert s.stack and s.stack[-1] == t, 'unbalanced </%s> (open: %s)' % (t, s.stack[-3:])\n"
                            "        s.stack.pop()\n"
                            "p = P(); p.feed(open(sys.argv[1]).read()); p.close()\n"
                            "assert not p.stack, 'unclosed: %s' % p.stack\nprint('ok')\n");
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s", tu_python(), py, path);
    int rc = tu_capture(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "%s is not well-formed: %s", path, out);
    size_t n;
    char *html = tu_read_file(path, &n);
    // self-contained: nothing fetched from the network
    ck_assert_ptr_null(strstr(html, "src=\"http"));
    ck_assert_ptr_null(strstr(html, "<link"));
    return html;
}

// --- tests -------------------------------------------------------------------------------------

START_TEST(test_report_three_sets) {
    rt_data d;
    const int nm = (int)(sizeof rt_methods3 / sizeof rt_methods3[0]);
    rt_make_scores(tu_path("scores"), &d, rt_methods3, nm, 3, 0, 1);
    rt_make_ckpt(tu_path("denoiser"), "diffusion");
    rt_make_ckpt(tu_path("classifier"), "classifier");
    rt_make_samples(tu_dir, "fashion_mnist");
    rt_make_samples(tu_dir, "mnist");
    char s1[600], s2[600];
    snprintf(s1, sizeof s1, "%s", tu_path("samples-fashion_mnist"));
    snprintf(s2, sizeof s2, "mnist=%s", tu_path("samples-mnist"));
    const char *args[] = {"--scores", tu_path("scores"), "--train-log", tu_path("denoiser"), "--train-log",
                          tu_path("classifier"), "--samples", s1, "--samples", s2, "--out", tu_path("out"),
                          "--set", "report.near_ood=[mnist]", "--set", "report.far_ood=[kmnist]", "--set",
                          "report.pictures=4", NULL};
    char err[4096];
    int rc = tu_run_stderr("report", args, err, sizeof err);
    ck_assert_msg(rc == 0, "report failed (%d): %s", rc, err);
    rt_check_json(tu_path("out/report.json"), &d, rt_methods3);

    // groups: near = mnist, far = kmnist
    size_t n;
    char *text = tu_read_file(tu_path("out/report.json"), &n);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "methods"), 0);
    double near = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m0, "groups"), "near"), "auroc")->valuedouble;
    double mn = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m0, "metrics"), "mnist"), "auroc")->valuedouble;
    ck_assert_double_eq(near, mn);
    double far = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m0, "groups"), "far"), "auroc")->valuedouble;
    double km = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m0, "metrics"), "kmnist"), "auroc")->valuedouble;
    ck_assert_double_eq(far, km);
    ck_assert(near != far); // the two groups really hold different sets
    // the best level: that of the DiffOOD logit method with the highest mean AUROC over the OOD sets
    int best = -1;
    double best_mean = -1;
    for (int m = 0; m < nm; m++) {
        if (strcmp(rt_methods3[m].family, "diffood") != 0 || strcmp(rt_methods3[m].space, "logit") != 0) continue;
        double mean = 0;
        for (int k = 1; k < d.nsets; k++) {
            ood_metrics om;
            ck_assert_int_eq(ood_metrics_compute(d.scores[m][0], d.n[0], d.scores[m][k], d.n[k], &om), 0);
            mean += om.auroc / (d.nsets - 1);
        }
        if (mean > best_mean) best_mean = mean, best = m;
    }
    ck_assert_int_ge(best, 0);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "best_level")->valueint, rt_methods3[best].level);
    cJSON_Delete(j);

    char *html = rt_check_html(tu_path("out/report.html"));
    ck_assert_int_eq(rt_count(html, "<svg class=\"roc\""), 2);
    ck_assert_int_eq(rt_count(html, "<svg class=\"hist\""), 4);
    ck_assert_int_eq(rt_count(html, "<svg class=\"loss\""), 2);
    ck_assert_int_eq(rt_count(html, "<svg class=\"acc\""), 1);
    ck_assert_int_eq(rt_count(html, "src=\"data:image/png;base64,"), 2);
    ck_assert_int_eq(rt_count(html, "<tr class=\"diffood best\">") >= 1, 1);
    free(html);
    // DIFFOOD_REPORT_KEEP=DIR (an existing folder): keep the outputs to look at them
    const char *keep = getenv("DIFFOOD_REPORT_KEEP");
    if (keep && *keep) {
        char cmd[2048], o[256];
        snprintf(cmd, sizeof cmd, "cp -r %s/out/. %s/stdout.txt '%s'/", tu_dir, tu_dir, keep);
        ck_assert_int_eq(tu_capture(cmd, o, sizeof o), 0);
    }

    char *md = tu_read_file(tu_path("out/report.md"), &n);
    ck_assert_ptr_nonnull(strstr(md, "| kmnist |"));
    ck_assert_ptr_nonnull(strstr(md, "near-OOD"));
    free(md);
    char *out = tu_read_file(tu_path("stdout.txt"), &n);
    ck_assert_ptr_nonnull(strstr(out, "AUROC x100"));
    ck_assert_ptr_nonnull(strstr(out, "kmnist"));
    // the JSON summary is the last line
    ck_assert_uint_gt(n, 2);
    out[n - 1] = 0;
    char *last = strrchr(out, '\n');
    ck_assert_ptr_nonnull(last);
    ck_assert_msg(strncmp(last + 1, "{\"prog\":\"report\",", 17) == 0, "last line: %s", last + 1);
    free(out);
    rt_free(&d);
}
END_TEST

START_TEST(test_report_one_set_one_level) {
    rt_data d;
    rt_make_scores(tu_path("scores"), &d, rt_methods1, 2, 2, 0, 1);
    const char *args[] = {"--scores", tu_path("scores"), "--out", tu_path("out"), NULL};
    char err[4096];
    int rc = tu_run_stderr("report", args, err, sizeof err);
    ck_assert_msg(rc == 0, "report failed (%d): %s", rc, err);
    rt_check_json(tu_path("out/report.json"), &d, rt_methods1);
    char *html = rt_check_html(tu_path("out/report.html"));
    ck_assert_int_eq(rt_count(html, "<svg class=\"roc\""), 1);
    ck_assert_int_eq(rt_count(html, "<svg class=\"loss\""), 0);
    free(html);
    rt_free(&d);
}
END_TEST

START_TEST(test_report_bad_input) {
    char err[4096];
    const char *none[] = {"--scores", tu_path("nothing"), "--out", tu_path("out"), NULL};
    ck_assert_int_eq(tu_run_stderr("report", none, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "nothing"));
    const char *noargs[] = {NULL};
    ck_assert_int_eq(tu_run_stderr("report", noargs, err, sizeof err), 2);
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(tu_run_stderr("report", help, err, sizeof err), 0);

    rt_data d;
    rt_make_scores(tu_path("incomplete"), &d, rt_methods1, 2, 2, 0, 0);
    rt_free(&d);
    const char *inc[] = {"--scores", tu_path("incomplete"), "--out", tu_path("out"), NULL};
    ck_assert_int_eq(tu_run_stderr("report", inc, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "incomplete") && strstr(err, "incomplete store"), "%s", err);

    rt_make_scores(tu_path("nan"), &d, rt_methods1, 2, 2, 1, 1);
    rt_free(&d);
    const char *nan[] = {"--scores", tu_path("nan"), "--out", tu_path("out"), NULL};
    ck_assert_int_eq(tu_run_stderr("report", nan, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "diffood-global-logit-t120") && strstr(err, "'mnist'") && strstr(err, "NaN"), "%s", err);

    rt_make_scores(tu_path("empty"), &d, rt_methods1, 2, 2, 2, 1);
    rt_free(&d);
    const char *empty[] = {"--scores", tu_path("empty"), "--out", tu_path("out"), NULL};
    ck_assert_int_eq(tu_run_stderr("report", empty, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "diffood-global-logit-t120") && strstr(err, "'mnist' has no scores"), "%s", err);

    rt_make_scores(tu_path("ok"), &d, rt_methods1, 2, 2, 0, 1);
    rt_free(&d);
    const char *grp[] = {"--scores", tu_path("ok"), "--out", tu_path("out"), "--set", "report.near_ood=[svhn]", NULL};
    ck_assert_int_eq(tu_run_stderr("report", grp, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "svhn"));
}
END_TEST

Suite *suite_report(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_report_three_sets);
    tcase_add_test(tc, test_report_one_set_one_level);
    tcase_add_test(tc, test_report_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
