// Fault tests of the tensor store: flipped bytes inside stored records, a writer killed with
// SIGKILL between and during batches, and a reader running while a writer commits.
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"


// Flips one byte of a file at offset off.
static void flip_byte(const char *path, size_t off) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, (long)off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
}

// Offsets of every occurrence of needle in the file (LMDB pages can keep stale copies of moved
// nodes in their free space); returns the count, at most max.
static int find_all(const char *path, const void *needle, size_t n, size_t *offs, int max) {
    size_t len;
    unsigned char *p = tu_read_file(path, &len);
    int hits = 0;
    for (size_t i = 0; i + n <= len; i++)
        if (p[i] == ((const unsigned char *)needle)[0] && !memcmp(p + i, needle, n) && hits < max) offs[hits++] = i;
    free(p);
    ck_assert_int_ge(hits, 1);
    return hits;
}

// Flips the byte at `off`, reads table/key and restores the byte. Returns 1 when the read was
// ERR_CORRUPT with a message naming store, table and key; 0 when the flip hit a stale copy and the
// read gave the intact record (want, n bytes); fails the test on anything else.
static int flip_and_read(const char *path, const char *table, uint64_t key, size_t off, const void *want,
                         size_t n) {
    char data[400], kt[32];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    snprintf(kt, sizeof kt, "key %llu", (unsigned long long)key);
    flip_byte(data, off);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, key);
    int rc = ts_get(s, table, &k, &t), corrupt = 0;
    if (rc == ERR_CORRUPT) {
        ck_assert_ptr_nonnull(strstr(err_msg(), table));
        ck_assert_ptr_nonnull(strstr(err_msg(), kt));
        ck_assert_ptr_nonnull(strstr(err_msg(), path));
        ck_assert_ptr_null(t.data);
        corrupt = 1;
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(t.nbytes, n);
        ck_assert_int_eq(memcmp(t.data, want, n), 0);
        ts_tensor_free(&t);
    }
    ts_close(s);
    flip_byte(data, off);
    return corrupt;
}

// Deterministic content of record `key` of generation `gen`.
static void pattern(uint8_t *p, size_t n, uint64_t key, uint64_t gen) {
    uint64_t x = key * 0x9E3779B97F4A7C15ull + gen * 0xD1B54A32D192ED03ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

// Writes one record under key `key` with the given codec; its payload is pattern(key, 0).
static void put_pattern(ts_store *s, const char *table, uint64_t key, size_t n, ts_codec codec) {
    uint8_t *buf = malloc(n);
    pattern(buf, n, key, 0);
    int64_t shape[1] = {(int64_t)n};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_U8, 1, shape, buf), 0);
    ts_key k;
    ts_key_u64(&k, key);
    ck_assert_int_eq(ts_put(s, table, &k, &t, codec), 0);
    free(buf);
}

START_TEST(test_flipped_bytes) {
    char path[300], data[340];
    snprintf(path, sizeof path, "%s/s", tu_dir);
    snprintf(data, sizeof data, "%s/data.mdb", path);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ck_assert_int_eq(ts_begin_write(s), 0);
    for (uint64_t k = 0; k < 20; k++) put_pattern(s, "image", k, 700, TS_CODEC_RAW);
    put_pattern(s, "big", 7, 20000, TS_CODEC_RAW); // an overflow page record
    ck_assert_int_eq(ts_commit(s), 0);
    ts_close(s);
    // the payload of record 13 (raw), found by its bytes; header fields just before it
    uint8_t pat[64], want13[700], want7[20000];
    pattern(pat, sizeof pat, 13, 0);
    pattern(want13, sizeof want13, 13, 0);
    pattern(want7, sizeof want7, 7, 0);
    size_t offs[8];
    int hits = find_all(data, pat, sizeof pat, offs, 8);
    const size_t deltas[] = {300, 699, (size_t)-72 + 14, (size_t)-72 + 10, (size_t)-72 + 62, (size_t)-72 + 46};
    for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
        int corrupt = 0;
        for (int h = 0; h < hits; h++) corrupt += flip_and_read(path, "image", 13, offs[h] + deltas[d], want13, 700);
        ck_assert_int_ge(corrupt, 1);
    }
    // a byte deep inside the overflow record
    pattern(pat, sizeof pat, 7, 0);
    hits = find_all(data, pat, sizeof pat, offs, 8);
    int corrupt = 0;
    for (int h = 0; h < hits; h++) corrupt += flip_and_read(path, "big", 7, offs[h] + 15000, want7, 20000);
    ck_assert_int_ge(corrupt, 1);
    ck_assert_ptr_nonnull(strstr(err_msg(), "checksum"));
}
END_TEST

