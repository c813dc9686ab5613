// End-to-end tests of the tiny workflow (workflows/ci-tiny.mk) run by GNU make with the stage
// binaries of $DIFFOOD_BIN, from the checkout's root (where `make test` runs): the report names
// every method, reruns run no stage, -n plans without running, more repeats compute only the new
// samples, a SIGKILL mid-run resumes to the same stores, a second experiment takes every sample
// from the cache, a classifier change leaves the denoiser alone, a broken config or a missing
// input stops before any stage, and -j2 and SHARDS=3 (shards joined by dstore merge) give the
// stores of -j1.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/store.h"
#include "tests/test_util.h"

static char wf_out[1 << 16];

// Runs `make -f workflows/ci-tiny.mk BIN=... VARS` (stdout and stderr into wf_out); exit status.
static int wf_make(const char *vars) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "make --no-print-directory -f workflows/ci-tiny.mk BIN=%s THREADS=1 %s", tu_bin(), vars);
    return tu_capture(cmd, wf_out, sizeof wf_out);
}

// Number of stage commands make ran (lines starting with the binaries' folder).
static int wf_stages_run(const char *stage) {
    char pat[1024];
    snprintf(pat, sizeof pat, "%s/%s", tu_bin(), stage ? stage : "");
    int n = 0;
    for (const char *p = wf_out; (p = strstr(p, pat)); p++)
        if (p == wf_out || p[-1] == '\n') n++;
    return n;
}

// Sum of "computed" of every JSON summary of `prog` in the output.
static long wf_computed(const char *prog) {
    char pat[128];
    snprintf(pat, sizeof pat, "{\"prog\":\"%s\"", prog);
    long sum = 0;
    for (const char *p = wf_out; (p = strstr(p, pat)); p++) {
        const char *c = strstr(p, "\"computed\":"), *e = strchr(p, '\n');
        if (c && (!e || c < e)) sum += atol(c + 11);
    }
    return sum;
}

static int wf_diff(const char *a, const char *b) {
    char cmd[2048], out[8192];
    // a checkpoint's log holds images/s (wall-clock) and meta holds paths of the other folder;
    // every record must be bit-identical and the store keys equal
    snprintf(cmd, sizeof cmd, "%s/dstore diff --skip log --no-meta '%s' '%s'", tu_bin(), a, b);
    int st = tu_capture(cmd, out, sizeof out);
    if (st) fprintf(stderr, "%s\n%s\n", cmd, out);
    ts_store *sa = NULL, *sb = NULL;
    ck_assert_int_eq(ts_open(&sa, a, TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&sb, b, TS_RDONLY), 0);
    char *ka = tu_meta(sa, "key"), *kb = tu_meta(sb, "key");
    ck_assert_ptr_nonnull(ka);
    ck_assert_ptr_nonnull(kb);
    if (strcmp(ka, kb)) st = 1, fprintf(stderr, "%s and %s: keys %s and %s\n", a, b, ka, kb);
    free(ka);
    free(kb);
    ts_close(sa);
    ts_close(sb);
    return st;
}

static const char *const wf_stores[] = {"data/train.store", "data/fashion_mnist.store", "data/mnist.store",
                                        "classifier.store", "denoiser.store", "fashion_mnist.features",
                                        "mnist.features", "train.features", "scores.store", NULL};

// Every store of the two output folders is equal.
static void wf_same_stores(const char *a, const char *b) {
    for (int i = 0; wf_stores[i]; i++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/%s", a, wf_stores[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, wf_stores[i]);
        ck_assert_msg(wf_diff(pa, pb) == 0, "%s differs", wf_stores[i]);
    }
}

