// Shared helpers of the Check suites (test_util.h). Not a suite: no suite_ function here.
#define _GNU_SOURCE
#include "tests/test_util.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h> // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <png.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/store.h"

char tu_dir[256];

// --- temporary directory ----------------------------------------------------------------------

void tu_setup(void) {
    snprintf(tu_dir, sizeof tu_dir, "/tmp/diffood-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tu_dir));
}

static int tu_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void tu_teardown(void) {
    ck_assert_msg(nftw(tu_dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", tu_dir);
}

const char *tu_path(const char *name) {
    static char buf[64][512];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_dir, name);
    return buf[k];
}

const char *tu_put(const char *name, const char *text) {
    const char *p = tu_path(name);
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "cannot write %s", p);
    fputs(text, f);
    fclose(f);
    return p;
}

// --- programs ---------------------------------------------------------------------------------

const char *tu_bin(void) {
    const char *b = getenv("DIFFOOD_BIN");
    ck_assert_msg(b != NULL && *b, "DIFFOOD_BIN is not set");
    return b;
}

const char *tu_python(void) {
    const char *p = getenv("DIFFOOD_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

pid_t tu_start(const char *prog, const char *const *args, const char *const *env) {
    char exe[512];
    snprintf(exe, sizeof exe, "%s/%s", tu_bin(), prog);
    const char *argv[64];
    int n = 0;
    argv[n++] = exe;
    for (int i = 0; args[i]; i++) {
        ck_assert_int_lt(n, 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    const char *out = tu_path("stdout.txt"), *err = tu_path("stderr.txt");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int tu_wait(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int tu_run(const char *prog, const char *const *args, const char *const *env) {
    return tu_wait(tu_start(prog, args, env));
}

int tu_run_stderr(const char *prog, const char *const *args, char *err, size_t cap) {
    int rc = tu_run(prog, args, NULL);
    tu_read_text(tu_path("stderr.txt"), err, cap);
    return rc;
}

int tu_fork_stderr(const char *path, int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(99);
        close(fd);
        int rc = fn(arg);
        fflush(stderr);
        _exit(rc);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "child ended by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

int tu_capture(const char *cmd, char *buf, size_t cap) {
    size_t len = strlen(cmd) + 16;
    char *full = malloc(len);
    ck_assert_ptr_nonnull(full);
    snprintf(full, len, "{ %s ; } 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    ck_assert_msg(p != NULL, "popen failed: %s", cmd);
    size_t got, have = 0;
    char tmp[4096];
    while ((got = fread(tmp, 1, sizeof tmp, p)) > 0) {
        size_t take = got < cap - 1 - have ? got : cap - 1 - have;
        memcpy(buf + have, tmp, take);
        have += take;
    }
    buf[have] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// --- files and time ---------------------------------------------------------------------------

const char *tu_read_text(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

void *tu_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)len, f), (size_t)len);
    p[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return p;
}

void tu_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

uint8_t *tu_gunzip(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    ck_assert_msg(g != NULL, "cannot open %s", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    int got;
    while ((got = gzread(g, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)got;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    *n = len;
    return buf;
}

void tu_write_png(const char *path, const void *px, int h, int w, unsigned format, const void *cmap, int cmap_n) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    img.colormap_entries = (png_uint_32)cmap_n;
    ck_assert_msg(png_image_write_to_file(&img, path, 0, px, 0, cmap), "cannot write %s", path);
}

void tu_write_jpeg(const char *path, const uint8_t *hwc, int h, int w, int c) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 100, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(hwc + (size_t)ci.next_scanline * w * c);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

// --- stores -----------------------------------------------------------------------------------

char *tu_meta(ts_store *s, const char *key) {
    char *t = NULL;
    return ts_meta_get(s, key, &t) == 0 ? t : NULL;
}

void tu_assert_not_complete(const char *path) {
    ts_store *s = NULL;
    if (ts_open(&s, path, TS_RDONLY) < 0) return;
    char *c = tu_meta(s, "complete");
    ck_assert_msg(!c || strcmp(c, "true") != 0, "%s is marked complete", path);
    free(c);
    ts_close(s);
}

double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
