// store: the tensor store (ARCHITECTURE.md, "The tensor store"): a directory holding one LMDB
// environment whose named databases ("tables") map fixed-width keys to tensor records.
//
// * `meta` is the one text table: string key -> UTF-8 text (ts_meta_*). Every other table holds
//   records: a versioned header (magic, version, dtype, rank, shape, codec, key kind, raw length,
//   stored length, XXH64 of the raw bytes, a header checksum) followed by the payload, raw or
//   zstd-compressed (optionally byte-shuffled first). Every read checks the header, the lengths
//   and the checksum: a damaged record is ERR_CORRUPT naming store, table and key, never garbage.
// * Keys are fixed-width big-endian integers, so LMDB order is numeric order: a sample index
//   (ts_key_u64), a tuple such as (index, level, repeat) (ts_key_tuple), or a string for
//   parameter tables (ts_key_str, the PyTorch state_dict name).
// * `meta` values carry a checksum of their name and text, checked on every read and, for every
//   entry, at ts_open (store format 2, docs/FORMATS.md): a damaged meta entry is ERR_CORRUPT
//   naming the store and the key.
// * One writer, any number of readers (other processes, e.g. `dstore` watching a running stage):
//   a handle opened for writing holds an exclusive flock on STORE/writer.lock until ts_close; a
//   second writer is refused (ERR_CONFLICT naming the holder's pid). Readers take no lock.
// * Damage to LMDB's own pages that makes LMDB abort (SIGABRT) or fault (SIGSEGV, SIGBUS) inside a
//   store function ends the process with exit status 2 and a message naming the store
//   (store_guard.c; the handlers are installed by the first ts_open where none is installed).
//   Writes go through batches (ts_begin_write ... ts_commit): a batch commits atomically; a
//   killed writer loses at most its uncommitted batch; readers never see half a record.
//   A put outside a batch commits on its own.
//
// Conventions (LMDB style): every function returns 0 (or a documented non-negative value) on
// success and a negative err.h code on failure, with an err_set() message naming the store path,
// the table and the key at fault. A ts_store handle is used by one thread at a time; open a given
// store at most once per process (LMDB's rule), and never use a handle across fork(): a child
// opens its own.
#ifndef DIFFOOD_STORE_H
#define DIFFOOD_STORE_H

#include <stddef.h>
#include <stdint.h>

// --- dtypes ----------------------------------------------------------------------------------
// X(enum name, stored code, short name, NPY descr (little-endian), element size). The stored
// code is part of the on-disk format: never renumber, only append.
#define TS_DTYPE_LIST(X)                \
    X(TS_U8, 0, "u8", "|u1", 1)         \
    X(TS_I32, 1, "i32", "<i4", 4)       \
    X(TS_F32, 2, "f32", "<f4", 4)       \
    X(TS_F16, 3, "f16", "<f2", 2)       \
    X(TS_F64, 4, "f64", "<f8", 8)       \
    X(TS_I64, 5, "i64", "<i8", 8)

typedef enum {
#define TS_DTYPE_ENUM(name, code, sname, descr, size) name = code,
    TS_DTYPE_LIST(TS_DTYPE_ENUM)
#undef TS_DTYPE_ENUM
    TS_DTYPE_COUNT = 6
} ts_dtype;

// Element size in bytes (0 for an invalid dtype).
size_t ts_dtype_size(ts_dtype dt);
// Short name ("u8", "f32", ...); "?" for an invalid dtype. Static storage.
const char *ts_dtype_name(ts_dtype dt);
// NPY descr ("|u1", "<f4", ...); NULL for an invalid dtype. Static storage.
const char *ts_dtype_npy_descr(ts_dtype dt);
// Parses a short name ("u8", "f32"; also "uint8", "int32", "float32", "float16", "float64",
// "int64") into *out. Returns 0 or ERR_USAGE.
int ts_dtype_from_name(const char *name, ts_dtype *out);
// Parses an NPY descr ("<f4", "|u1", "u1", "=f4") into *out. Returns 0; ERR_UNSUPPORTED for a
// big-endian or unknown descr.
int ts_dtype_from_npy(const char *descr, ts_dtype *out);

