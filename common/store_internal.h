// store_internal: what store.c, store_record.c and store_cursor.c share; not a public API.
#ifndef DIFFOOD_STORE_INTERNAL_H
#define DIFFOOD_STORE_INTERNAL_H

#include <lmdb.h>
#include <zstd.h>

#include "common/store.h"

// Little-endian integers of n bytes in record headers and meta values.
static inline void ts__put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t ts__get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define TS_REC_MAGIC 0x72737464u // "dtsr" little-endian
#define TS_REC_VERSION 2         // 2: the header checksum covers the key
#define TS_REC_HEADER 72         // bytes of a record header
#define TS_META_TABLE "meta"
#define TS_FORMAT_KEY "ts.format"
#define TS_FORMAT_PREFIX "diffood-tensor-store "
#define TS_FORMAT_TEXT "diffood-tensor-store 2" // 2: meta values carry a checksum (store_meta.c)
#define TS_META_MAGIC 0x6d737464u // "dtsm" little-endian: the start of a meta value
#define TS_META_HEADER 12         // magic u32 + XXH64 of name and text u64

#define TS_DICT_TABLE "ts.dict" // zstd dictionaries: "TABLE\0" + id (BE u32) -> dictionary bytes;
                                // "TABLE" -> id of the table's active dictionary (BE u32)

typedef struct {
    char *name;
    MDB_dbi dbi;
    int pending; // opened in the open batch: LMDB closes it when the batch aborts
} ts_table_ent;

typedef struct {      // per handle: a table's compression dictionary for puts
    char *table;
    uint32_t id;      // 0: the table has none
    ZSTD_CDict *cdict;
} ts_cdict_ent;

typedef struct {      // per handle: decompression dictionaries by (table, id)
    char *table;
    uint32_t id;
    ZSTD_DDict *ddict;
} ts_ddict_ent;

struct ts_store {
    char *path;
    int lock_fd;       // the writer lock (store_guard.c), -1 when read-only
    MDB_env *env;
    unsigned flags;
    MDB_txn *wtxn;     // the open batch, or NULL
    MDB_txn *rtxn;     // reusable read transaction (reset when idle)
    int rd_depth;      // nesting of ts__rd_begin on rtxn (0: reset)
    int ncursors;      // open cursors (the map is not resized while any is open)
    ts_cursor *wcursors; // cursors opened inside the open batch
    ts_table_ent *tabs;
    int ntabs, captabs;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int zlevel;
    uint8_t *scratch;  // encode/decode buffers
    size_t scratch_cap;
    uint8_t *scratch2;
    size_t scratch2_cap;
    ts_cdict_ent *cdicts;
    int ncdicts;
    ts_ddict_ent *ddicts;
    int nddicts;
};

struct ts_cursor {
    ts_store *s;
    char *table;
    MDB_txn *txn;     // own read snapshot, or the store's batch
    int own_txn;
    MDB_cursor *cur;
    ts_cursor *next_w; // list of cursors inside the batch (store.c detaches them at its end)
    int positioned;   // on a record
    int at_end;       // moved past the last record
    MDB_val key, val;
};

// --- store_cursor.c ------------------------------------------------------------------------------
// Detaches the cursors of the ending batch (their LMDB cursors die with it): they report the end.
void ts__cursors_detach(ts_store *s);

// --- store.c -----------------------------------------------------------------------------------
// LMDB status -> err code with a message "store PATH: WHAT: lmdb error".
int ts__lmdb_err(ts_store *s, int mrc, const char *what);
#define TS_MAIN_DBI ((MDB_dbi)~0u) // ts__list_keys: "the unnamed main database"
// Lists the keys of database `dbi` (as text) into a malloc'd array, sorted; skip_meta drops
// "meta" and "ts.*" (the main database's own tables).
int ts__list_keys(ts_store *s, MDB_dbi dbi, int skip_meta, char ***names, int *n);
// Begins a fresh read-only transaction (adopting a map grown by another process when it can).
int ts__txn_begin_rd(ts_store *s, MDB_txn **txn);
// A read transaction: the batch when open, else the reusable one (renewed). Pair with ts__rd_end.
int ts__rd_begin(ts_store *s, MDB_txn **txn);
void ts__rd_end(ts_store *s, MDB_txn *txn);
// The dbi of `table`: 0, ERR_NOTFOUND (no such table; create needs an open write txn),
// ERR_STORE.
int ts__dbi(ts_store *s, const char *table, int create, MDB_dbi *dbi);
// Grows a scratch buffer (which = 1 or 2) to at least n bytes. ERR_NOMEM.
int ts__scratch(ts_store *s, int which, size_t n);

