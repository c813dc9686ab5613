// Helpers of the train stage tests (test_train*.c): temporary directory, a tiny labelled image
// store made with ts_*, running $DIFFOOD_BIN/train, comparing checkpoint tables byte for byte.
// The directory, paths and runs are test_util.h's (tu_*) under the names these tests use.
#ifndef DIFFOOD_TEST_TRAIN_UTIL_H
#define DIFFOOD_TEST_TRAIN_UTIL_H

#include <stdint.h>
#include <sys/types.h>

// The temporary directory (tu_dir) and its checked fixtures (tu_setup / tu_teardown).
#define trt_dir tu_dir
extern char tu_dir[256];
void trt_setup(void);
void trt_teardown(void);
// "<tmpdir>/name" (a ring of static buffers).
const char *trt_path(const char *name);
// A complete image store of n images (c, s, s) whose pixels depend on the label (label i % 10):
// a class-dependent bar pattern plus a little noise; with_labels 0 leaves out the label table.
void trt_make_store(const char *path, int n, int c, int s, int with_labels);
// Starts $DIFFOOD_BIN/train with args (NULL-terminated); stdout/stderr go to tmpdir files;
// DIFFOOD_PROGRESS_INTERVAL=0 in its environment.
pid_t trt_start(const char *const *args);
// Runs it to the end: the exit status (or 128 + signal).
int trt_run(const char *const *args);
// The captured stderr / stdout of the last run (static buffer).
const char *trt_stderr(void);
const char *trt_stdout(void);
// 1 when every record of `table` is byte-identical in both stores (same keys too).
int trt_tables_equal(const char *a, const char *b, const char *table);
// meta `key` of the store parsed as an integer, or -1 when absent/unreadable.
long trt_meta_long(const char *path, const char *key);
// The f32 vector records of `table` (e.g. the log): *n rows of `width` floats, malloc'd.
float *trt_read_rows(const char *path, const char *table, int width, int *n);

#endif