// float32 <-> IEEE half, round to nearest even; NaN stays NaN, overflow gives infinity.
uint16_t ts_f32_to_f16(float f);
float ts_f16_to_f32(uint16_t h);
// n conversions (dst and src must not overlap).
void ts_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
void ts_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

// --- tensor descriptor (STYLE.md 6) ----------------------------------------------------------
#define TS_MAX_RANK 4

typedef struct {
    ts_dtype dtype;
    int rank;                     // 0 (scalar) .. TS_MAX_RANK
    int64_t shape[TS_MAX_RANK];   // shape[0..rank); entries past rank are 0
    void *data;                   // rank 0: one element
    size_t nbytes;                // numel * dtype size
} ts_tensor;

// Number of elements (1 for rank 0).
int64_t ts_tensor_numel(const ts_tensor *t);
// Fills *t with dtype/rank/shape and `data` (not copied, not owned); computes nbytes.
// ERR_USAGE for a bad dtype, rank outside 0..4, a negative dimension or a size overflow.
int ts_tensor_init(ts_tensor *t, ts_dtype dtype, int rank, const int64_t *shape, void *data);
// Like ts_tensor_init with a zero-filled malloc'd buffer (at least 1 byte) owned by *t; release
// with ts_tensor_free. ERR_NOMEM.
int ts_tensor_alloc(ts_tensor *t, ts_dtype dtype, int rank, const int64_t *shape);
// Frees t->data and zeroes *t (NULL-safe). Only for buffers from ts_tensor_alloc/ts_get.
void ts_tensor_free(ts_tensor *t);
// Writes "f32 (3, 32, 32)" into buf (always NUL-terminated); returns buf.
const char *ts_tensor_describe(const ts_tensor *t, char *buf, size_t cap);

// --- codecs ----------------------------------------------------------------------------------
// X(enum name, stored code, name)
#define TS_CODEC_LIST(X)                        \
    X(TS_CODEC_RAW, 0, "raw")                   \
    X(TS_CODEC_ZSTD, 1, "zstd")                 \
    X(TS_CODEC_SHUFFLE_ZSTD, 2, "shuffle-zstd")

typedef enum {
#define TS_CODEC_ENUM(name, code, cname) name = code,
    TS_CODEC_LIST(TS_CODEC_ENUM)
#undef TS_CODEC_ENUM
    TS_CODEC_COUNT = 3
} ts_codec;

// "raw", "zstd", "shuffle-zstd"; "?" when invalid.
const char *ts_codec_name(ts_codec c);
// Parses a codec name. 0 or ERR_USAGE.
int ts_codec_from_name(const char *name, ts_codec *out);

// --- keys ------------------------------------------------------------------------------------
#define TS_KEY_MAX 256 // bytes (LMDB's limit is 511)

typedef enum {
    TS_KEY_RAW = 0,   // unknown bytes (printed as hex)
    TS_KEY_U64 = 1,   // 8 bytes, big-endian
    TS_KEY_TUPLE = 2, // n x u32 big-endian (n = len / 4)
    TS_KEY_STR = 3,   // text without its NUL
    TS_KEY_KIND_COUNT = 4
} ts_key_kind;

typedef struct {
    uint8_t b[TS_KEY_MAX];
    size_t len;
    ts_key_kind kind; // how to print it; records remember the kind they were written with
} ts_key;

// A sample index as 8 big-endian bytes.
void ts_key_u64(ts_key *k, uint64_t v);
// A tuple of n (1..64) u32 values as big-endian bytes, e.g. (index, level, repeat).
void ts_key_tuple(ts_key *k, int n, const uint32_t *values);
// A string key (state_dict name). ERR_USAGE when empty or longer than TS_KEY_MAX bytes.
int ts_key_str(ts_key *k, const char *s);
// Decodes a U64 key (any 8-byte key) into *v. ERR_USAGE when the key is not 8 bytes.
int ts_key_get_u64(const ts_key *k, uint64_t *v);
// Decodes a tuple key (len a multiple of 4) into values[0..max); returns the tuple length or
// ERR_USAGE.
int ts_key_get_tuple(const ts_key *k, uint32_t *values, int max);
// Parses the user's form (dstore): a decimal integer -> U64, "3,120,0" -> TUPLE, anything else
// -> STR ("s:" forces a string, e.g. "s:12"). ERR_USAGE for an empty text or a bad number.
int ts_key_parse(ts_key *k, const char *text);
// Printable form: "42", "3,120,0", "conv_in.weight", or "0x0a1b..." (raw). Always
// NUL-terminated (truncated to cap). Returns buf.
const char *ts_key_format(const ts_key *k, char *buf, size_t cap);
// Compares two keys in LMDB order (memcmp, shorter first on a common prefix): <0, 0, >0.
int ts_key_cmp(const ts_key *a, const ts_key *b);

