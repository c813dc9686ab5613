// store_cursor: iterating a table's records in key order, and table statistics (see store.h).
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/store_internal.h"

int ts_cursor_open(ts_store *s, const char *table, ts_cursor **out) {
    TS_GUARD(s);
    int rc = 0, mrc;
    MDB_dbi dbi;
    *out = NULL;
    ERR_IF(!strcmp(table, TS_META_TABLE), ERR_USAGE, "store %s: 'meta' holds text, not records", s->path);
    ERR_TRY(ts__dbi(s, table, 0, &dbi));
    ts_cursor *c = calloc(1, sizeof *c);
    ERR_IF(!c, ERR_NOMEM, "store %s: out of memory", s->path);
    c->s = s;
    c->table = strdup(table);
    ERR_GOTO_IF(rc, !c->table, ERR_NOMEM, "store %s: out of memory", s->path);
    if (s->wtxn) c->txn = s->wtxn;
    else {
        ERR_GOTO(rc, ts__txn_begin_rd(s, &c->txn));
        c->own_txn = 1;
    }
    mrc = mdb_cursor_open(c->txn, dbi, &c->cur);
    if (mrc) { c->cur = NULL; rc = ts__lmdb_err(s, mrc, table); goto fail; }
    s->ncursors++;
    if (!c->own_txn) {
        c->next_w = s->wcursors;
        s->wcursors = c;
    }
    *out = c;
    return 0;
fail:
    if (c->own_txn && c->txn) mdb_txn_abort(c->txn);
    free(c->table);
    free(c);
    return rc;
}

void ts__cursors_detach(ts_store *s) {
    for (ts_cursor *c = s->wcursors, *next; c; c = next) {
        next = c->next_w;
        mdb_cursor_close(c->cur);
        c->cur = NULL;
        c->txn = NULL;
        c->positioned = 0;
        c->at_end = 1;
        c->next_w = NULL;
    }
    s->wcursors = NULL;
}

void ts_cursor_close(ts_cursor *c) {
    if (!c) return;
    TS_GUARD(c->s);
    if (c->cur) mdb_cursor_close(c->cur);
    if (c->own_txn) mdb_txn_abort(c->txn);
    for (ts_cursor **p = &c->s->wcursors; *p; p = &(*p)->next_w)
        if (*p == c) {
            *p = c->next_w;
            break;
        }
    c->s->ncursors--;
    free(c->table);
    free(c);
}

static int cursor_move(ts_cursor *c, MDB_cursor_op op, ts_key *key) {
    int mrc = mdb_cursor_get(c->cur, &c->key, &c->val, op);
    if (mrc == MDB_NOTFOUND) {
        c->positioned = 0;
        return 0;
    }
    if (mrc) {
        c->positioned = 0;
        return ts__lmdb_err(c->s, mrc, c->table);
    }
    c->positioned = 1;
    if (key) ts__key_from(key, &c->key, &c->val);
    return 1;
}

int ts_cursor_next(ts_cursor *c, ts_key *key) {
    TS_GUARD(c->s);
    if (c->at_end || !c->cur) return 0;
    int rc = cursor_move(c, c->positioned ? MDB_NEXT : MDB_FIRST, key);
    if (rc == 0) c->at_end = 1;
    return rc;
}

void ts_cursor_reset(ts_cursor *c) {
    TS_GUARD(c->s);
    c->positioned = 0;
    c->at_end = !c->cur;
}

int ts_cursor_seek(ts_cursor *c, const ts_key *key) {
    TS_GUARD(c->s);
    if (!c->cur) return 0;
    c->key.mv_size = key->len;
    c->key.mv_data = (void *)key->b;
    int rc = cursor_move(c, MDB_SET_RANGE, NULL);
    c->at_end = rc == 0;
    return rc;
}

int ts_cursor_key(ts_cursor *c, ts_key *key) {
    ERR_IF(!c->positioned, ERR_USAGE, "store %s: table '%s': cursor not on a record", c->s->path, c->table);
    ts__key_from(key, &c->key, &c->val);
    return 0;
}

int ts_cursor_info(ts_cursor *c, ts_record_info *info) {
    TS_GUARD(c->s);
    ERR_IF(!c->positioned, ERR_USAGE, "store %s: table '%s': cursor not on a record", c->s->path, c->table);
    return ts__rec_info(c->s, c->table, &c->key, &c->val, info);
}

int ts_cursor_get(ts_cursor *c, ts_tensor *out, void *buf, size_t cap) {
    TS_GUARD(c->s);
    memset(out, 0, sizeof *out);
    ERR_IF(!c->positioned, ERR_USAGE, "store %s: table '%s': cursor not on a record", c->s->path, c->table);
    return ts__rec_decode(c->s, c->table, &c->key, &c->val, out, buf, cap);
}

// --- statistics --------------------------------------------------------------------------------
int ts_stat(ts_store *s, const char *table, int scan, ts_table_stat *st) {
    TS_GUARD(s);
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_stat ms;
    int rc = 0, mrc;
    memset(st, 0, sizeof *st);
    ERR_TRY(ts__dbi(s, table, 0, &dbi));
    ERR_TRY(ts__rd_begin(s, &txn));
    mrc = mdb_stat(txn, dbi, &ms);
    if (mrc) { rc = ts__lmdb_err(s, mrc, table); goto fail; }
    st->records = ms.ms_entries;
    st->depth = ms.ms_depth;
    st->branch_pages = ms.ms_branch_pages;
    st->leaf_pages = ms.ms_leaf_pages;
    st->overflow_pages = ms.ms_overflow_pages;
    st->page_size = ms.ms_psize;
    if (scan && strcmp(table, TS_META_TABLE)) {
        mrc = mdb_cursor_open(txn, dbi, &cur);
        if (mrc) { rc = ts__lmdb_err(s, mrc, table); goto fail; }
        MDB_val k, v;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            ts_record_info info;
            ERR_GOTO(rc, ts__rec_info(s, table, &k, &v, &info));
            st->raw_bytes += info.raw_len;
            st->stored_bytes += info.stored_len;
            st->value_bytes += v.mv_size;
            st->key_bytes += k.mv_size;
            st->codecs_seen |= 1 << info.codec;
        }
        if (mrc != MDB_NOTFOUND) { rc = ts__lmdb_err(s, mrc, table); goto fail; }
    }
fail:
    if (cur) mdb_cursor_close(cur);
    ts__rd_end(s, txn);
    return rc;
}