START_TEST(test_flipped_compressed) {
    char path[300], data[340];
    snprintf(path, sizeof path, "%s/z", tu_dir);
    snprintf(data, sizeof data, "%s/data.mdb", path);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    int64_t shape[1] = {3000};
    ts_tensor tt;
    ck_assert_int_eq(ts_tensor_alloc(&tt, TS_F32, 1, shape), 0);
    float *f = tt.data;
    for (int i = 0; i < 3000; i++) f[i] = (float)(i % 97) * 0.25f;
    ts_key k;
    ts_key_u64(&k, 5);
    ck_assert_int_eq(ts_put(s, "feature", &k, &tt, TS_CODEC_SHUFFLE_ZSTD), 0);
    ts_record_info info;
    ck_assert_int_eq(ts_get_info(s, "feature", &k, &info), 0);
    ck_assert_int_eq(info.codec, TS_CODEC_SHUFFLE_ZSTD);
    ts_close(s);
    // the record header: its magic followed by version 2, dtype f32, rank 1, the codec
    unsigned char head[8] = {'d', 't', 's', 'r', 2, TS_F32, 1, TS_CODEC_SHUFFLE_ZSTD};
    size_t offs[8];
    int hits = find_all(data, head, sizeof head, offs, 8);
    for (size_t d = 72; d < 72 + info.stored_len; d += info.stored_len / 7 + 1) {
        int corrupt = 0;
        for (int h = 0; h < hits; h++) corrupt += flip_and_read(path, "feature", 5, offs[h] + d, tt.data, tt.nbytes);
        ck_assert_int_ge(corrupt, 1);
    }
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_tensor t;
    ck_assert_int_eq(ts_get(s, "feature", &k, &t), 0);
    ck_assert_int_eq(memcmp(t.data, tt.data, tt.nbytes), 0);
    ts_tensor_free(&t);
    ts_tensor_free(&tt);
    ts_close(s);
}
END_TEST

// A flipped byte in a key would make a record answer under another key: the header checksum
// covers the key, so the record reads as corrupt.
START_TEST(test_flipped_key) {
    char path[300], data[340];
    snprintf(path, sizeof path, "%s/key", tu_dir);
    snprintf(data, sizeof data, "%s/data.mdb", path);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    float v[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 1, shape, v), 0);
    const char *names[] = {"down.0.conv.weight", "mid.attn.q.bias", "up.3.norm.weight"};
    for (int i = 0; i < 3; i++) {
        ts_key k;
        ck_assert_int_eq(ts_key_str(&k, names[i]), 0);
        ck_assert_int_eq(ts_put(s, "param", &k, &t, TS_CODEC_RAW), 0);
    }
    ts_close(s);
    size_t offs[8];
    int hits = find_all(data, "mid.attn.q.bias", 15, offs, 8);
    for (int h = 0; h < hits; h++) flip_byte(data, offs[h] + 4); // "mid.Attn.q.bias"
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_cursor *c;
    ck_assert_int_eq(ts_cursor_open(s, "param", &c), 0);
    ts_key k;
    int bad = 0, good = 0;
    char kb[64];
    while (ts_cursor_next(c, &k) == 1) {
        ts_tensor g;
        int rc = ts_cursor_get(c, &g, NULL, 0);
        if (rc == ERR_CORRUPT) {
            bad++;
            ck_assert_str_eq(ts_key_format(&k, kb, sizeof kb), "mid.Attn.q.bias");
            ck_assert_ptr_nonnull(strstr(err_msg(), "mid.Attn.q.bias"));
        } else {
            ck_assert_int_eq(rc, 0);
            ts_tensor_free(&g);
            good++;
        }
    }
    ts_cursor_close(c);
    ck_assert_int_eq(bad, 1);
    ck_assert_int_eq(good, 2);
    ck_assert_int_eq(ts_key_str(&k, "mid.Attn.q.bias"), 0);
    ck_assert_int_eq(ts_get(s, "param", &k, &t), ERR_CORRUPT);
    ts_close(s);
}
END_TEST