// --- opening ---------------------------------------------------------------------------------
typedef struct ts_store ts_store;

enum {
    TS_RDONLY = 1, // read only (no write functions; lock file still used for reader slots, or
                   // none when the directory is read-only)
    TS_CREATE = 2, // create the directory (and missing parents) and the environment when missing
    TS_NOSYNC = 4, // no fsync at commit: a killed process loses nothing committed, an OS crash
                   // may lose the last commits (fast bulk writers; tests)
    TS_REPLACE = 8, // with TS_CREATE: a damaged store (ERR_CORRUPT: truncated or invalid data.mdb,
                    // damaged meta) or one of an unsupported format is replaced by an empty one
                    // (its data.mdb and lock.mdb are removed, under the writer lock)
};

// Opens the store at directory `path`; *out owned by the caller, release with ts_close. Without
// TS_RDONLY it takes the writer lock first (ERR_CONFLICT "another process is writing it (pid N,
// PROG)"), and checks every meta entry's checksum.
// The LMDB map starts at 64 GiB (sparse; $DIFFOOD_STORE_MAPSIZE bytes when set, for tests) and
// doubles when a batch begins with more than half of it used, or when a lone put fills it; a
// single batch larger than the free map fails with ERR_STORE ("commit smaller batches").
// Errors: ERR_NOTFOUND (missing directory without TS_CREATE, a directory without data.mdb, or an
// empty environment: a creation killed before its first commit),
// ERR_INPUT (a regular file or other non-directory; an LMDB environment that is not a tensor
// store), ERR_CORRUPT (data.mdb truncated, foreign or damaged; a damaged meta entry),
// ERR_UNSUPPORTED (another store format, e.g. format 1 of earlier builds), ERR_STORE (LMDB failures,
// e.g. locks, permissions), ERR_CONFLICT (another writer holds the store), ERR_IO (its lock
// file), ERR_USAGE (TS_RDONLY with TS_CREATE). Messages name the path.
int ts_open(ts_store **out, const char *path, unsigned flags);
// Empties a store opened for writing by replacing its LMDB files with a fresh environment (the
// writer lock stays held; readers that have it open keep reading the old, unlinked file). Reads
// nothing of the old pages, so it also works on a store whose page structure is damaged. The
// open batch is discarded; no cursor may be open. ERR_USAGE (read-only, cursors), ERR_IO.
int ts_reset(ts_store *s);
// Closes the store (an open write batch is aborted). NULL-safe.
void ts_close(ts_store *s);
// The path given to ts_open. Owned by the store.
const char *ts_path(const ts_store *s);
// Sets the zstd level used by later puts (default 3; 1..19).
void ts_set_zstd_level(ts_store *s, int level);

// --- write batches ---------------------------------------------------------------------------
// Starts a batch: later puts/deletes/drops/meta writes on this handle join it and become visible
// to other readers at ts_commit, all together. Reads on this handle see the batch. Blocks while
// another process holds the write lock. ERR_USAGE when a batch is open or the store is read-only.
int ts_begin_write(ts_store *s);
// Commits the open batch (durable unless TS_NOSYNC). On failure the batch is aborted. ERR_USAGE
// when no batch is open; ERR_STORE on LMDB failure (e.g. disk full).
int ts_commit(ts_store *s);
// Discards the open batch (no-op without one).
void ts_abort(ts_store *s);
// 1 while a batch is open, else 0.
int ts_in_write(const ts_store *s);

