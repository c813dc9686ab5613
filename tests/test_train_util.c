// Helpers of the train stage tests (test_train_util.h). Not a suite: no suite_ function here.
#define _GNU_SOURCE
#include "tests/test_train_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stage.h"
#include "common/store.h"
#include "tests/test_util.h"

void trt_setup(void) { tu_setup(); }
void trt_teardown(void) { tu_teardown(); }
const char *trt_path(const char *name) { return tu_path(name); }

void trt_make_store(const char *path, int n, int c, int s, int with_labels) {
    ts_store *st = NULL;
    stage_state state;
    stage_id id = {"test-images", 1, "{}", path, NULL};
    ck_assert_int_eq(stage_open_output(&st, path, &id, 1, &state), 0);
    ck_assert_int_eq(ts_begin_write(st), 0);
    uint8_t *img = malloc((size_t)c * s * s);
    uint32_t r = 12345;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        int32_t lab = i % 10;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++) {
                    r = r * 1664525u + 1013904223u;
                    int on = ((y * 10) / s == lab) || ((x * 5) / s == lab / 2);
                    int v = (on ? 200 : 30) + (int)(r >> 28);
                    img[((size_t)ch * s + y) * s + x] = (uint8_t)v;
                    sum += v / 255.0;
                    sq += (v / 255.0) * (v / 255.0);
                }
        ts_key k;
        ts_tensor t;
        int64_t shape[3] = {c, s, s};
        ts_key_u64(&k, (uint64_t)i);
        ck_assert_int_eq(ts_tensor_init(&t, TS_U8, 3, shape, img), 0);
        ck_assert_int_eq(ts_put(st, "image", &k, &t, TS_CODEC_ZSTD), 0);
        if (with_labels) {
            ck_assert_int_eq(ts_tensor_init(&t, TS_I32, 0, NULL, &lab), 0);
            ck_assert_int_eq(ts_put(st, "label", &k, &t, TS_CODEC_RAW), 0);
        }
    }
    double cnt = (double)n * c * s * s, mean = sum / cnt, sd = sq / cnt - mean * mean;
    char buf[256], lst[200] = "[", lsd[200] = "[";
    for (int ch = 0; ch < c; ch++) {
        snprintf(buf, sizeof buf, "%s%.17g", ch ? "," : "", mean);
        strcat(lst, buf);
        snprintf(buf, sizeof buf, "%s%.17g", ch ? "," : "", sd > 0 ? __builtin_sqrt(sd) : 1.0);
        strcat(lsd, buf);
    }
    strcat(lst, "]");
    strcat(lsd, "]");
    ck_assert_int_eq(ts_meta_put(st, "mean", lst), 0);
    ck_assert_int_eq(ts_meta_put(st, "std", lsd), 0);
    ck_assert_int_eq(stage_mark_complete(st), 0);
    ck_assert_int_eq(ts_commit(st), 0);
    ts_close(st);
    free(img);
}

// Progress lines at every step, so that tests can follow a run in its stderr.
static const char *const trt_env[] = {"DIFFOOD_PROGRESS_INTERVAL=0", NULL};

pid_t trt_start(const char *const *args) { return tu_start("train", args, trt_env); }

int trt_run(const char *const *args) { return tu_run("train", args, trt_env); }

static const char *trt_slurp(const char *name) {
    static char buf[2][16384];
    static int k;
    k ^= 1;
    return tu_read_text(tu_path(name), buf[k], sizeof buf[k]) ? buf[k] : "";
}

const char *trt_stderr(void) { return trt_slurp("stderr.txt"); }
const char *trt_stdout(void) { return trt_slurp("stdout.txt"); }

int trt_tables_equal(const char *a, const char *b, const char *table) {
    ts_store *sa = NULL, *sb = NULL;
    ts_cursor *ca = NULL, *cb = NULL;
    int equal = 1, rows = 0;
    ck_assert_int_eq(ts_open(&sa, a, TS_RDONLY), 0);
    ck_assert_int_eq(ts_open(&sb, b, TS_RDONLY), 0);
    ck_assert_int_eq(ts_cursor_open(sa, table, &ca), 0);
    ck_assert_int_eq(ts_cursor_open(sb, table, &cb), 0);
    for (;;) {
        ts_key ka, kb;
        int ga = ts_cursor_next(ca, &ka), gb = ts_cursor_next(cb, &kb);
        ck_assert_int_ge(ga, 0);
        ck_assert_int_ge(gb, 0);
        if (ga != gb) {
            equal = 0;
            break;
        }
        if (!ga) break;
        ts_tensor ta, tb;
        ck_assert_int_eq(ts_cursor_get(ca, &ta, NULL, 0), 0);
        ck_assert_int_eq(ts_cursor_get(cb, &tb, NULL, 0), 0);
        if (ts_key_cmp(&ka, &kb) != 0 || ta.nbytes != tb.nbytes || memcmp(ta.data, tb.data, ta.nbytes) != 0) equal = 0;
        ts_tensor_free(&ta);
        ts_tensor_free(&tb);
        rows++;
        if (!equal) break;
    }
    ts_cursor_close(ca);
    ts_cursor_close(cb);
    ts_close(sa);
    ts_close(sb);
    return equal && rows > 0;
}

long trt_meta_long(const char *path, const char *key) {
    ts_store *s = NULL;
    char *text = NULL;
    long v = -1;
    if (ts_open(&s, path, TS_RDONLY) < 0) return -1;
    if (ts_meta_get(s, key, &text) == 0) {
        v = strtol(text, NULL, 10);
        free(text);
    }
    ts_close(s);
    return v;
}

float *trt_read_rows(const char *path, const char *table, int width, int *n) {
    ts_store *s = NULL;
    ts_cursor *c = NULL;
    int cap = 64;
    float *rows = malloc(sizeof(float) * cap * width);
    *n = 0;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ck_assert_int_eq(ts_cursor_open(s, table, &c), 0);
    while (ts_cursor_next(c, NULL) == 1) {
        ts_tensor t;
        ck_assert_int_eq(ts_cursor_get(c, &t, NULL, 0), 0);
        ck_assert_int_eq((int)ts_tensor_numel(&t), width);
        if (*n == cap) {
            cap *= 2;
            rows = realloc(rows, sizeof(float) * cap * width);
        }
        memcpy(rows + (size_t)*n * width, t.data, sizeof(float) * width);
        (*n)++;
        ts_tensor_free(&t);
    }
    ts_cursor_close(c);
    ts_close(s);
    return rows;
}
