// cifar: reader of the CIFAR-10 and CIFAR-100 binary versions.
//
// CIFAR-10 record: 1 label byte, then 3072 pixel bytes (3 x 32 x 32, CHW: the red plane, the
// green, the blue). CIFAR-100 record: coarse label byte, fine label byte, then the 3072 bytes.
// Several files are read in one call and concatenated in the order given. A file whose size
// is not a whole number of records is rejected naming the file.
#ifndef DIFFOOD_CIFAR_H
#define DIFFOOD_CIFAR_H

#include "datasets/ds.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)

typedef enum {
    CIFAR_10,         // 1 label byte per record
    CIFAR_100_FINE,   // 2 label bytes, keep the fine (second) label
    CIFAR_100_COARSE, // 2 label bytes, keep the coarse (first) label
    CIFAR_KIND_COUNT
} cifar_kind;

// Parses "10", "100" (= fine), "100-fine", "100-coarse" into *out. Returns 0 or ERR_USAGE.
int cifar_kind_from_name(const char *name, cifar_kind *out);
// "10", "100-fine", "100-coarse".
const char *cifar_kind_name(cifar_kind k);

// Reads n_paths files of kind `kind` into *out (c = 3, h = w = 32). Returns 0, ERR_NOTFOUND,
// ERR_INPUT (size not a multiple of the record size, empty file, label byte out of range:
// > 9 for CIFAR-10, > 99 fine, > 19 coarse, naming file and record), ERR_IO or ERR_NOMEM.
// The caller owns *out (ds_images_free); zeroed on failure.
int cifar_read(ds_images *out, const char *const *paths, int n_paths, cifar_kind kind);

#endif