// --- records ---------------------------------------------------------------------------------
// Stores tensor `t` under `key` in `table` (created when missing; "meta" and names starting with
// "ts." are reserved), replacing any record there. The codec is a request: a compressed payload
// that is not smaller than the raw bytes is stored raw (the record says which); SHUFFLE_ZSTD on
// 1-byte elements is ZSTD; with a table dictionary (ts_dict_train) zstd uses it. Keys appended in
// increasing order fill LMDB pages densely.
// Errors: ERR_USAGE (bad tensor, bad table name, read-only store), ERR_STORE (LMDB, map full),
// ERR_NOMEM, ERR_INTERNAL (zstd).
int ts_put(ts_store *s, const char *table, const ts_key *key, const ts_tensor *t, ts_codec codec);
// Reads and verifies the record into *out with a malloc'd buffer owned by the caller
// (ts_tensor_free). ERR_NOTFOUND (no such table or key), ERR_CORRUPT (bad header, lengths or
// checksum: message names store, table and key).
int ts_get(ts_store *s, const char *table, const ts_key *key, ts_tensor *out);
// Like ts_get, decoding into the caller's buffer `buf` of `cap` bytes (out->data = buf); ERR_INPUT
// when cap is smaller than the record's raw length (message gives the size).
int ts_get_into(ts_store *s, const char *table, const ts_key *key, ts_tensor *out, void *buf,
                size_t cap);

// What a record header says (no payload decoded, no checksum verified).
typedef struct {
    ts_dtype dtype;
    int rank;
    int64_t shape[TS_MAX_RANK];
    ts_codec codec;       // as stored
    ts_key_kind key_kind; // as written
    uint64_t raw_len;     // decoded payload bytes
    uint64_t stored_len;  // payload bytes as stored (without header)
    uint64_t checksum;    // XXH64 of the raw bytes
    int version;          // record format version
} ts_record_info;

// Reads the header of a record (sanity-checked). ERR_NOTFOUND, ERR_CORRUPT.
int ts_get_info(ts_store *s, const char *table, const ts_key *key, ts_record_info *info);
// 1 when the key exists in the table, 0 when not (also when the table does not exist); negative
// on error.
int ts_has(ts_store *s, const char *table, const ts_key *key);
// Deletes a record. ERR_NOTFOUND when absent.
int ts_del(ts_store *s, const char *table, const ts_key *key);

// --- tables ----------------------------------------------------------------------------------
// Number of records of a table into *n. ERR_NOTFOUND when the table does not exist.
int ts_count(ts_store *s, const char *table, uint64_t *n);
// 1 when the table exists, 0 when not, negative on error.
int ts_table_exists(ts_store *s, const char *table);
// The record tables (not "meta" nor the store's own "ts.*" tables), sorted by name: *names is a
// malloc'd array of *n malloc'd strings; free with ts_names_free.
int ts_tables(ts_store *s, char ***names, int *n);
void ts_names_free(char **names, int n);
// Deletes a table and all its records (joins the open batch if any). ERR_NOTFOUND when absent;
// ERR_USAGE for "meta" and "ts.*".
int ts_drop_table(ts_store *s, const char *table);

typedef struct {
    uint64_t records;          // LMDB entries
    unsigned depth;            // B-tree depth
    uint64_t branch_pages, leaf_pages, overflow_pages;
    unsigned page_size;
    // filled only when ts_stat is asked to scan (reads every header):
    uint64_t raw_bytes;        // sum of decoded payload sizes
    uint64_t stored_bytes;     // sum of stored payload sizes (without headers)
    uint64_t value_bytes;      // sum of stored values (headers included)
    uint64_t key_bytes;        // sum of key sizes
    int codecs_seen;           // bit (1 << codec) for each codec found
} ts_table_stat;

// LMDB statistics of a table; with scan != 0 also the byte sums (reads every record header, no
// payload decoding). ERR_NOTFOUND, ERR_CORRUPT (a bad header during the scan).
int ts_stat(ts_store *s, const char *table, int scan, ts_table_stat *st);

