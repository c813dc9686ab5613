// End-to-end tests of `ingest --shard I/N` ($DIFFOOD_BIN) and of `dstore merge` joining the
// shards: the merge of all shards equals one unsharded run (records, meta, key: dstore diff),
// for IDX with --shuffle/--classes/--limit and for image lists (shards that are empty too); a
// shard killed midway resumes to the same store; incomplete or partial sets of shards are not
// passed off as the whole; shards need --name.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <png.h>

#include "common/store.h"
#include "tests/test_util.h"

#define FM "/usr/share/datasets/fashion-mnist/"

static char errbuf[8192];

static int run_ingest(const char *const *args) { return tu_run_stderr("ingest", args, errbuf, sizeof errbuf); }

// Runs `args` (NULL-terminated, at most 40) plus --shard I/N --out dir/sI.store for I in [i0, i1).
static void run_shard_range(const char *const *args, int i0, int i1, int n) {
    for (int i = i0; i < i1; i++) {
        const char *a[48];
        int k = 0;
        while (args[k]) {
            a[k] = args[k];
            k++;
        }
        char sh[32], name[32];
        snprintf(sh, sizeof sh, "%d/%d", i, n);
        snprintf(name, sizeof name, "s%d.store", i);
        a[k++] = "--shard";
        a[k++] = sh;
        a[k++] = "--out";
        a[k++] = tu_path(name);
        a[k] = NULL;
        ck_assert_msg(run_ingest(a) == 0, "shard %s: %s", sh, errbuf);
    }
}

static void run_shards(const char *const *args, int n) { run_shard_range(args, 0, n, n); }

// dstore merge OUT s0.store .. s(n-1).store; the exit status (output in errbuf).
static int merge_shards(const char *out, int n) {
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "%s/dstore merge %s", tu_bin(), out);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%d.store", i);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", tu_path(name));
    }
    return tu_capture(cmd, errbuf, sizeof errbuf);
}

// 0 when dstore diff finds a and b the same (records and meta).
static int stores_differ(const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/dstore diff %s %s", tu_bin(), a, b);
    int st = tu_capture(cmd, errbuf, sizeof errbuf);
    if (st) fprintf(stderr, "dstore diff %s %s:\n%s\n", a, b, errbuf);
    return st;
}

static char *meta_of(const char *path, const char *key) {
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    char *v = tu_meta(s, key);
    ts_close(s);
    return v;
}

static uint64_t images_of(const char *path) {
    ts_store *s = NULL;
    uint64_t n = 0;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    if (ts_count(s, "image", &n) < 0) n = 0;
    ts_close(s);
    return n;
}

