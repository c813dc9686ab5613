// Shared helpers of the Check suites (prefix tu_): a temporary directory per test, paths in it,
// small files, running $DIFFOOD_BIN programs and shell commands with their output captured, a
// child process with stderr in a file, whole-file reads (plain and gzip) and writes, PNG and JPEG
// writers, store meta checks and a monotonic clock.
// Every helper asserts (ck_assert) on what it cannot do unless it says otherwise, so it may only
// be called inside a test or a checked fixture. Not a suite: test_util.c defines no suite_.
#ifndef DIFFOOD_TEST_UTIL_H
#define DIFFOOD_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ts_store; // common/store.h

// The current test's temporary directory (set by tu_setup).
extern char tu_dir[256];

// Checked fixture: makes a fresh /tmp/diffood-test-XXXXXX and stores its path in tu_dir.
void tu_setup(void);
// Checked fixture: removes tu_dir and everything below it (asserts the removal succeeded).
void tu_teardown(void);
// "<tu_dir>/name" in a ring of 64 static buffers: valid until 64 more calls.
const char *tu_path(const char *name);
// Writes `text` to tu_path(name); returns that path (same lifetime as tu_path's).
const char *tu_put(const char *name, const char *text);

// $DIFFOOD_BIN (asserted to be set and non-empty).
const char *tu_bin(void);
// $DIFFOOD_PYTHON when set and non-empty, else /usr/bin/python3.
const char *tu_python(void);

// Starts $DIFFOOD_BIN/prog with args (NULL-terminated, at most 60), its stdout and stderr into
// tu_path("stdout.txt") / tu_path("stderr.txt"); env (NULL or NULL-terminated "NAME=VALUE"
// strings) is added to the child's environment. Returns the child's pid.
pid_t tu_start(const char *prog, const char *const *args, const char *const *env);
// Waits for pid: its exit status, or 128 + the signal that ended it.
int tu_wait(pid_t pid);
// tu_start then tu_wait.
int tu_run(const char *prog, const char *const *args, const char *const *env);
// tu_run without extra environment, then up to cap-1 bytes of the program's stderr into err.
int tu_run_stderr(const char *prog, const char *const *args, char *err, size_t cap);

// Runs fn(arg) in a forked child whose stderr is the file `path`; the child exits with fn's
// return value (stderr flushed first). Asserts the child exited normally; returns its status.
int tu_fork_stderr(const char *path, int (*fn)(void *), void *arg);
// Runs the shell command `cmd` with stderr joined to stdout; up to cap-1 bytes of the output go
// into buf (NUL-terminated, the rest is read and dropped). Returns the exit status, or -1 when
// the command did not exit normally.
int tu_capture(const char *cmd, char *buf, size_t cap);

// Reads up to cap-1 bytes of the file at path into buf (NUL-terminated). Returns buf, or NULL
// when the file cannot be opened (buf is then "").
const char *tu_read_text(const char *path, char *buf, size_t cap);
// The whole file at path in a malloc'd buffer (caller frees), NUL-terminated; its size in *n.
void *tu_read_file(const char *path, size_t *n);
// Writes n bytes of data to the file at path (replaced).
void tu_write_file(const char *path, const void *data, size_t n);
// The whole decompressed contents of a gzip (or plain) file, malloc'd (caller frees); size in *n.
uint8_t *tu_gunzip(const char *path, size_t *n);

// Writes an 8-bit PNG of h x w pixels in libpng's simplified `format` (PNG_FORMAT_*), with a
// colour map of cmap_n entries for the colour-mapped formats (else NULL, 0).
void tu_write_png(const char *path, const void *px, int h, int w, unsigned format, const void *cmap, int cmap_n);
// Writes a JPEG (quality 100) of interleaved (h, w, c) pixels, c = 1 (grey) or 3 (RGB).
void tu_write_jpeg(const char *path, const uint8_t *hwc, int h, int w, int c);

// Meta `key` of an open store, malloc'd (caller frees), or NULL when absent.
char *tu_meta(struct ts_store *s, const char *key);
// Asserts that the store at path is absent or not marked complete (meta "complete" != "true").
void tu_assert_not_complete(const char *path);

// Seconds on the monotonic clock.
double tu_now(void);

#endif
