// imgcodec: PNG (libpng) and JPEG (libjpeg-turbo) decoding into CHW uint8 for imglist.h.
// Both libraries report errors by longjmp; every object touched after setjmp is volatile or
// allocated before it, and cleanup happens in one place.
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "common/err.h"
#include "common/infile.h"
#include "datasets/ds.h"
#include "datasets/imglist.h"

#define IMGCODEC_MAX_IMAGE_BYTES DS_MAX_IMAGE_BYTES // one decoded image: 1 GiB at most

// Refuses dimensions that would need absurd memory before anything is allocated (a small file
// can claim a huge image).
static int imgcodec_check_dims(const char *path, int64_t h, int64_t w, int c) {
    ERR_IF(h <= 0 || w <= 0 || h * w > IMGCODEC_MAX_IMAGE_BYTES / c, ERR_INPUT,
           "%s: image of %lld x %lld pixels is too large (at most %lld bytes per decoded image)", path, (long long)w,
           (long long)h, (long long)IMGCODEC_MAX_IMAGE_BYTES);
    return ds_check_size(path, 1, c, h, w);
}

// --- PNG -----------------------------------------------------------------------------------

typedef struct {
    jmp_buf jb;
    char msg[200];
} imgcodec_png_err;

static void imgcodec_png_error(png_structp png, png_const_charp msg) {
    imgcodec_png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jb, 1);
}

static void imgcodec_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static int imgcodec_png(FILE *f, const char *path, uint8_t **pixels, int *c_out, int *h_out, int *w_out) {
    imgcodec_png_err e;
    memset(&e, 0, sizeof e);
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile hwc = NULL; // interleaved rows as libpng writes them
    png_bytep *volatile rows = NULL;
    uint8_t *volatile chw = NULL;
    volatile int rc = 0;
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, imgcodec_png_error, imgcodec_png_warning);
    if (!png) return err_set(ERR_NOMEM, "%s: cannot start libpng", path);
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return err_set(ERR_NOMEM, "%s: cannot start libpng", path);
    }
    if (setjmp(e.jb)) {
        rc = err_set(ERR_CORRUPT, "%s: corrupt PNG: %s", path, e.msg);
        goto fail;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    {
        int r = imgcodec_check_dims(path, (int64_t)h, (int64_t)w, 4);
        if (r < 0) {
            rc = r;
            goto fail;
        }
    }
    png_set_expand(png); // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
    png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (c < 1 || c > 4 || rowbytes != (size_t)c * w) {
        rc = err_set(ERR_UNSUPPORTED, "%s: unsupported PNG layout (%d channels, %zu bytes per row)", path, c, rowbytes);
        goto fail;
    }
    hwc = malloc((size_t)h * rowbytes);
    rows = malloc((size_t)h * sizeof *rows);
    chw = malloc((size_t)h * rowbytes);
    if (!hwc || !rows || !chw) {
        rc = err_set(ERR_NOMEM, "%s: cannot allocate %u x %u x %d", path, (unsigned)h, (unsigned)w, c);
        goto fail;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = hwc + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (int ch = 0; ch < c; ch++)
        for (size_t p = 0; p < (size_t)h * w; p++) chw[(size_t)ch * h * w + p] = hwc[p * c + ch];
    *pixels = chw;
    chw = NULL;
    *c_out = c;
    *h_out = (int)h;
    *w_out = (int)w;
fail:
    png_destroy_read_struct(&png, &info, NULL);
    free(hwc);
    free(rows);
    free(chw);
    return rc;
}

// --- JPEG ----------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} imgcodec_jpeg_err;

static void imgcodec_jpeg_exit(j_common_ptr cinfo) {
    imgcodec_jpeg_err *e = (imgcodec_jpeg_err *)cinfo->err;
    longjmp(e->jb, 1);
}

static void imgcodec_jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

// Warnings are counted and ignored, like PIL does, except a premature end of data: libjpeg
// would pad the image with grey, PIL refuses a truncated file; so do we.
static void imgcodec_jpeg_emit(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) imgcodec_jpeg_exit(cinfo);
    cinfo->err->num_warnings++;
}

static int imgcodec_jpeg(FILE *f, const char *path, uint8_t **pixels, int *c_out, int *h_out, int *w_out) {
    struct jpeg_decompress_struct cinfo;
    imgcodec_jpeg_err e;
    uint8_t *volatile hwc = NULL;
    uint8_t *volatile chw = NULL;
    volatile int rc = 0;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = imgcodec_jpeg_exit;
    e.pub.output_message = imgcodec_jpeg_silent;
    e.pub.emit_message = imgcodec_jpeg_emit;
    if (setjmp(e.jb)) {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, msg);
        rc = err_set(ERR_CORRUPT, "%s: corrupt JPEG: %s", path, msg);
        goto fail;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        rc = err_set(ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported", path);
        goto fail;
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    {
        int r = imgcodec_check_dims(path, (int64_t)cinfo.image_height, (int64_t)cinfo.image_width, 3);
        if (r < 0) {
            rc = r;
            goto fail;
        }
    }
    jpeg_start_decompress(&cinfo);
    int c = cinfo.output_components, h = (int)cinfo.output_height, w = (int)cinfo.output_width;
    hwc = malloc((size_t)h * w * c);
    chw = malloc((size_t)h * w * c);
    if (!hwc || !chw) {
        rc = err_set(ERR_NOMEM, "%s: cannot allocate %d x %d x %d", path, h, w, c);
        goto fail;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = hwc + (size_t)cinfo.output_scanline * w * c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    for (int ch = 0; ch < c; ch++)
        for (size_t p = 0; p < (size_t)h * w; p++) chw[(size_t)ch * h * w + p] = hwc[p * c + ch];
    *pixels = chw;
    chw = NULL;
    *c_out = c;
    *h_out = h;
    *w_out = w;
fail:
    jpeg_destroy_decompress(&cinfo);
    free(hwc);
    free(chw);
    return rc;
}

// --- dispatch by magic bytes -----------------------------------------------------------------

int imglist_decode_file(const char *path, uint8_t **pixels, int *c, int *h, int *w) {
    *pixels = NULL;
    FILE *f = NULL;
    ERR_TRY(infile_fopen(path, &f, NULL));
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    rewind(f);
    int rc;
    if (got == 8 && !png_sig_cmp(magic, 0, 8))
        rc = imgcodec_png(f, path, pixels, c, h, w);
    else if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff)
        rc = imgcodec_jpeg(f, path, pixels, c, h, w);
    else
        rc = err_set(ERR_INPUT, "%s: neither a PNG nor a JPEG image (%zu bytes read)", path, got);
    fclose(f);
    return rc;
}