// --- a killed writer ---------------------------------------------------------------------------
#define BATCH 50
#define REC 3000

// Child: appends batches of BATCH records (keys continue from the count) forever, reporting the
// committed total through fd after each commit.
static void writer_child(const char *path, int fd) {
    ts_store *s;
    if (ts_open(&s, path, TS_CREATE | TS_NOSYNC) < 0) _exit(10);
    uint64_t n = 0;
    if (ts_table_exists(s, "image") == 1 && ts_count(s, "image", &n) < 0) _exit(11);
    uint8_t *buf = malloc(REC);
    int64_t shape[1] = {REC};
    for (;;) {
        if (ts_begin_write(s) < 0) _exit(12);
        for (int i = 0; i < BATCH; i++, n++) {
            pattern(buf, REC, n, 0);
            ts_tensor t;
            ts_tensor_init(&t, TS_U8, 1, shape, buf);
            ts_key k;
            ts_key_u64(&k, n);
            if (ts_put(s, "image", &k, &t, (n & 1) ? TS_CODEC_ZSTD : TS_CODEC_RAW) < 0) _exit(13);
        }
        char txt[32];
        snprintf(txt, sizeof txt, "%llu", (unsigned long long)n);
        if (ts_meta_put(s, "written", txt) < 0) _exit(14);
        if (ts_commit(s) < 0) _exit(15);
        if (write(fd, &n, sizeof n) != (ssize_t)sizeof n) _exit(16);
    }
}

START_TEST(test_kill_writer) {
    char path[300];
    snprintf(path, sizeof path, "%s/k", tu_dir);
    uint64_t reported = 0;
    for (int round = 0; round < 4; round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            writer_child(path, fds[1]);
        }
        close(fds[1]);
        uint64_t v;
        for (int got = 0; got < 3 + round; got++) {
            ck_assert_int_eq(read(fds[0], &v, sizeof v), (ssize_t)sizeof v);
            ck_assert_uint_gt(v, reported);
            reported = v;
        }
        // kill somewhere inside the next batches
        struct timespec ts = {0, 200000 * (round + 1)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) reported = v;
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        // reopen: whole batches only, at least what was reported, every record intact
        ts_store *s;
        ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
        uint64_t n;
        ck_assert_int_eq(ts_count(s, "image", &n), 0);
        ck_assert_uint_ge(n, reported);
        ck_assert_uint_eq(n % BATCH, 0);
        char *txt;
        ck_assert_int_eq(ts_meta_get(s, "written", &txt), 0);
        ck_assert_uint_eq(strtoull(txt, NULL, 10), n); // meta committed with its batch
        free(txt);
        ts_cursor *c;
        ck_assert_int_eq(ts_cursor_open(s, "image", &c), 0);
        ts_key k;
        uint64_t expect = 0, key;
        uint8_t want[REC];
        while (ts_cursor_next(c, &k) == 1) {
            ck_assert_int_eq(ts_key_get_u64(&k, &key), 0);
            ck_assert_uint_eq(key, expect);
            ts_tensor t;
            ck_assert_int_eq(ts_cursor_get(c, &t, NULL, 0), 0);
            pattern(want, REC, key, 0);
            ck_assert_uint_eq(t.nbytes, REC);
            ck_assert_int_eq(memcmp(t.data, want, REC), 0);
            ts_tensor_free(&t);
            expect++;
        }
        ck_assert_uint_eq(expect, n);
        ts_cursor_close(c);
        ts_close(s);
        reported = n;
        // and the inspector agrees
        const char *bin = getenv("DIFFOOD_BIN");
        if (bin) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "'%s/dstore' verify '%s' >/dev/null 2>&1", bin, path);
            int st = system(cmd);
            ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
    }
}
END_TEST

// --- a reader beside a writer ------------------------------------------------------------------
#define GROUP 8

