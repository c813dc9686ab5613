// wio: weights in and out (issue 14). Reads PyTorch's zip checkpoints (torch.save since 1.6)
// and safetensors files from a byte buffer into one flat list of named items, and writes
// safetensors files. Nothing here knows the networks: tools/import_weights maps the items to
// a network's state_dict names.
//
// A file becomes a flat list (wio_file) of items named by their path in the saved object:
// dict keys and list/tuple indices joined by '.', so a state_dict gives "conv_in.weight", a
// train.ckpt-shaped list [state_dict, optimizer, scheduler, epoch, step, time] gives
// "0.conv_in.weight", "1.state.0.exp_avg", "3", "4", ... Items are tensors or plain values (int,
// float, bool, None, str). A safetensors file gives its tensors under their header names.
//
// Everything read is checked against the bytes present: zip offsets and sizes, pickle lengths,
// memo indices and nesting, tensor offsets, sizes, strides (negative strides are refused) and
// storage sizes, safetensors header and data offsets. Input that is not what torch.save or a
// safetensors writer emits is ERR_INPUT (a damaged file ERR_CORRUPT) with a message naming the
// opcode, global, entry or tensor; only the globals torch.save uses for tensors and state
// dicts are accepted (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter, torch.*Storage of float, half, bfloat16, double, long, int,
// uint8, bool). No code of the file is ever run.
//
// Tensors point into the caller's buffer (which must outlive the wio_file); read them with
// wio_tensor_f32.
#ifndef DIFFOOD_WIO_H
#define DIFFOOD_WIO_H

#include <stddef.h>
#include <stdint.h>

#define WIO_MAX_RANK 8
#define WIO_MAX_DEPTH 32     // nesting of dicts/lists in a pickle
#define WIO_NAME_MAX 1024    // bytes of an item's dotted name
#define WIO_MAX_ITEMS 1000000 // items of one file

typedef enum { WIO_F32, WIO_F16, WIO_BF16, WIO_F64, WIO_I64, WIO_I32, WIO_U8, WIO_BOOL, WIO_DTYPE_COUNT } wio_dtype;

// "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL" (safetensors' names).
const char *wio_dtype_name(wio_dtype d);
size_t wio_dtype_size(wio_dtype d);

typedef struct {
    wio_dtype dtype;
    int rank;                      // 0..WIO_MAX_RANK
    int64_t shape[WIO_MAX_RANK];   // >= 0
    int64_t stride[WIO_MAX_RANK];  // elements, >= 0
    int64_t offset;                // elements into the storage
    const uint8_t *storage;        // borrowed from the file buffer
    size_t storage_bytes;          // every element addressed lies inside (checked)
    int big_endian;                // storage bytes are big-endian
} wio_tensor;

typedef enum { WIO_ITEM_TENSOR, WIO_ITEM_INT, WIO_ITEM_FLOAT, WIO_ITEM_BOOL, WIO_ITEM_NONE, WIO_ITEM_STR } wio_item_kind;

typedef struct {
    char *name;          // dotted path ("" for a top-level plain value)
    wio_item_kind kind;
    int64_t i;           // INT, BOOL
    double f;            // FLOAT
    char *s;             // STR (NUL-terminated)
    wio_tensor t;        // TENSOR
} wio_item;

typedef enum { WIO_FMT_TORCH, WIO_FMT_SAFETENSORS } wio_format;

typedef struct {
    wio_format format;
    int top_is_list;     // torch: the saved object is a list or tuple
    wio_item *items;     // in the order of the file
    int n, cap;
} wio_file;

// Parses `buf` (n bytes; must stay alive while *f is used): a zip (torch.save) or a safetensors
// file, told apart by their first bytes; an old (pre-1.6) torch.save file is ERR_UNSUPPORTED
// saying how to re-save it. `what` names the input in messages (a path). *f is owned by the
// caller (wio_file_free) on success and empty on failure. ERR_INPUT, ERR_CORRUPT,
// ERR_UNSUPPORTED, ERR_NOMEM.
int wio_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what);
void wio_file_free(wio_file *f);
// The item named `name`, or NULL.
const wio_item *wio_find(const wio_file *f, const char *name);

// Elements of a tensor (product of its shape).
int64_t wio_tensor_numel(const wio_tensor *t);
// Copies the tensor's elements in row-major order into dst (numel floats), converting from its
// dtype (integers and bools as their value). Never fails: the layout was checked at parse time.
void wio_tensor_f32(const wio_tensor *t, float *dst);

// --- the parts (wio_zip.c, wio_pickle.c, wio_torch.c, wio_safetensors.c) ------------------------

typedef struct {
    char *name;
    size_t offset;     // of the data in the buffer
    size_t size;
    int method;        // 0 = stored
} wio_zip_entry;

typedef struct {
    wio_zip_entry *e;
    int n;
} wio_zip;

// Reads the central directory of the zip in buf (zip64 records understood). Every entry's data
// lies inside buf (checked through its local header). ERR_CORRUPT naming `what`, ERR_NOMEM.
int wio_zip_open(wio_zip *z, const uint8_t *buf, size_t n, const char *what);
void wio_zip_close(wio_zip *z);
// The entry named `name`, or NULL.
const wio_zip_entry *wio_zip_find(const wio_zip *z, const char *name);

// torch.save's zip: unpickles ARCHIVE/data.pkl with storages from ARCHIVE/data/KEY into *f.
int wio_torch_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what);
// safetensors: 8-byte little-endian header length, JSON header, data.
int wio_safetensors_parse(wio_file *f, const uint8_t *buf, size_t n, const char *what);

// Adds an item to f (the name is copied). ERR_NOMEM, ERR_INPUT beyond WIO_MAX_ITEMS.
int wio_file_add(wio_file *f, const char *name, const wio_item *it);

// --- writing safetensors --------------------------------------------------------------------------

typedef struct {
    const char *name;
    wio_dtype dtype;    // F32 or I64 (what the exporter writes); any fixed-size dtype works
    int rank;
    int64_t shape[WIO_MAX_RANK];
    const void *data;   // numel * size bytes, little-endian, row-major
} wio_out_tensor;

// Writes a safetensors file at `path` (replaced through a temporary file and rename): header
// with every tensor in the order given and `metadata` (NULL or a JSON object text of string
// values, stored as "__metadata__"), data contiguous and 8-byte aligned. ERR_IO naming the path,
// ERR_NOMEM, ERR_USAGE (duplicate name).
int wio_safetensors_write(const char *path, const wio_out_tensor *t, int n, const char *metadata);

// For fuzzers: parses buf as wio_parse does, reads every tensor, frees everything. Returns 0
// (every outcome, accepted or refused, is fine: the point is that nothing crashes).
int wio_fuzz_one(const uint8_t *buf, size_t n);

#endif
