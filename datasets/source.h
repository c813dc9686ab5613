// source: one front for every raw format ingest reads. It fingerprints the source files
// (cheap content hashes for the stage key, before anything is parsed), loads the set, and
// hands out image i already converted to the requested channel count (and, for image lists,
// resized and centre-cropped), with its label.
//
// In-memory formats (idx, mnist-json, cifar, npy) are read whole at ds_source_open; image
// lists are decoded one image at a time in ds_source_get (so a resumed run decodes only the
// missing images).
#ifndef DIFFOOD_SOURCE_H
#define DIFFOOD_SOURCE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "datasets/cifar.h"
#include "datasets/ds.h"
#include "datasets/imglist.h"
#include "datasets/npyimg.h"

#define DS_FORMAT_LIST(X)              \
    X(DS_FMT_IDX, "idx")               \
    X(DS_FMT_MNISTJSON, "mnist-json")  \
    X(DS_FMT_CIFAR, "cifar")           \
    X(DS_FMT_IMGLIST, "imglist")       \
    X(DS_FMT_NPY, "npy")

typedef enum {
#define DS_FORMAT_ENUM(name, text) name,
    DS_FORMAT_LIST(DS_FORMAT_ENUM)
#undef DS_FORMAT_ENUM
    DS_FMT_COUNT
} ds_format;

// Parses a format name ("idx", ...) into *out. 0 or ERR_USAGE listing the formats.
int ds_format_from_name(const char *name, ds_format *out);
const char *ds_format_name(ds_format f);

typedef struct {
    ds_format format;
    const char *images, *labels; // idx (both required), npy (labels optional)
    const char *const *paths;    // mnist-json: one directory; cifar: the files
    int n_paths;
    const char *list, *root; // imglist: the list file and the directory paths are relative to
    int size;                // imglist: resize shorter side + centre crop to size x size (0: none)
    cifar_kind cifar;        // cifar: 10, 100-fine, 100-coarse
    npyimg_layout layout;    // npy: layout of rank-4 arrays
    int channels;            // requested channel count (1 or 3), 0 = as the source has it
                             // (image lists: 3)
    int num_classes;         // idx, npy, imglist: labels must be 0..num_classes-1 (npy and
                             // imglist also -1 = OOD); 0 = the format's own: idx 10 (MNIST,
                             // Fashion-MNIST), npy and imglist DS_MAX_CLASSES. cifar and
                             // mnist-json fix their classes (0 required).
} ds_source_spec;

typedef struct {
    ds_source_spec spec;
    ds_images mem; // in-memory formats
    imglist list;  // imglist
    int64_t n;     // images
    int c, h, w;   // shape of what ds_source_get returns
    uint8_t *scratch;
} ds_source;

// Checks that the spec has what its format needs (ERR_USAGE naming the missing option).
int ds_source_check_spec(const ds_source_spec *spec);

// Content fingerprints of every source file (XXH3-128, streamed): *inputs = a new JSON object
// of role -> hash for the stage key (paths left out, so moving the files changes nothing), and
// *files = a new JSON array of {"path":..., "xxh3":...} for the store's meta. For image lists
// the role "images" hashes every listed image's relative path and contents in list order.
// Both owned by the caller (cJSON_Delete). ERR_NOTFOUND / ERR_IO naming the file (list:line for
// an image), ERR_INPUT (bad list), ERR_NOMEM.
int ds_source_fingerprint(const ds_source_spec *spec, cJSON **inputs, cJSON **files);

// Every source file must be a regular file of at most ds_max_file_bytes() (mnist-json: its
// own 2 GiB), checked before it is hashed: a directory is "is a directory", a device or a pipe
// "not a regular file" (ERR_INPUT); --path of mnist-json and --root of imglist must be
// directories. Hashing polls ds_poll() every MiB and every listed image.

// Reads the source (whole for in-memory formats; the list for imglist, whose first image is
// decoded to learn the shape when size is 0). Errors of the format readers, naming the file;
// ERR_INPUT for a label outside 0..num_classes-1 (-1 allowed for npy and imglist), naming the
// labels file (list:line) and the record index.
// Release with ds_source_close (also after failure).
int ds_source_open(ds_source *s, const ds_source_spec *spec);
void ds_source_close(ds_source *s);

// Label of image i (0 <= i < s->n).
int32_t ds_source_label(const ds_source *s, int64_t i);
// Image i as (s->c, s->h, s->w) into dst. Errors (image lists): decode errors naming list:line
// and image.
int ds_source_get(ds_source *s, int64_t i, uint8_t *dst);

#endif
