// Tests of what protects a store beyond record checksums (common/store_meta.c, store_guard.c):
// meta checksums (a changed byte in a meta value or name is found at open and on every read),
// format-1 stores refused with a way out (TS_REPLACE), the one-writer lock (a second writer is
// refused naming the holder; readers are not blocked; a killed holder leaves no stale lock), and
// the crash guard (LMDB's assertion on a damaged page ends the process with status 2 naming the
// store; a crash outside store code keeps its signal).
#include <check.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"

#define MEAN "0.22265249693627454"

static void flip(const char *file, size_t off, int mask) {
    size_t n;
    uint8_t *p = tu_read_file(file, &n);
    ck_assert_uint_lt(off, n);
    p[off] ^= (uint8_t)mask;
    tu_write_file(file, p, n);
    free(p);
}

// Offsets of needle in the file (LMDB keeps stale copies of moved nodes): count, at most max.
static int find_all(const char *file, const char *needle, size_t *offs, int max) {
    size_t len, n = strlen(needle);
    unsigned char *p = tu_read_file(file, &len);
    int hits = 0;
    for (size_t i = 0; i + n <= len && hits < max; i++)
        if (!memcmp(p + i, needle, n)) offs[hits++] = i;
    free(p);
    ck_assert_int_ge(hits, 1);
    return hits;
}

static void make_meta_store(const char *path) {
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE), 0);
    ck_assert_int_eq(ts_meta_put(s, "mean", MEAN), 0);
    ck_assert_int_eq(ts_meta_put(s, "class_counts", "{\"0\":32}"), 0);
    ck_assert_int_eq(ts_meta_put(s, "step", "1200"), 0);
    ts_close(s);
}

// A changed byte in a meta value or name: every flip of a live copy is ERR_CORRUPT at open
// naming the store and the key; a flip of a stale copy leaves the true value readable.
START_TEST(test_meta_checksum) {
    const char *path = tu_path("m.store");
    char file[600];
    snprintf(file, sizeof file, "%s/data.mdb", path);
    make_meta_store(path);
    const struct {
        const char *needle, *named; // text to flip (its third byte), what the message names
    } cases[] = {{MEAN, "meta 'mean'"}, {"1200", "meta 'step'"}, {"class_counts", "meta 'cl"}, {"step", "meta 's"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t offs[16];
        int n = find_all(file, cases[c].needle, offs, 16), found = 0;
        for (int i = 0; i < n; i++) {
            flip(file, offs[i] + 2, 0x01);
            ts_store *s;
            int rc = ts_open(&s, path, TS_RDONLY);
            if (rc == ERR_CORRUPT) {
                ck_assert_msg(strstr(err_msg(), cases[c].named) && strstr(err_msg(), path), "%s", err_msg());
                ck_assert_ptr_nonnull(strstr(err_msg(), "damaged"));
                found++;
            } else {
                ck_assert_msg(rc == 0, "%s", err_msg());
                char *v = NULL;
                ck_assert_int_eq(ts_meta_get(s, "mean", &v), 0);
                ck_assert_str_eq(v, MEAN);
                free(v);
                ts_close(s);
            }
            flip(file, offs[i] + 2, 0x01);
        }
        ck_assert_msg(found >= 1, "no flip of '%s' was detected", cases[c].needle);
    }
    // checked on every read, not only at open: damage made while the store is open
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    size_t offs[16];
    int n = find_all(file, MEAN, offs, 16);
    for (int i = 0; i < n; i++) flip(file, offs[i] + 5, 0x02);
    char *v = NULL;
    ck_assert_int_eq(ts_meta_get(s, "mean", &v), ERR_CORRUPT);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(err_msg(), "meta 'mean'"));
    ts_close(s);
    // dstore verify: exit 2 naming the store and the key
    char err[2048];
    const char *args[] = {"verify", path, NULL};
    ck_assert_int_eq(tu_run_stderr("dstore", args, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "meta 'mean'") && strstr(err, path), "%s", err);
}
END_TEST

// A format-1 store (plain meta text) is refused with a message saying how to replace it;
// TS_REPLACE replaces it (and any damaged store) by an empty one.
START_TEST(test_old_format) {
    const char *path = tu_path("old.store");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0664), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    MDB_val k = {9, "ts.format"}, v = {22, "diffood-tensor-store 1"};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err_msg(), "older build") && strstr(err_msg(), "--force") && strstr(err_msg(), path), "%s",
                  err_msg());
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE), ERR_UNSUPPORTED);
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_REPLACE), 0);
    char **names;
    int n;
    ck_assert_int_eq(ts_meta_list(s, &names, &n), 0);
    ck_assert_int_eq(n, 1); // ts.format only
    ts_names_free(names, n);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_close(s);
    // a damaged one (meta checksum) is replaced too; a file is never touched
    make_meta_store(tu_path("d.store"));
    char file[600];
    snprintf(file, sizeof file, "%s/data.mdb", tu_path("d.store"));
    size_t offs[16];
    int hits = find_all(file, MEAN, offs, 16);
    for (int i = 0; i < hits; i++) flip(file, offs[i], 0x04);
    ck_assert_int_eq(ts_open(&s, tu_path("d.store"), TS_CREATE), ERR_CORRUPT);
    ck_assert_int_eq(ts_open(&s, tu_path("d.store"), TS_CREATE | TS_REPLACE), 0);
    ts_close(s);
    tu_put("f.txt", "hello");
    ck_assert_int_eq(ts_open(&s, tu_path("f.txt"), TS_CREATE | TS_REPLACE), ERR_INPUT);
    char buf[16];
    ck_assert_str_eq(tu_read_text(tu_path("f.txt"), buf, sizeof buf), "hello");
}
END_TEST