START_TEST(test_reader_during_writes) {
    char path[300];
    snprintf(path, sizeof path, "%s/r", tu_dir);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    ts_close(s);
    int go[2]; // the writer waits after generation 1 until the reader has seen a snapshot
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { // writer: generation g rewrites all GROUP records with pattern(key, g)
        close(go[1]);
        ts_store *w;
        if (ts_open(&w, path, TS_NOSYNC) < 0) _exit(10);
        uint8_t *buf = malloc(REC);
        int64_t shape[1] = {REC};
        for (uint64_t g = 1; g <= 400; g++) {
            if (ts_begin_write(w) < 0) _exit(11);
            for (uint64_t key = 0; key < GROUP; key++) {
                pattern(buf, REC, key, g);
                ts_tensor t;
                ts_tensor_init(&t, TS_U8, 1, shape, buf);
                ts_key k;
                ts_key_u64(&k, key);
                if (ts_put(w, "x", &k, &t, key % 2 ? TS_CODEC_ZSTD : TS_CODEC_RAW) < 0) _exit(12);
                char txt[32];
                snprintf(txt, sizeof txt, "%llu", (unsigned long long)g);
                if (ts_meta_put(w, "gen", txt) < 0) _exit(13);
            }
            if (ts_commit(w) < 0) _exit(14);
            char byte;
            if (g == 1 && read(go[0], &byte, 1) != 1) _exit(15);
        }
        ts_close(w);
        _exit(0);
    }
    close(go[0]);
    // reader: every snapshot holds one generation, all records intact
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    int snapshots = 0, status = 0;
    uint8_t want[REC];
    uint64_t last_gen = 0;
    for (;;) {
        int done = waitpid(pid, &status, WNOHANG) == pid;
        if (ts_table_exists(s, "x") == 1) {
            ts_cursor *c;
            ck_assert_int_eq(ts_cursor_open(s, "x", &c), 0);
            ts_key k;
            int seen = 0;
            uint64_t gen = 0;
            while (ts_cursor_next(c, &k) == 1) {
                ts_tensor t;
                uint64_t key;
                ck_assert_int_eq(ts_key_get_u64(&k, &key), 0);
                ck_assert_int_eq(ts_cursor_get(c, &t, NULL, 0), 0);
                if (seen == 0) { // which generation is this snapshot?
                    for (gen = 1; gen <= 400; gen++) {
                        pattern(want, REC, key, gen);
                        if (!memcmp(t.data, want, REC)) break;
                    }
                    ck_assert_uint_le(gen, 400);
                }
                pattern(want, REC, key, gen);
                ck_assert_int_eq(memcmp(t.data, want, REC), 0);
                ts_tensor_free(&t);
                seen++;
            }
            ts_cursor_close(c);
            ck_assert_int_eq(seen, GROUP);
            ck_assert_uint_ge(gen, last_gen);
            last_gen = gen;
            if (snapshots++ == 0) ck_assert_int_eq(write(go[1], "g", 1), 1);
        }
        if (done) break;
    }
    close(go[1]);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_gt(snapshots, 1);
    char *txt;
    ck_assert_int_eq(ts_meta_get(s, "gen", &txt), 0);
    ck_assert_str_eq(txt, "400");
    free(txt);
    ts_close(s);
}
END_TEST

