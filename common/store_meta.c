// store_meta: the `meta` table (name -> UTF-8 text) with a checksum on every value, and the
// format check made when a store is opened (see store.h).
//
// A meta value is, little-endian: 0 magic u32 "dtsm" | 4 XXH64 of the text seeded with the XXH64
// of the name, u64 | 12 the text (no NUL). Every read checks it, and ts_open checks every entry,
// so a flipped byte in a value or in a name is ERR_CORRUPT naming the store and the key, never a
// wrong value or a silently missing key. Format 1 stores (plain text values) are refused with a
// message saying how to replace them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/store_internal.h"

#define TS_META_SEED 0x6d657461u

static uint64_t meta_sum(const void *name, size_t nlen, const void *text, size_t n) {
    return hash_xxh64(text, n, hash_xxh64(name, nlen, TS_META_SEED));
}

// A meta name for messages: printable ASCII as is, other bytes as \xNN (a damaged name may hold
// anything). Returns buf.
static const char *meta_name_fmt(const void *name, size_t n, char *buf, size_t cap) {
    const unsigned char *p = name;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') buf[o++] = (char)p[i];
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
    }
    buf[o] = 0;
    return buf;
}

// Checks the value v stored under name k; the text into *text, *n (pointing into v).
static int meta_decode(ts_store *s, const MDB_val *k, const MDB_val *v, const char **text, size_t *n) {
    char nb[300];
    const uint8_t *p = v->mv_data;
    if (v->mv_size < TS_META_HEADER || ts__get_le(p, 4) != TS_META_MAGIC ||
        ts__get_le(p + 4, 8) != meta_sum(k->mv_data, k->mv_size, p + TS_META_HEADER, v->mv_size - TS_META_HEADER))
        return err_set(ERR_CORRUPT,
                       "store %s: meta '%s' is damaged (checksum mismatch: a changed byte in its name or "
                       "value); rerun the stage that made the store with --force to replace it",
                       s->path, meta_name_fmt(k->mv_data, k->mv_size, nb, sizeof nb));
    *text = (const char *)p + TS_META_HEADER;
    *n = v->mv_size - TS_META_HEADER;
    return 0;
}

// --- opening -----------------------------------------------------------------------------------
// Every meta entry of the open read transaction txn, checked.
static int meta_check_all(ts_store *s, MDB_txn *txn, MDB_dbi meta) {
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    const char *t;
    size_t n;
    int rc = 0, mrc = mdb_cursor_open(txn, meta, &cur);
    if (mrc) return ts__lmdb_err(s, mrc, "meta table");
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc && rc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        rc = meta_decode(s, &k, &v, &t, &n);
    if (rc == 0 && mrc != MDB_NOTFOUND) rc = ts__lmdb_err(s, mrc, "meta table");
    mdb_cursor_close(cur);
    return rc;
}

int ts__meta_open(ts_store *s, int may_init) {
    int rc = 0, mrc;
    MDB_txn *txn = NULL;
    MDB_dbi main_dbi, meta;
    MDB_stat st;
    ERR_TRY(ts__txn_begin_rd(s, &txn));
    mrc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (!mrc) mrc = mdb_stat(txn, main_dbi, &st);
    if (mrc) { rc = ts__lmdb_err(s, mrc, "main database"); goto fail; }
    mrc = mdb_dbi_open(txn, TS_META_TABLE, 0, &meta);
    if (mrc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        txn = NULL;
        if (st.ms_entries == 0 && may_init) { // fresh environment: mark it
            ERR_TRY(ts_begin_write(s));
            rc = ts_meta_put(s, TS_FORMAT_KEY, TS_FORMAT_TEXT);
            if (rc < 0) { ts_abort(s); return rc; }
            return ts_commit(s);
        }
        if (st.ms_entries == 0)
            // (a writer killed between creating data.mdb and its first commit leaves this behind:
            // ERR_NOTFOUND like a directory without data.mdb, so that a stage starts it afresh)
            return err_set(ERR_NOTFOUND, "store %s: an empty LMDB environment, not (yet) a tensor store", s->path);
        return err_set(ERR_INPUT, "store %s: an LMDB environment but not a tensor store (no meta table)", s->path);
    }
    if (mrc) { rc = ts__lmdb_err(s, mrc, "meta table"); goto fail; }
    MDB_val k = {strlen(TS_FORMAT_KEY), TS_FORMAT_KEY}, v;
    mrc = mdb_get(txn, meta, &k, &v);
    if (mrc == MDB_NOTFOUND) { // a store's meta table without its marker: damaged
        rc = err_set(ERR_CORRUPT, "store %s: damaged or not a tensor store (its meta has no %s)", s->path,
                     TS_FORMAT_KEY);
        goto fail;
    }
    if (mrc) { rc = ts__lmdb_err(s, mrc, "meta table"); goto fail; }
    size_t pl = strlen(TS_FORMAT_PREFIX);
    if (v.mv_size > pl && !memcmp(v.mv_data, TS_FORMAT_PREFIX, pl)) { // format 1: plain text meta
        rc = err_set(ERR_UNSUPPORTED,
                     "store %s: format '%.*s' was written by an older build (meta without checksums); this "
                     "build reads '%s': rerun the stage that made it with --force to replace it (or delete "
                     "the directory)",
                     s->path, (int)(v.mv_size < 64 ? v.mv_size : 64), (const char *)v.mv_data, TS_FORMAT_TEXT);
        goto fail;
    }
    const char *text;
    size_t n;
    if (v.mv_size < TS_META_HEADER || ts__get_le(v.mv_data, 4) != TS_META_MAGIC) {
        rc = err_set(ERR_INPUT, "store %s: not a tensor store (bad %s)", s->path, TS_FORMAT_KEY);
        goto fail;
    }
    ERR_GOTO(rc, meta_decode(s, &k, &v, &text, &n));
    if (n <= pl || memcmp(text, TS_FORMAT_PREFIX, pl)) {
        rc = err_set(ERR_INPUT, "store %s: not a tensor store (bad %s)", s->path, TS_FORMAT_KEY);
        goto fail;
    }
    if (n != strlen(TS_FORMAT_TEXT) || memcmp(text, TS_FORMAT_TEXT, n)) {
        rc = err_set(ERR_UNSUPPORTED, "store %s: unsupported format '%.*s' (this build reads '%s')", s->path,
                     (int)(n < 64 ? n : 64), text, TS_FORMAT_TEXT);
        goto fail;
    }
    ERR_GOTO(rc, meta_check_all(s, txn, meta));
    mrc = mdb_txn_commit(txn); // keeps the meta handle open for the environment
    txn = NULL;
    if (mrc) return ts__lmdb_err(s, mrc, "meta table");
    ERR_TRY(ts__dbi(s, TS_META_TABLE, 0, &meta));
    return 0;
fail:
    if (txn) mdb_txn_abort(txn);
    return rc;
}