// --- store_meta.c ------------------------------------------------------------------------------
// Checks the format marker and every meta entry's checksum of a freshly opened environment;
// marks a fresh empty one as a store when may_init. ERR_INPUT (not a store), ERR_UNSUPPORTED
// (another format), ERR_CORRUPT (a damaged meta entry, naming its key).
int ts__meta_open(ts_store *s, int may_init);

// --- store_guard.c -----------------------------------------------------------------------------
// Takes the writer lock of the store directory `path` into *fd (release with ts__lock_release).
// ERR_CONFLICT naming the store and the holder when another writer has it; ERR_IO.
int ts__lock_take(const char *path, int *fd);
void ts__lock_release(int fd);
// Installs the crash guard's handlers for SIGSEGV, SIGBUS, SIGABRT (once; only where no other
// handler is installed).
void ts__guard_install(void);
// The store the calling thread is inside (NULL: none); set through TS_GUARD.
extern __thread const char *ts__guard_path;
const char *ts__guard_enter(const char *path);
void ts__guard_leave(const char **prev);
// First statement of a store function: until it returns, a crash inside LMDB names store s.
#define TS_GUARD(s) \
    const char *ts__guard_prev_ __attribute__((cleanup(ts__guard_leave), unused)) = ts__guard_enter((s)->path)

// --- store_dict.c ------------------------------------------------------------------------------
// The compression dictionary for puts into `table` (NULL when it has none). ERR_* on failure.
int ts__cdict(ts_store *s, const char *table, ZSTD_CDict **cdict);
// The decompression dictionary `id` of `table`; ERR_CORRUPT (naming the key via the caller's
// prefix) when the store has no such dictionary.
int ts__ddict(ts_store *s, const char *table, uint32_t id, ZSTD_DDict **ddict);
// Frees the dictionary caches.
void ts__dict_free(ts_store *s);

// --- store_record.c ----------------------------------------------------------------------------
// Parses and sanity-checks the header of a value of vlen bytes stored under `key`. 0, or -1 with
// the reason in why (cap bytes).
int ts__rec_parse(const MDB_val *key, const void *val, size_t vlen, ts_record_info *info, char *why,
                  size_t cap);
// ts__rec_parse with an ERR_CORRUPT message naming store, table and key.
int ts__rec_info(ts_store *s, const char *table, const MDB_val *key, const MDB_val *val,
                 ts_record_info *info);
// Decodes and verifies a record value into *out (malloc'd when buf is NULL, else into buf of cap
// bytes). ERR_CORRUPT/ERR_INPUT/ERR_NOMEM with messages naming store, table and key.
int ts__rec_decode(ts_store *s, const char *table, const MDB_val *key, const MDB_val *val,
                   ts_tensor *out, void *buf, size_t cap);
// Encodes and puts a record in txn/dbi. ERR_STORE (with MDB_MAP_FULL reported through *mrc),
// ERR_NOMEM, ERR_INTERNAL.
int ts__rec_put(ts_store *s, MDB_txn *txn, MDB_dbi dbi, const char *table, const ts_key *key,
                const ts_tensor *t, ts_codec codec, int *mrc);
// The key kind remembered by a record value (TS_KEY_RAW when unreadable).
ts_key_kind ts__rec_key_kind(const MDB_val *val);
// Byte-shuffles n elements of es bytes (src -> dst), as SHUFFLE_ZSTD does before compressing.
void ts__shuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t es);
// Fills a ts_key from an LMDB key and a record value.
void ts__key_from(ts_key *k, const MDB_val *key, const MDB_val *val);

#endif