typedef struct {
    uint64_t map_size;   // bytes mapped
    uint64_t used_bytes; // (last page + 1) * page size
    uint64_t file_bytes; // size of data.mdb
    unsigned page_size;
    unsigned max_readers, num_readers;
    uint64_t last_txn;   // id of the last committed transaction
} ts_env_info;

// Environment statistics.
int ts_env_stat(ts_store *s, ts_env_info *st);

// --- zstd dictionaries -----------------------------------------------------------------------
// Tables of many small records compress much better with a shared zstd dictionary.
// ts_dict_train trains one (about dict_bytes; 0 = 32 KiB) from up to max_samples records of
// `table` (0 = 4000; evenly spaced in key order, decoded and, for records stored SHUFFLE_ZSTD,
// shuffled as that codec sees them), stores it in the store and makes it the table's dictionary:
// later ZSTD and SHUFFLE_ZSTD puts into the table on any handle opened afterwards (and on this
// one) compress with it. Records written before keep their encoding; every zstd frame names its
// dictionary, so readers need nothing. Joins the open batch (or commits on its own). The id of
// the new dictionary goes to *id (may be NULL). Errors: ERR_NOTFOUND (no table), ERR_INPUT (too
// few or too small records to train on: the table simply keeps no dictionary), ERR_USAGE
// (read-only), ERR_STORE, ERR_NOMEM.
int ts_dict_train(ts_store *s, const char *table, size_t max_samples, size_t dict_bytes,
                  uint32_t *id);
// The id of the table's active dictionary into *id (0 when none). ERR_* on failure.
int ts_dict_id(ts_store *s, const char *table, uint32_t *id);

// --- meta: text values -----------------------------------------------------------------------
// Sets meta[key] = text (UTF-8, any length; key 1..TS_KEY_MAX bytes), stored with a checksum of
// key and text. Joins the open batch.
int ts_meta_put(ts_store *s, const char *key, const char *text);
// *text = malloc'd copy of meta[key] (caller frees). ERR_NOTFOUND when absent, ERR_CORRUPT
// (naming store and key) when its checksum does not match.
int ts_meta_get(ts_store *s, const char *key, char **text);
// Deletes meta[key]; ERR_NOTFOUND when absent.
int ts_meta_del(ts_store *s, const char *key);
// Meta keys in order (the store's own "ts.format" key included); free with ts_names_free.
int ts_meta_list(ts_store *s, char ***keys, int *n);

// --- cursors: records of one table in key order ------------------------------------------------
typedef struct ts_cursor ts_cursor;

// Opens a cursor on `table` positioned before the first key. Outside a batch it reads one
// consistent snapshot (records committed later are not seen); inside a batch it sees the batch
// and ends with it (after ts_commit/ts_abort it reports the end; still ts_cursor_close it).
// Cursors and other reads may interleave.
// ERR_NOTFOUND when the table does not exist. Release with ts_cursor_close (before ts_close).
int ts_cursor_open(ts_store *s, const char *table, ts_cursor **out);
// Moves to the next record: 1 when positioned (key in *key when not NULL), 0 at the end.
int ts_cursor_next(ts_cursor *c, ts_key *key);
// Positions at the first key >= *key: 1 when positioned (it is the current record), 0 when no
// such key. The next ts_cursor_next moves past it.
int ts_cursor_seek(ts_cursor *c, const ts_key *key);
// Back before the first key (same snapshot): the next ts_cursor_next gives the first record.
void ts_cursor_reset(ts_cursor *c);
// The current record's key into *key. ERR_USAGE when not positioned.
int ts_cursor_key(ts_cursor *c, ts_key *key);
// The current record's header (sanity-checked). ERR_USAGE when not positioned, ERR_CORRUPT.
int ts_cursor_info(ts_cursor *c, ts_record_info *info);
// Decodes and verifies the current record into *out (malloc'd; ts_tensor_free), or into `buf`
// of `cap` bytes when buf is not NULL. ERR_USAGE, ERR_CORRUPT, ERR_INPUT (cap too small).
int ts_cursor_get(ts_cursor *c, ts_tensor *out, void *buf, size_t cap);
void ts_cursor_close(ts_cursor *c);

#endif