// --- meta functions ----------------------------------------------------------------------------
static int meta_key(ts_store *s, const char *key, MDB_val *k) {
    size_t n = strlen(key);
    ERR_IF(n == 0 || n > TS_KEY_MAX, ERR_USAGE, "store %s: bad meta key '%.40s'", s->path, key);
    k->mv_size = n;
    k->mv_data = (void *)key;
    return 0;
}

int ts_meta_put(ts_store *s, const char *key, const char *text) {
    TS_GUARD(s);
    size_t n = strlen(text);
    MDB_val k, v = {TS_META_HEADER + n, NULL};
    ERR_TRY(meta_key(s, key, &k));
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    int own = !s->wtxn, rc = 0;
    if (own) ERR_TRY(ts_begin_write(s));
    MDB_dbi dbi;
    ERR_GOTO(rc, ts__dbi(s, TS_META_TABLE, 1, &dbi));
    int mrc = mdb_put(s->wtxn, dbi, &k, &v, MDB_RESERVE);
    if (mrc) { rc = ts__lmdb_err(s, mrc, "meta put"); goto fail; }
    uint8_t *p = v.mv_data;
    ts__put_le(p, TS_META_MAGIC, 4);
    ts__put_le(p + 4, meta_sum(key, k.mv_size, text, n), 8);
    memcpy(p + TS_META_HEADER, text, n);
    if (own) return ts_commit(s);
    return 0;
fail:
    if (own) ts_abort(s);
    return rc;
}

int ts_meta_get(ts_store *s, const char *key, char **text) {
    TS_GUARD(s);
    MDB_val k, v;
    MDB_dbi dbi;
    MDB_txn *txn;
    *text = NULL;
    ERR_TRY(meta_key(s, key, &k));
    ERR_TRY(ts__dbi(s, TS_META_TABLE, 0, &dbi));
    ERR_TRY(ts__rd_begin(s, &txn));
    int mrc = mdb_get(txn, dbi, &k, &v), rc = 0;
    const char *t;
    size_t n;
    if (mrc == MDB_NOTFOUND) rc = err_set(ERR_NOTFOUND, "store %s: no meta key '%s'", s->path, key);
    else if (mrc) rc = ts__lmdb_err(s, mrc, "meta get");
    else if ((rc = meta_decode(s, &k, &v, &t, &n)) == 0) {
        *text = strndup(t, n);
        if (!*text) rc = err_set(ERR_NOMEM, "store %s: out of memory", s->path);
    }
    ts__rd_end(s, txn);
    return rc;
}

int ts_meta_del(ts_store *s, const char *key) {
    TS_GUARD(s);
    MDB_val k;
    ERR_TRY(meta_key(s, key, &k));
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    int own = !s->wtxn, rc = 0;
    if (own) ERR_TRY(ts_begin_write(s));
    MDB_dbi dbi;
    ERR_GOTO(rc, ts__dbi(s, TS_META_TABLE, 0, &dbi));
    int mrc = mdb_del(s->wtxn, dbi, &k, NULL);
    if (mrc == MDB_NOTFOUND) { rc = err_set(ERR_NOTFOUND, "store %s: no meta key '%s'", s->path, key); goto fail; }
    if (mrc) { rc = ts__lmdb_err(s, mrc, "meta delete"); goto fail; }
    if (own) return ts_commit(s);
    return 0;
fail:
    if (own) ts_abort(s);
    return rc;
}

int ts_meta_list(ts_store *s, char ***keys, int *n) {
    TS_GUARD(s);
    MDB_dbi dbi;
    ERR_TRY(ts__dbi(s, TS_META_TABLE, 0, &dbi));
    return ts__list_keys(s, dbi, 0, keys, n);
}
