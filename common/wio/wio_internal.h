// wio_internal: the value tree of the unpickler (wio_pickle.c), read by wio_torch.c. All values
// live in one arena freed at once (pickle memo entries share values).
#ifndef DIFFOOD_WIO_INTERNAL_H
#define DIFFOOD_WIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/wio/wio.h"

typedef struct wio_arena_chunk wio_arena_chunk;
typedef struct {
    wio_arena_chunk *head;
} wio_arena;

// Zeroed memory of n bytes (16-byte aligned) or NULL; freed by wio_arena_free.
void *wio_arena_alloc(wio_arena *a, size_t n);
void wio_arena_free(wio_arena *a);

typedef enum {
    PV_NONE,
    PV_BOOL,
    PV_INT,
    PV_FLOAT,
    PV_STR,
    PV_TUPLE,
    PV_LIST,
    PV_DICT,    // items alternate key, value (insertion order)
    PV_GLOBAL,  // an allowed global (gid)
    PV_STORAGE, // a persistent id: storage dtype, key, numel
    PV_TENSOR,  // _rebuild_tensor_v2 result
} pv_kind;

typedef enum {
    PG_ORDERED_DICT,
    PG_REBUILD_TENSOR_V2,
    PG_REBUILD_PARAMETER,
    PG_STORAGE, // torch.<Type>Storage: dtype in pv.dtype
} pv_global;

typedef struct pv pv;
struct pv {
    pv_kind kind;
    int64_t i;          // BOOL, INT; STORAGE: numel; TENSOR: storage offset
    double f;           // FLOAT
    char *s;            // STR (NUL-terminated; len in n); STORAGE: key
    pv **items;         // TUPLE, LIST, DICT (2 n pointers)
    int64_t n, cap;     // items (DICT: pairs); STR: length
    pv_global gid;      // GLOBAL
    wio_dtype dtype;    // GLOBAL storage type, STORAGE
    pv *storage;        // TENSOR
    int rank;           // TENSOR
    int64_t size[WIO_MAX_RANK], stride[WIO_MAX_RANK];
};

// Unpickles n bytes (protocol 2..5 opcodes that torch.save emits, see wio.h) into *out (arena
// memory). ERR_INPUT naming `what`, the opcode and its offset; ERR_NOMEM.
int wio_unpickle(wio_arena *a, const uint8_t *p, size_t n, const char *what, pv **out);

#endif
