// npy: NumPy .npy files (format versions 1.0, 2.0, 3.0): header parsing and writing, and whole
// arrays in and out. Dtypes: the tensor store's (u1, i4, i8, f2, f4, f8; little-endian; "|u1",
// "<f4", ...), C order only. Fortran order, big-endian data, object arrays, structured dtypes
// and malformed headers are rejected with a message naming the file and the problem.
#ifndef DIFFOOD_NPY_H
#define DIFFOOD_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/store.h"

#define NPY_MAX_RANK 8

typedef struct {
    ts_dtype dtype;
    int rank;                      // 0..NPY_MAX_RANK
    int64_t shape[NPY_MAX_RANK];   // entries past rank are 0
    int version;                   // major version read or written: 1, 2 or 3
    size_t data_offset;            // bytes before the data (magic + lengths + header + padding)
    size_t nbytes;                 // data bytes: numel * dtype size
} npy_header;

// Number of elements of a header's shape (1 for rank 0).
int64_t npy_numel(const npy_header *h);

// Parses the header dictionary text `dict` (len bytes, e.g. "{'descr': '<f4', 'fortran_order':
// False, 'shape': (3, 4), }") into h->dtype/rank/shape/nbytes. `what` names the file in messages.
// ERR_INPUT for malformed text, ERR_UNSUPPORTED for fortran_order True, big-endian or unknown
// dtypes, rank > NPY_MAX_RANK.
int npy_parse_dict(const char *dict, size_t len, npy_header *h, const char *what);

// Reads the magic, version and header from f (positioned at the file start) and leaves f at the
// data. Also checks that the data fits in the file when f is seekable (ERR_INPUT "truncated").
// Errors: ERR_INPUT (not an NPY file, truncated, malformed), ERR_UNSUPPORTED, ERR_IO.
int npy_read_header(FILE *f, const char *path, npy_header *h);

// Writes a header for dtype/rank/shape to f: version 1.0, or 2.0 when the header text needs more
// than 65535 bytes; sets h (may be NULL). ERR_USAGE (bad dtype/rank), ERR_IO.
int npy_write_header(FILE *f, const char *path, ts_dtype dtype, int rank, const int64_t *shape,
                     npy_header *h);

// Loads a whole file: *data = malloc'd bytes (h->nbytes, at least 1 byte allocated) owned by the
// caller (free). Errors as npy_read_header, plus ERR_NOTFOUND (missing file), ERR_NOMEM.
int npy_load(const char *path, npy_header *h, void **data);

// Writes a whole array (C order, `data` of numel * dtype size bytes) to path (replaced).
// ERR_USAGE, ERR_IO (message names the file).
int npy_save(const char *path, ts_dtype dtype, int rank, const int64_t *shape, const void *data);

#endif
