// Shared helpers of the fuzz targets (util.h).
#define _GNU_SOURCE
#include "tests/fuzz/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"

void fuzz_init(void) {
    static int done;
    if (done) return;
    done = 1;
    setenv("DIFFOOD_DS_MAX_BYTES", "67108864", 1);
}

const char *fuzz_file(int slot, const void *data, size_t n) {
    static int fds[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    static char paths[8][64];
    if (slot < 0 || slot >= 8) abort();
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) abort();
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    const uint8_t *p = data;
    for (size_t at = 0; at < n;) {
        ssize_t w = pwrite(fds[slot], p + at, n - at, (off_t)at);
        if (w <= 0) abort();
        at += (size_t)w;
    }
    return paths[slot];
}

static char fuzz_dir_path[256];

static void fuzz_dir_remove(void) {
    if (!fuzz_dir_path[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/diffood-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir_path)) abort();
    atexit(fuzz_dir_remove);
    return fuzz_dir_path;
}

void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb) {
    size_t len = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0, off = size >= 2 ? 2 : size;
    if (len > size - off) len = size - off;
    *a = data + off;
    *na = len;
    *b = data + off + len;
    *nb = size - off - len;
}
