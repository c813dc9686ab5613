// npyimg: uint8 image arrays (NHW, NHWC, NCHW) and integer labels from .npy files.
#include "datasets/npyimg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/infile.h"
#include "common/npy.h"

static const char *const npyimg_names[NPYIMG_LAYOUT_COUNT] = {"auto", "nhw", "nhwc", "nchw"};

int npyimg_layout_from_name(const char *name, npyimg_layout *out) {
    for (int i = 0; i < NPYIMG_LAYOUT_COUNT; i++)
        if (!strcasecmp(name, npyimg_names[i])) {
            *out = (npyimg_layout)i;
            return 0;
        }
    return err_set(ERR_USAGE, "unknown layout '%s' (auto, nhw, nhwc, nchw)", name);
}

const char *npyimg_layout_name(npyimg_layout l) { return l >= 0 && l < NPYIMG_LAYOUT_COUNT ? npyimg_names[l] : "?"; }

static int npyimg_is_channels(int64_t v) { return v == 1 || v == 3 || v == 4; }

// Decides the layout of an image array's header.
static int npyimg_pick_layout(const npy_header *h, const char *path, npyimg_layout want, npyimg_layout *got) {
    ERR_IF(h->dtype != TS_U8, ERR_INPUT, "%s: images must be uint8 (|u1), not %s", path, ts_dtype_name(h->dtype));
    if (h->rank == 3) {
        ERR_IF(want != NPYIMG_AUTO && want != NPYIMG_NHW, ERR_INPUT, "%s: rank-3 array (N x H x W) but layout %s given",
               path, npyimg_layout_name(want));
        *got = NPYIMG_NHW;
        return 0;
    }
    ERR_IF(h->rank != 4, ERR_INPUT, "%s: images must be N x H x W, N x H x W x C or N x C x H x W, not rank %d", path,
           h->rank);
    ERR_IF(want == NPYIMG_NHW, ERR_INPUT, "%s: rank-4 array but layout nhw given", path);
    if (want != NPYIMG_AUTO) {
        *got = want;
        return 0;
    }
    int c1 = npyimg_is_channels(h->shape[1]), c3 = npyimg_is_channels(h->shape[3]);
    ERR_IF(c1 == c3, ERR_INPUT,
           "%s: layout of shape (%lld, %lld, %lld, %lld) is ambiguous: give --layout nhwc or nchw", path,
           (long long)h->shape[0], (long long)h->shape[1], (long long)h->shape[2], (long long)h->shape[3]);
    *got = c3 ? NPYIMG_NHWC : NPYIMG_NCHW;
    return 0;
}

static int npyimg_read_labels(ds_images *out, const char *path) {
    int rc = 0;
    npy_header h;
    void *data = NULL;
    FILE *f = NULL;
    ERR_TRY(infile_fopen(path, &f, NULL));
    ERR_GOTO(rc, npy_read_header(f, path, &h));
    ERR_GOTO_IF(rc, h.rank != 1, ERR_INPUT, "%s: labels must be a rank-1 array, not rank %d", path, h.rank);
    ERR_GOTO_IF(rc, h.shape[0] != out->n, ERR_INPUT, "%s: %lld labels for %lld images", path, (long long)h.shape[0],
                (long long)out->n);
    ERR_GOTO_IF(rc, h.dtype != TS_U8 && h.dtype != TS_I32 && h.dtype != TS_I64, ERR_INPUT,
                "%s: labels must be integers (u1, i4, i8), not %s", path, ts_dtype_name(h.dtype));
    data = malloc(h.nbytes ? h.nbytes : 1);
    ERR_GOTO_IF(rc, !data, ERR_NOMEM, "%s: cannot allocate %zu bytes", path, h.nbytes);
    ERR_GOTO_IF(rc, fread(data, 1, h.nbytes, f) != h.nbytes, ERR_INPUT, "%s: truncated label data", path);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t v = h.dtype == TS_U8 ? ((uint8_t *)data)[i] : h.dtype == TS_I32 ? ((int32_t *)data)[i] : ((int64_t *)data)[i];
        ERR_GOTO_IF(rc, v < -1 || v > INT32_MAX, ERR_INPUT, "%s: label %lld of record %lld is out of range", path,
                    (long long)v, (long long)i);
        out->labels[i] = (int32_t)v;
    }
fail:
    free(data);
    fclose(f);
    return rc;
}

int npyimg_read(ds_images *out, const char *images_path, const char *labels_path, npyimg_layout layout) {
    int rc = 0;
    npy_header h;
    uint8_t *hwc = NULL;
    memset(out, 0, sizeof *out);
    FILE *f = NULL;
    ERR_TRY(infile_fopen(images_path, &f, NULL));
    ERR_GOTO(rc, npy_read_header(f, images_path, &h));
    npyimg_layout got;
    ERR_GOTO(rc, npyimg_pick_layout(&h, images_path, layout, &got));
    int64_t n = h.shape[0], c, hh, ww;
    if (got == NPYIMG_NHW) {
        c = 1, hh = h.shape[1], ww = h.shape[2];
    } else if (got == NPYIMG_NHWC) {
        hh = h.shape[1], ww = h.shape[2], c = h.shape[3];
    } else {
        c = h.shape[1], hh = h.shape[2], ww = h.shape[3];
    }
    ERR_GOTO_IF(rc, c > 4, ERR_INPUT, "%s: %lld channels (1 to 4 supported)", images_path, (long long)c);
    ERR_GOTO(rc, ds_check_size(images_path, n, c, hh, ww));
    ERR_GOTO(rc, ds_images_alloc(out, images_path, n, (int)c, (int)hh, (int)ww));
    for (int64_t i = 0; i < n; i++) out->labels[i] = -1;
    if (got != NPYIMG_NHWC) {
        for (size_t at = 0; at < h.nbytes;) { // in 16 MiB pieces, polling for interruption
            size_t piece = h.nbytes - at < ((size_t)1 << 24) ? h.nbytes - at : (size_t)1 << 24;
            ERR_GOTO(rc, ds_poll());
            ERR_GOTO_IF(rc, fread(out->pixels + at, 1, piece, f) != piece, ERR_INPUT, "%s: truncated image data",
                        images_path);
            at += piece;
        }
    } else {
        size_t img = (size_t)c * hh * ww, hw = (size_t)hh * ww;
        hwc = malloc(img);
        ERR_GOTO_IF(rc, !hwc, ERR_NOMEM, "%s: out of memory", images_path);
        for (int64_t i = 0; i < n; i++) {
            if (i % 4096 == 0) ERR_GOTO(rc, ds_poll());
            ERR_GOTO_IF(rc, fread(hwc, 1, img, f) != img, ERR_INPUT, "%s: truncated image data at image %lld",
                        images_path, (long long)i);
            uint8_t *dst = ds_image_at(out, i);
            for (int64_t ch = 0; ch < c; ch++)
                for (size_t p = 0; p < hw; p++) dst[ch * hw + p] = hwc[p * c + ch];
        }
    }
    if (labels_path) ERR_GOTO(rc, npyimg_read_labels(out, labels_path));
fail:
    free(hwc);
    fclose(f);
    if (rc < 0) ds_images_free(out);
    return rc;
}
