// npyimg: uint8 image arrays in NumPy .npy files, with optional integer labels.
//
// Images: dtype uint8 ("|u1"), shape N x H x W (grey), N x H x W x C or N x C x H x W.
// The layout of a rank-4 array is given (NPYIMG_NHWC / NPYIMG_NCHW) or guessed (NPYIMG_AUTO):
// the axis among 1 and 3 whose size is a channel count (1, 3 or 4) is the channel axis; when
// both or neither are, the guess is refused (ERR_INPUT: "ambiguous, give --layout"). Labels:
// a rank-1 array of N integers (u1, i4 or i8), each in -1..INT32_MAX; without a labels file
// every label is -1. Data are read with the header and size checked first (common/npy.h,
// ds_check_size), so an absurd header fails before any allocation.
#ifndef DIFFOOD_NPYIMG_H
#define DIFFOOD_NPYIMG_H

#include "datasets/ds.h"

typedef enum { NPYIMG_AUTO, NPYIMG_NHW, NPYIMG_NHWC, NPYIMG_NCHW, NPYIMG_LAYOUT_COUNT } npyimg_layout;

// Parses "auto", "nhw", "nhwc", "nchw" (case-insensitive) into *out. 0 or ERR_USAGE.
int npyimg_layout_from_name(const char *name, npyimg_layout *out);
const char *npyimg_layout_name(npyimg_layout l);

// Reads images (and labels when labels_path is not NULL) into *out, converting HWC to CHW.
// Returns 0, ERR_NOTFOUND, ERR_INPUT (wrong dtype/rank/layout, count mismatch, label out of
// range), ERR_UNSUPPORTED, ERR_IO, ERR_NOMEM, naming the file. Caller owns *out; zeroed on
// failure.
int npyimg_read(ds_images *out, const char *images_path, const char *labels_path, npyimg_layout layout);

#endif
