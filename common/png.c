// png: PNG writer for planar grey/RGB uint8 images and tile grids (png.h), on libpng.
#include "common/png.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int png_write(const char *path, const uint8_t *img, int c, int h, int w) {
    ERR_IF(c != 1 && c != 3, ERR_USAGE, "%s: PNG images need 1 or 3 channels, not %d", path, c);
    ERR_IF(h < 1 || w < 1, ERR_USAGE, "%s: bad PNG size %d x %d", path, h, w);
    int rc = 0;
    FILE *f = NULL;
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *row = malloc((size_t)w * c);
    ERR_GOTO_IF(rc, !row, ERR_NOMEM, "out of memory");
    f = fopen(path, "wb");
    ERR_GOTO_IF(rc, !f, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    ERR_GOTO_IF(rc, !png, ERR_NOMEM, "%s: libpng could not start", path);
    info = png_create_info_struct(png);
    ERR_GOTO_IF(rc, !info, ERR_NOMEM, "%s: libpng could not start", path);
    if (setjmp(png_jmpbuf(png))) {
        rc = err_set(ERR_IO, "%s: libpng failed while writing", path);
        goto fail;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t plane = (size_t)h * w;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) row[(size_t)x * c + ch] = img[ch * plane + (size_t)y * w + x];
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
fail:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    if (f && fclose(f) != 0 && rc == 0) rc = err_set(ERR_IO, "%s: write error: %s", path, strerror(errno));
    free(row);
    return rc;
}

int png_grid_height(const png_grid_shape *g) { return g->rows * (g->th + g->gap) + g->gap; }
int png_grid_width(const png_grid_shape *g) { return g->cols * (g->tw + g->gap) + g->gap; }

int png_grid_compose(uint8_t *out, const png_grid_shape *g, const uint8_t *const *tiles) {
    ERR_IF(g->rows < 1 || g->cols < 1 || g->c < 1 || g->th < 1 || g->tw < 1 || g->gap < 0, ERR_USAGE,
           "bad grid shape %d x %d tiles of %d x %d x %d", g->rows, g->cols, g->c, g->th, g->tw);
    int gh = png_grid_height(g), gw = png_grid_width(g);
    size_t plane = (size_t)gh * gw;
    memset(out, g->bg, plane * g->c);
    for (int r = 0; r < g->rows; r++)
        for (int k = 0; k < g->cols; k++) {
            const uint8_t *t = tiles[r * g->cols + k];
            if (!t) continue;
            int y0 = g->gap + r * (g->th + g->gap), x0 = g->gap + k * (g->tw + g->gap);
            for (int ch = 0; ch < g->c; ch++)
                for (int y = 0; y < g->th; y++)
                    memcpy(out + ch * plane + (size_t)(y0 + y) * gw + x0, t + ((size_t)ch * g->th + y) * g->tw,
                           (size_t)g->tw);
        }
    return 0;
}