START_TEST(test_workflow_runs_and_reruns_nothing) {
    char v[1024];
    snprintf(v, sizeof v, "OUT=%s CACHE=%s", tu_path("a"), tu_path("cache"));
    // -n: the plan, nothing run
    ck_assert_int_eq(wf_make((snprintf(v + strlen(v), 64, " -n"), v)), 0);
    ck_assert_int_gt(wf_stages_run("sample"), 0);
    ck_assert_int_ne(access(tu_path("a/data"), F_OK), 0);
    v[strlen(v) - 3] = '\0';
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    // report.json parses and names every method of the scores store
    size_t n;
    char *txt = tu_read_file(tu_path("a/report/report.json"), &n);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    ck_assert_ptr_nonnull(j);
    const cJSON *methods = cJSON_GetObjectItem(j, "methods");
    const char *want[] = {"msp", "mls", "ebo", "mds", "knn", "react", "vim", "diffood-global-logit-t40",
                          "diffood-local-logit-t80", "diffood-global-feature-t80", NULL};
    for (int i = 0; want[i]; i++) {
        int found = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, methods) {
            const cJSON *t = cJSON_GetObjectItem(m, "table");
            if (cJSON_IsString(t) && !strcmp(t->valuestring, want[i])) found = 1;
        }
        ck_assert_msg(found, "report.json lacks method %s", want[i]);
    }
    cJSON_Delete(j);
    ck_assert_int_eq(access(tu_path("a/report/report.html"), R_OK), 0);
    ck_assert_ptr_nonnull(strstr(wf_out, "report.html"));
    // a second run with nothing changed runs no stage
    double t0 = tu_now();
    ck_assert_int_eq(wf_make(v), 0);
    ck_assert_int_eq(wf_stages_run(NULL), 0);
    ck_assert_double_lt(tu_now() - t0, 5.0);
    // more repeats: only the new samples, then what follows; the networks are not touched
    char v4[1200];
    snprintf(v4, sizeof v4, "%s REPEATS=4", v);
    ck_assert_msg(wf_make(v4) == 0, "%s", wf_out);
    ck_assert_int_eq(wf_computed("sample"), 2 * 16 * 3 * 2); // 2 sets, 16 images, 3 levels, repeats 2 and 3
    ck_assert_int_eq(wf_stages_run("train"), 0);
    ck_assert_int_eq(wf_stages_run("score"), 1);
    // a second experiment with the same networks, data and sampler: every sample from the cache
    snprintf(v, sizeof v, "OUT=%s CACHE=%s REPEATS=4", tu_path("b"), tu_path("cache"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    ck_assert_int_eq(wf_stages_run("sample"), 2);
    ck_assert_int_eq(wf_computed("sample"), 0);
    wf_same_stores(tu_path("a"), tu_path("b"));
    // a classifier parameter: the classifier is retrained, the denoiser is not
    snprintf(v, sizeof v, "OUT=%s CACHE=%s REPEATS=4 SET=train_classifier.lr=0.05", tu_path("b"), tu_path("cache"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    ck_assert_ptr_nonnull(strstr(wf_out, "\"model\":\"classifier\",\"step\""));
    ck_assert_ptr_null(strstr(wf_out, "\"model\":\"diffusion\",\"step\"")); // only "up to date", if it ran
    ck_assert_int_gt(wf_computed("sample"), 0); // new predictions, new guidance: new samples
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/denoiser.store", tu_path("a"));
    snprintf(pb, sizeof pb, "%s/denoiser.store", tu_path("b"));
    ck_assert_int_eq(wf_diff(pa, pb), 0);
}
END_TEST

START_TEST(test_workflow_kill_resume_and_parallel) {
    char v[1024];
    snprintf(v, sizeof v, "OUT=%s CACHE=%s SET=sample.batch=2", tu_path("ref"), tu_path("cache1"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    // SIGKILL the whole workflow once sampling has started, then rerun
    char script[4096], cmd[1024];
    snprintf(script, sizeof script,
             "setsid make --no-print-directory -f workflows/ci-tiny.mk BIN=%s THREADS=1 OUT=%s CACHE=%s "
             "SET=sample.batch=2 >%s 2>&1 & pid=$!\n"
             "for i in $(seq 1 3000); do ls %s/sample-*.store/data.mdb >/dev/null 2>&1 && break; sleep 0.02; done\n"
             "kill -KILL -- -$pid; wait $pid; exit 0\n",
             tu_bin(), tu_path("k"), tu_path("cache2"), tu_path("k.log"), tu_path("cache2"));
    snprintf(cmd, sizeof cmd, "bash %s", tu_put("kill.sh", script));
    ck_assert_int_eq(tu_capture(cmd, wf_out, sizeof wf_out), 0);
    ck_assert_int_ne(access(tu_path("k/report/report.json"), F_OK), 0); // it did not finish
    snprintf(v, sizeof v, "OUT=%s CACHE=%s SET=sample.batch=2", tu_path("k"), tu_path("cache2"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    wf_same_stores(tu_path("ref"), tu_path("k"));
    // -j2 runs the sets side by side and makes the same stores
    snprintf(v, sizeof v, "OUT=%s CACHE=%s SET=sample.batch=2 -j2", tu_path("j2"), tu_path("cache3"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    wf_same_stores(tu_path("ref"), tu_path("j2"));
    // in shards (sample, extract-features in 3, the test sets' ingest in 2), joined by dstore merge:
    // the same stores again (the shards keep their samples: no cache)
    snprintf(v, sizeof v, "OUT=%s CACHE= SET=sample.batch=2 SHARDS=3 INGEST_SHARDS=2 -j2", tu_path("sh"));
    ck_assert_msg(wf_make(v) == 0, "%s", wf_out);
    ck_assert_int_eq(access(tu_path("sh/shards/mnist.features.2/.done"), F_OK), 0);
    ck_assert_int_eq(access(tu_path("sh/data/shards/mnist.store.1/.done"), F_OK), 0);
    wf_same_stores(tu_path("ref"), tu_path("sh"));
}
END_TEST

START_TEST(test_workflow_bad_input_stops_first) {
    char v[1024];
    const char *bad = tu_put("bad.yml", "sample:\n  repeats: [oops\n");
    snprintf(v, sizeof v, "OUT=%s CONFIG=%s", tu_path("x"), bad);
    ck_assert_int_eq(wf_make(v), 2);
    ck_assert_ptr_nonnull(strstr(wf_out, "bad.yml"));
    ck_assert_int_eq(wf_stages_run(NULL), 0);
    ck_assert_int_ne(access(tu_path("x/data"), F_OK), 0);
    snprintf(v, sizeof v, "OUT=%s SET=sample.repeatz=3", tu_path("x"));
    ck_assert_int_eq(wf_make(v), 2);
    ck_assert_ptr_nonnull(strstr(wf_out, "repeatz"));
    ck_assert_int_eq(wf_stages_run(NULL), 0);
    snprintf(v, sizeof v, "OUT=%s FMNIST=%s", tu_path("x"), tu_path("nowhere"));
    ck_assert_int_eq(wf_make(v), 2);
    ck_assert_ptr_nonnull(strstr(wf_out, "nowhere/train-images-idx3-ubyte.gz"));
    ck_assert_int_eq(wf_stages_run(NULL), 0);
}
END_TEST

Suite *suite_workflow(void) {
    Suite *s = suite_create("workflow");
    TCase *tc = tcase_create("workflow");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_workflow_runs_and_reruns_nothing);
    tcase_add_test(tc, test_workflow_kill_resume_and_parallel);
    tcase_add_test(tc, test_workflow_bad_input_stops_first);
    suite_add_tcase(s, tc);
    return s;
}