START_TEST(test_ingest_shards_idx) {
    const char *base[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                          FM "t10k-labels-idx1-ubyte.gz", "--pad", "2", "--shuffle", "3", "--classes", "0-7",
                          "--limit", "500", "--name", "fm", "--quiet", NULL};
    const char *whole[24];
    int k = 0;
    while (base[k]) whole[k] = base[k], k++;
    whole[k++] = "--out";
    whole[k++] = tu_path("whole.store");
    whole[k] = NULL;
    ck_assert_msg(run_ingest(whole) == 0, "%s", errbuf);
    run_shards(base, 4);
    // each shard holds its contiguous part of the 500 selected images, under the whole run's keys
    ck_assert_uint_eq(images_of(tu_path("s2.store")), 125);
    char *req = meta_of(tu_path("s2.store"), "request"), *cnt = meta_of(tu_path("s2.store"), "count");
    ck_assert_str_eq(req, "{\"begin\":250,\"count\":500,\"end\":375,\"shard\":[2,4]}");
    ck_assert_str_eq(cnt, "125");
    free(req);
    free(cnt);
    ts_store *s = NULL;
    ts_key key;
    ck_assert_int_eq(ts_open(&s, tu_path("s2.store"), TS_RDONLY), 0);
    ts_key_u64(&key, 250);
    ck_assert_int_eq(ts_has(s, "image", &key), 1);
    ts_key_u64(&key, 249);
    ck_assert_int_eq(ts_has(s, "image", &key), 0);
    ts_close(s);
    // a shard differs from the whole (another key), and a rerun of one is up to date
    char *ks = meta_of(tu_path("s2.store"), "key"), *kw = meta_of(tu_path("whole.store"), "key");
    ck_assert_str_ne(ks, kw);
    free(ks);
    const char *loud[24];
    for (k = 0; base[k]; k++) loud[k] = base[k];
    loud[k - 1] = NULL; // without --quiet
    run_shard_range(loud, 2, 3, 4);
    ck_assert_msg(strstr(errbuf, "up to date"), "%s", errbuf);

    // all four, in order: the unsharded store, meta (count, class_counts, mean, std, key) included
    ck_assert_msg(merge_shards(tu_path("m.store"), 4) == 0, "%s", errbuf);
    ck_assert_ptr_nonnull(strstr(errbuf, "joined 4 shards of ingest"));
    ck_assert_int_eq(stores_differ(tu_path("m.store"), tu_path("whole.store")), 0);
    // ingest itself takes the joined store for its own: up to date
    const char *again[24];
    for (k = 0; whole[k]; k++) again[k] = whole[k];
    again[k - 1] = tu_path("m.store");
    again[k] = NULL;
    again[k - 3] = "--verbose"; // in place of --quiet
    ck_assert_msg(run_ingest(again) == 0, "%s", errbuf);
    ck_assert_msg(strstr(errbuf, "up to date"), "%s", errbuf);

    // three of four shards are not the whole: records merged, but not joined (keeps a shard's key)
    ck_assert_int_eq(merge_shards(tu_path("m3.store"), 3), 0);
    ck_assert_ptr_nonnull(strstr(errbuf, "not all 4 shards"));
    char *k3 = meta_of(tu_path("m3.store"), "key"), *k0 = meta_of(tu_path("s0.store"), "key");
    ck_assert_str_eq(k3, k0);
    free(k3);
    free(k0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/dstore diff %s %s", tu_bin(), tu_path("m3.store"), tu_path("whole.store"));
    ck_assert_int_eq(tu_capture(cmd, errbuf, sizeof errbuf), 1);
}
END_TEST

START_TEST(test_ingest_shards_imglist) {
    // 7 PNGs of different sizes, grey and RGB; 3 images in 4 shards leaves shard 0 empty
    FILE *f = fopen(tu_path("list.txt"), "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 7; i++) {
        int h = 9 + i, w = 12 - i, c = i % 2 ? 3 : 1;
        size_t npx = (size_t)h * w * c;
        uint8_t *px = malloc(npx);
        ck_assert_ptr_nonnull(px);
        for (size_t j = 0; j < npx; j++) px[j] = (uint8_t)(j * 37 + (size_t)i * 11);
        char name[32];
        snprintf(name, sizeof name, "im%d.png", i);
        tu_write_png(tu_path(name), px, h, w, c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB, NULL, 0);
        free(px);
        fprintf(f, "%s %d\n", name, i % 3);
    }
    fclose(f);
    for (int limit = 7; limit >= 3; limit -= 4) {
        char lim[8];
        snprintf(lim, sizeof lim, "%d", limit);
        const char *base[] = {"--format", "imglist", "--list", tu_path("list.txt"), "--root", tu_dir, "--size", "8",
                              "--limit", lim, "--name", "pngs", "--quiet", NULL};
        const char *whole[] = {"--format", "imglist", "--list", tu_path("list.txt"), "--root", tu_dir, "--size", "8",
                               "--limit", lim, "--name", "pngs", "--quiet", "--out", tu_path("w.store"), "--force", NULL};
        ck_assert_msg(run_ingest(whole) == 0, "%s", errbuf);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "rm -rf %s/s?.store %s/m.store", tu_dir, tu_dir);
        ck_assert_int_eq(system(cmd), 0);
        run_shards(base, 4);
        if (limit == 3) ck_assert_uint_eq(images_of(tu_path("s0.store")), 0);
        ck_assert_msg(merge_shards(tu_path("m.store"), 4) == 0, "%s", errbuf);
        ck_assert_int_eq(stores_differ(tu_path("m.store"), tu_path("w.store")), 0);
    }
}
END_TEST

