// idx: reader of the IDX files of MNIST and Fashion-MNIST (LeCun's format), gzip-compressed
// or raw (zlib reads both): images idx3-ubyte (magic 0x00000803, n x h x w uint8) and labels
// idx1-ubyte (magic 0x00000801, n uint8).
//
// Headers are checked against the file before anything is allocated: a raw file must hold
// exactly the bytes its header announces, a gzip file cannot announce more than deflate's
// maximum ratio (1032:1) of its compressed size, nor disagree with its trailer's length
// (ISIZE, mod 2^32); and the total is capped by ds_max_bytes(). A short (truncated) stream,
// a wrong magic or differing image/label counts are ERR_INPUT/ERR_CORRUPT naming the file.
#ifndef DIFFOOD_IDX_H
#define DIFFOOD_IDX_H

#include "datasets/ds.h"

// Reads an images file and a labels file into *out (c = 1). Returns 0, ERR_NOTFOUND (a file
// cannot be opened), ERR_INPUT (bad magic, sizes, count mismatch), ERR_CORRUPT (truncated or
// corrupt gzip stream) or ERR_NOMEM, each with a message naming the file. On success the
// caller owns *out (ds_images_free); on failure *out is zeroed.
int idx_read(ds_images *out, const char *images_path, const char *labels_path);

#endif
