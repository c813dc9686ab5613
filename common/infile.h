// infile: opening the files a user names as input (datasets, lists, configs) with clear, bounded
// answers: a directory is "is a directory" (ERR_INPUT, exit 2), a missing file or a path through
// a non-directory is ERR_NOTFOUND, and nothing reads without limit.
//
// Two kinds of input:
//   * sources (infile_open, infile_fopen): regular files only. A device, FIFO or socket is
//     refused (ERR_INPUT naming its kind): ingest reads a source twice (its content hash for the
//     store key, then its data), which a stream cannot give, and /dev/zero never ends.
//   * small texts (infile_read_all): any readable file but a directory, FIFOs and devices
//     included (`--config <(...)`), read to its end but never past max_bytes (ERR_INPUT
//     "larger than N bytes": `--config /dev/zero` stops at the cap).
// A FIFO is opened without blocking on a missing writer only to learn its kind; reading it then
// waits for data as usual.
//
// Every message names the path. The functions never print and never exit.
#ifndef DIFFOOD_INFILE_H
#define DIFFOOD_INFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// The kind of a file's st_mode in words ("a directory", "a character device", "a FIFO", ...).
const char *infile_kind(unsigned mode);

// Opens the regular file `path` for reading: *fd (O_RDONLY | O_CLOEXEC, blocking), *size its
// bytes (may be NULL). Returns 0, ERR_NOTFOUND (missing, or a path component is not a
// directory), ERR_INPUT ("PATH: is a directory", "PATH: not a regular file (a FIFO)"), ERR_IO.
int infile_open(const char *path, int *fd, uint64_t *size);
// infile_open as a stdio stream ("rb"). Same errors, plus ERR_NOMEM.
int infile_fopen(const char *path, FILE **f, uint64_t *size);
// A stdio stream on `path` of any kind but a directory (a pipe too: for what is read once, as
// dstore import reads an NPY file); *size is 0 for a stream. Errors as infile_fopen.
int infile_fopen_stream(const char *path, FILE **f, uint64_t *size);

// Reads the whole of `path` (any kind but a directory) into *buf (malloc'd, NUL-terminated,
// caller frees), its length in *len. ERR_INPUT when it holds more than max_bytes bytes
// ("PATH: larger than MAX bytes, too large for WHAT": what = "a YAML config"), ERR_NOTFOUND, ERR_INPUT (a directory), ERR_IO,
// ERR_NOMEM.
int infile_read_all(const char *path, size_t max_bytes, const char *what, char **buf, size_t *len);

#endif