// Waits until the store at path holds at least n images, or 30 s.
static void wait_images(const char *path, uint64_t n) {
    double t0 = tu_now();
    while (tu_now() - t0 < 30) {
        ts_store *s = NULL;
        uint64_t seen = 0;
        if (ts_open(&s, path, TS_RDONLY) == 0) {
            if (ts_count(s, "image", &seen) < 0) seen = 0;
            ts_close(s);
        }
        if (seen >= n) return;
        usleep(2000);
    }
}

START_TEST(test_ingest_shard_kill_resume) {
    const char *whole[] = {"--format", "idx", "--images", FM "train-images-idx3-ubyte.gz", "--labels",
                           FM "train-labels-idx1-ubyte.gz", "--batch", "500", "--name", "fmtrain", "--quiet",
                           "--out", tu_path("whole.store"), NULL};
    ck_assert_msg(run_ingest(whole) == 0, "%s", errbuf);
    // shard 1/2 killed once 1000 of its images are committed, then rerun
    const char *s1[] = {"--format", "idx", "--images", FM "train-images-idx3-ubyte.gz", "--labels",
                        FM "train-labels-idx1-ubyte.gz", "--batch", "500", "--name", "fmtrain", "--shard", "1/2",
                        "--out", tu_path("s1.store"), NULL};
    pid_t pid = tu_start("ingest", s1, NULL);
    wait_images(tu_path("s1.store"), 1000);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFSIGNALED(st), "ingest --shard 1/2 finished before it could be killed");
    tu_assert_not_complete(tu_path("s1.store"));
    ck_assert_int_eq(tu_run("ingest", s1, NULL), 0);
    char out[4096];
    tu_read_text(tu_path("stdout.txt"), out, sizeof out);
    ck_assert_msg(strstr(out, "\"state\":\"resume\"") && !strstr(out, "\"kept\":0"), "not resumed: %s", out);
    const char *s0[] = {"--format", "idx", "--images", FM "train-images-idx3-ubyte.gz", "--labels",
                        FM "train-labels-idx1-ubyte.gz", "--batch", "500", "--name", "fmtrain", "--shard", "0/2",
                        "--quiet", "--out", tu_path("s0.store"), NULL};
    ck_assert_msg(run_ingest(s0) == 0, "%s", errbuf);
    ck_assert_msg(merge_shards(tu_path("m.store"), 2) == 0, "%s", errbuf);
    ck_assert_int_eq(stores_differ(tu_path("m.store"), tu_path("whole.store")), 0);
}
END_TEST

START_TEST(test_ingest_shard_usage) {
    const char *noname[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                            FM "t10k-labels-idx1-ubyte.gz", "--limit", "10", "--shard", "0/2", "--out",
                            tu_path("x.store"), NULL};
    ck_assert_int_eq(run_ingest(noname), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--name"));
    const char *bad[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                         FM "t10k-labels-idx1-ubyte.gz", "--limit", "10", "--name", "x", "--shard", "2/2", "--out",
                         tu_path("x.store"), NULL};
    ck_assert_int_eq(run_ingest(bad), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--shard"));
    tu_assert_not_complete(tu_path("x.store"));
}
END_TEST

Suite *suite_ingest_shard(void) {
    Suite *s = suite_create("ingest_shard");
    TCase *tc = tcase_create("shards");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ingest_shards_idx);
    tcase_add_test(tc, test_ingest_shards_imglist);
    tcase_add_test(tc, test_ingest_shard_kill_resume);
    tcase_add_test(tc, test_ingest_shard_usage);
    suite_add_tcase(s, tc);
    return s;
}