// The map grows under batches and lone puts; a batch bigger than the map is a clear error.
START_TEST(test_map_growth) {
    char path[300];
    snprintf(path, sizeof path, "%s/grow", tu_dir);
    setenv("DIFFOOD_STORE_MAPSIZE", "1048576", 1); // a 1 MiB map to start with
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    int64_t shape[1] = {50000};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_alloc(&t, TS_U8, 1, shape), 0);
    for (uint64_t i = 0; i < 200; i++) { // 10 MB in batches of 4 records and lone puts
        memset(t.data, (int)i, t.nbytes);
        ts_key k;
        ts_key_u64(&k, i);
        if (i % 8 == 0) ck_assert_int_eq(ts_begin_write(s), 0);
        ck_assert_int_eq(ts_put(s, "x", &k, &t, TS_CODEC_RAW), 0);
        if (i % 8 == 3) ck_assert_int_eq(ts_commit(s), 0);
    }
    ts_env_info env;
    ck_assert_int_eq(ts_env_stat(s, &env), 0);
    ck_assert_uint_ge(env.map_size, 10u << 20);
    ts_close(s);
    unsetenv("DIFFOOD_STORE_MAPSIZE");
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    uint64_t n;
    ck_assert_int_eq(ts_count(s, "x", &n), 0);
    ck_assert_uint_eq(n, 200);
    ts_key k;
    ts_key_u64(&k, 199);
    ts_tensor g;
    ck_assert_int_eq(ts_get(s, "x", &k, &g), 0);
    ck_assert_uint_eq(((uint8_t *)g.data)[49999], 199);
    ts_tensor_free(&g);
    ts_close(s);
    // one batch larger than the whole map: a clear error, nothing half-written
    snprintf(path, sizeof path, "%s/full", tu_dir);
    setenv("DIFFOOD_STORE_MAPSIZE", "1048576", 1);
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    unsetenv("DIFFOOD_STORE_MAPSIZE");
    ck_assert_int_eq(ts_begin_write(s), 0);
    int rc = 0;
    for (uint64_t i = 0; i < 100 && rc == 0; i++) {
        ts_key_u64(&k, i);
        rc = ts_put(s, "x", &k, &t, TS_CODEC_RAW);
    }
    ck_assert_int_eq(rc, ERR_STORE);
    ck_assert_ptr_nonnull(strstr(err_msg(), "smaller batches"));
    ts_abort(s);
    ck_assert_int_eq(ts_table_exists(s, "x"), 0);
    ts_tensor_free(&t);
    ts_close(s);
}
END_TEST

// A reader opened before another process grows the map keeps reading.
START_TEST(test_reader_after_growth) {
    char path[300];
    snprintf(path, sizeof path, "%s/g", tu_dir);
    setenv("DIFFOOD_STORE_MAPSIZE", "1048576", 1);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_CREATE | TS_NOSYNC), 0);
    put_pattern(s, "x", 0, 1000, TS_CODEC_RAW);
    ts_close(s);
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, 0);
    ck_assert_int_eq(ts_get(s, "x", &k, &t), 0);
    ts_tensor_free(&t);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { // 8 MB through a 1 MiB map
        ts_store *w;
        if (ts_open(&w, path, TS_NOSYNC) < 0) _exit(10);
        for (uint64_t i = 1; i <= 160; i++) {
            if (i % 4 == 1 && ts_begin_write(w) < 0) _exit(11);
            uint8_t *buf = malloc(50000);
            pattern(buf, 50000, i, 0);
            int64_t shape[1] = {50000};
            ts_tensor x;
            ts_tensor_init(&x, TS_U8, 1, shape, buf);
            ts_key kk;
            ts_key_u64(&kk, i);
            if (ts_put(w, "x", &kk, &x, TS_CODEC_RAW) < 0) _exit(12);
            free(buf);
            if (i % 4 == 0 && ts_commit(w) < 0) _exit(13);
        }
        ts_close(w);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsetenv("DIFFOOD_STORE_MAPSIZE");
    uint8_t want[50000];
    for (uint64_t i = 1; i <= 160; i += 53) {
        ts_key_u64(&k, i);
        int rc = ts_get(s, "x", &k, &t);
        ck_assert_msg(rc == 0, "%s", err_msg());
        pattern(want, 50000, i, 0);
        ck_assert_int_eq(memcmp(t.data, want, 50000), 0);
        ts_tensor_free(&t);
    }
    ts_cursor *c;
    ck_assert_int_eq(ts_cursor_open(s, "x", &c), 0);
    int n = 0;
    while (ts_cursor_next(c, NULL) == 1) {
        ck_assert_int_eq(ts_cursor_get(c, &t, NULL, 0), 0);
        ts_tensor_free(&t);
        n++;
    }
    ck_assert_int_eq(n, 161);
    ts_cursor_close(c);
    ts_close(s);
}
END_TEST

Suite *suite_store_fault(void) {
    Suite *s = suite_create("store_fault");
    TCase *tc = tcase_create("store_fault");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_flipped_bytes);
    tcase_add_test(tc, test_flipped_compressed);
    tcase_add_test(tc, test_flipped_key);
    tcase_add_test(tc, test_kill_writer);
    tcase_add_test(tc, test_reader_during_writes);
    tcase_add_test(tc, test_reader_after_growth);
    tcase_add_test(tc, test_map_growth);
    suite_add_tcase(s, tc);
    return s;
}