// --- the writer lock ------------------------------------------------------------------------------
static const char *lock_path;

static int second_writer(void *arg) {
    pid_t holder = *(pid_t *)arg;
    ts_store *s;
    int rc = ts_open(&s, lock_path, TS_CREATE);
    if (rc != ERR_CONFLICT) return 10;
    char want[64];
    snprintf(want, sizeof want, "pid %ld", (long)holder);
    if (!strstr(err_msg(), want) || !strstr(err_msg(), lock_path) || !strstr(err_msg(), "another process")) return 11;
    fprintf(stderr, "%s\n", err_msg());
    if (ts_open(&s, lock_path, TS_RDONLY) != 0) return 12; // readers are not blocked
    char *v = NULL;
    if (ts_meta_get(s, "mean", &v) != 0 || strcmp(v, MEAN)) return 13;
    free(v);
    ts_close(s);
    return 0;
}

static int writer_ok(void *arg) {
    (void)arg;
    ts_store *s;
    if (ts_open(&s, lock_path, 0) != 0) return 20;
    if (ts_meta_put(s, "step", "1300") != 0) return 21;
    ts_close(s);
    return 0;
}

START_TEST(test_writer_lock) {
    lock_path = tu_path("w.store");
    make_meta_store(lock_path);
    ts_store *s, *s2;
    ck_assert_int_eq(ts_open(&s, lock_path, 0), 0);
    pid_t me = getpid();
    ck_assert_int_eq(tu_fork_stderr(tu_path("err.txt"), second_writer, &me), 0);
    ck_assert_int_eq(ts_open(&s2, lock_path, 0), ERR_CONFLICT); // a second handle in this process too
    ts_close(s);
    ck_assert_int_eq(tu_fork_stderr(tu_path("err2.txt"), writer_ok, NULL), 0);
    // a holder killed by SIGKILL leaves no lock behind
    int go[2];
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ts_store *c;
        if (ts_open(&c, lock_path, 0) != 0) _exit(30);
        if (write(go[1], "x", 1) != 1) _exit(31);
        pause();
        _exit(0);
    }
    char x;
    ck_assert_int_eq(read(go[0], &x, 1), 1);
    ck_assert_int_eq(ts_open(&s2, lock_path, 0), ERR_CONFLICT);
    kill(pid, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(ts_open(&s2, lock_path, 0), 0);
    ts_close(s2);
    close(go[0]);
    close(go[1]);
}
END_TEST

// --- the crash guard ------------------------------------------------------------------------------
static const char *crash_path;

// Reads every record of table t; 0 when all read, 1 when a read returned an error.
static int read_all(void *arg) {
    (void)arg;
    ts_store *s;
    if (ts_open(&s, crash_path, TS_RDONLY) != 0) return 1;
    ts_cursor *c;
    if (ts_cursor_open(s, "t", &c) != 0) return 1;
    int rc = 0, r;
    ts_tensor t;
    while ((r = ts_cursor_next(c, NULL)) == 1) {
        if (ts_cursor_get(c, &t, NULL, 0) != 0) { rc = 1; break; }
        ts_tensor_free(&t);
    }
    if (r < 0) rc = 1;
    ts_cursor_close(c);
    ts_close(s);
    return rc;
}

// One leaf page after another made to look like a branch page: LMDB's assertion (SIGABRT) ends
// the reader with status 2 naming the store, never a bare signal.
START_TEST(test_crash_guard) {
    crash_path = tu_path("c.store");
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, crash_path, TS_CREATE), 0);
    uint8_t buf[300];
    int64_t shape[1] = {300};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_U8, 1, shape, buf), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (uint64_t i = 0; i < 200; i++) {
        memset(buf, (int)i, sizeof buf);
        ts_key k;
        ts_key_u64(&k, i);
        ck_assert_int_eq(ts_put(s, "t", &k, &t, TS_CODEC_RAW), 0);
    }
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
    char file[600];
    snprintf(file, sizeof file, "%s/data.mdb", crash_path);
    size_t len;
    uint8_t *orig = tu_read_file(file, &len);
    int aborted = 0;
    for (size_t pg = 2; pg < len / 4096; pg++) {
        uint8_t *p = orig + pg * 4096;
        uint64_t pgno;
        memcpy(&pgno, p, 8);
        if (pgno != pg || p[10] != 2 || p[11] != 0) continue; // a leaf page (flags P_LEAF)
        p[10] = 1;                                             // P_BRANCH
        tu_write_file(file, orig, len);
        p[10] = 2;
        int rc = tu_fork_stderr(tu_path("err.txt"), read_all, NULL);
        char err[2048];
        tu_read_text(tu_path("err.txt"), err, sizeof err);
        ck_assert_msg(rc == 0 || rc == 1 || rc == 2, "page %zu: exit %d: %s", pg, rc, err);
        if (rc == 2) {
            ck_assert_msg(strstr(err, crash_path) && strstr(err, "damaged"), "%s", err);
            if (strstr(err, "SIGABRT")) aborted++;
        }
    }
    free(orig);
    ck_assert_int_ge(aborted, 1);
#ifndef __SANITIZE_ADDRESS__ // (ASan owns SIGSEGV: the guard leaves it alone)
    // a crash outside store functions keeps its default action
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (ts_open(&s, crash_path, TS_RDONLY) < 0) {} // installs the guard
        raise(SIGSEGV);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
#endif
}
END_TEST

Suite *suite_store_guard(void) {
    Suite *s = suite_create("store_guard");
    TCase *tc = tcase_create("store_guard");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_meta_checksum);
    tcase_add_test(tc, test_old_format);
    tcase_add_test(tc, test_writer_lock);
    tcase_add_test(tc, test_crash_guard);
    suite_add_tcase(s, tc);
    return s;
}
