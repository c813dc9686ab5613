// imglist: reading OpenOOD image lists and loading one listed image (decode, channels, resize).
#include "datasets/imglist.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/infile.h"
#include "datasets/ds.h"

void imglist_free(imglist *l) {
    if (!l) return;
    for (int64_t i = 0; i < l->n; i++) free(l->items[i].path);
    free(l->items);
    free(l->list_path);
    memset(l, 0, sizeof *l);
}

static int imglist_push(imglist *l, int64_t *cap, char *path, int32_t label, int line) {
    if (l->n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 256;
        imglist_item *it = realloc(l->items, (size_t)nc * sizeof *it);
        if (!it) return err_set(ERR_NOMEM, "%s: out of memory at line %d", l->list_path, line);
        l->items = it;
        *cap = nc;
    }
    l->items[l->n++] = (imglist_item){path, label, line};
    return 0;
}

int imglist_read(imglist *l, const char *list_path, const char *root) {
    int rc = 0;
    FILE *f = NULL;
    char *buf = NULL, *path = NULL;
    size_t bufcap = 0;
    int64_t cap = 0;
    memset(l, 0, sizeof *l);
    l->list_path = strdup(list_path);
    ERR_IF(!l->list_path, ERR_NOMEM, "%s: out of memory", list_path);
    ERR_GOTO(rc, infile_fopen(list_path, &f, NULL));
    ssize_t len;
    int line = 0;
    while ((len = getline(&buf, &bufcap, f)) >= 0) {
        ERR_GOTO_IF(rc, line == INT32_MAX, ERR_INPUT, "%s: more than %d lines", list_path, INT32_MAX);
        line++;
        if (line % 65536 == 0) ERR_GOTO(rc, ds_poll());
        ERR_GOTO_IF(rc, (size_t)len != strlen(buf), ERR_INPUT, "%s:%d: a NUL byte in the line: not a text list",
                    list_path, line);
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
        if (len == 0) continue;
        char *sp = strchr(buf, ' ');
        ERR_GOTO_IF(rc, !sp || sp == buf, ERR_INPUT, "%s:%d: expected 'relative/path label', got '%.200s'", list_path,
                    line, buf);
        *sp = '\0';
        char *end = NULL;
        errno = 0;
        long lab = strtol(sp + 1, &end, 10);
        ERR_GOTO_IF(rc, end == sp + 1 || *end != '\0' || errno || lab < -1 || lab > INT32_MAX, ERR_INPUT,
                    "%s:%d: bad label '%.100s' (an integer >= -1)", list_path, line, sp + 1);
        size_t need = (root && *root ? strlen(root) + 1 : 0) + strlen(buf) + 1;
        path = malloc(need);
        ERR_GOTO_IF(rc, !path, ERR_NOMEM, "%s:%d: out of memory", list_path, line);
        if (root && *root)
            snprintf(path, need, "%s/%s", root, buf);
        else
            snprintf(path, need, "%s", buf);
        ERR_GOTO(rc, imglist_push(l, &cap, path, (int32_t)lab, line));
        path = NULL;
    }
    ERR_GOTO_IF(rc, ferror(f), ERR_IO, "%s: read error", list_path);
    ERR_GOTO_IF(rc, l->n == 0, ERR_INPUT, "%s: the list names no images", list_path);
fail:
    free(path);
    free(buf);
    if (f) fclose(f);
    return rc;
}

int imglist_load(const imglist *l, int64_t i, uint8_t *dst, int channels, int size, int out_h, int out_w) {
    int rc = 0, c = 0, h = 0, w = 0;
    uint8_t *pix = NULL, *conv = NULL;
    const imglist_item *it = &l->items[i];
    ERR_GOTO(rc, imglist_decode_file(it->path, &pix, &c, &h, &w));
    if (size <= 0) {
        ERR_GOTO_IF(rc, h != out_h || w != out_w, ERR_INPUT, "%s: image is %d x %d, expected %d x %d (give --size)",
                    it->path, h, w, out_h, out_w);
        ERR_GOTO(rc, ds_convert_channels(dst, channels, pix, c, h, w));
    } else {
        ERR_GOTO(rc, ds_resize_check(it->path, channels, h, w, size));
        conv = malloc((size_t)channels * h * w);
        ERR_GOTO_IF(rc, !conv, ERR_NOMEM, "%s: out of memory", it->path);
        ERR_GOTO(rc, ds_convert_channels(conv, channels, pix, c, h, w));
        ERR_GOTO(rc, ds_resize_center_crop(dst, size, conv, channels, h, w));
    }
fail:
    free(pix);
    free(conv);
    if (rc < 0) err_prefix(rc, "%s:%d: ", l->list_path, it->line);
    return rc;
}
