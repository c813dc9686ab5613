// imglist: OpenOOD image lists ("relative/path label" per line) and the PNG/JPEG decoding
// behind them.
//
// A line is split at its FIRST space: the path (relative to the list's root directory) and an
// integer label (-1 marks OOD images). Empty lines are skipped; a trailing '\r' is ignored.
// Images are recognised by their magic bytes (PNG via libpng, JPEG via libjpeg-turbo), never by
// their extension. Decoding follows PIL (what OpenOOD uses): palette and low-bit-depth PNGs are
// expanded, 16-bit samples keep their high byte, alpha is dropped on conversion; JPEG is decoded
// with libjpeg's defaults (islow DCT, fancy upsampling).
#ifndef DIFFOOD_IMGLIST_H
#define DIFFOOD_IMGLIST_H

#include <stdint.h>

typedef struct {
    char *path;    // full path (root + "/" + relative path); owned by the list
    int32_t label; // -1 = OOD
    int line;      // 1-based line number in the list file
} imglist_item;

typedef struct {
    char *list_path;     // the list file (owned copy)
    imglist_item *items; // (n); owned
    int64_t n;
} imglist;

// Reads the list at list_path, resolving paths against root (NULL or "" = the list's own
// directory is NOT assumed: paths are then used as written). Returns 0, ERR_NOTFOUND, ERR_IO,
// ERR_INPUT (a line without a space or with a bad label, naming file and line), ERR_NOMEM.
// Release with imglist_free (also after failure).
int imglist_read(imglist *l, const char *list_path, const char *root);
void imglist_free(imglist *l);

// Decodes a PNG or JPEG file into *pixels (malloc'd, (c, h, w) CHW uint8, caller frees) with c in
// {1 grey, 2 grey+alpha, 3 RGB, 4 RGBA}. Dimensions are checked with ds_check_size before
// allocating. Returns 0, ERR_NOTFOUND (missing), ERR_IO, ERR_INPUT (neither PNG nor JPEG),
// ERR_CORRUPT (decoder error), ERR_UNSUPPORTED (e.g. CMYK JPEG), ERR_NOMEM; messages name the
// file.
int imglist_decode_file(const char *path, uint8_t **pixels, int *c, int *h, int *w);

// Loads item i: decodes it, converts to `channels` (1 or 3), and when size > 0 resizes the
// shorter side to `size` and centre-crops size x size (ds_resize_center_crop); size 0 requires
// the image to be exactly out_h x out_w already. dst holds channels x out_h x out_w bytes.
// Errors as imglist_decode_file, prefixed with "LIST:LINE: "; ERR_INPUT for a size mismatch.
int imglist_load(const imglist *l, int64_t i, uint8_t *dst, int channels, int size, int out_h, int out_w);

#endif
