// store_dict: zstd dictionaries for tables of many small records: training from a table's
// records, storage in the store's "ts.dict" table, and the per-handle caches of compression and
// decompression dictionaries (see store.h, "zstd dictionaries").
#include <stdlib.h>
#include <string.h>
#include <zdict.h>

#include "common/err.h"
#include "common/store_internal.h"

#define TS_DICT_DEFAULT_BYTES (32u << 10)
#define TS_DICT_DEFAULT_SAMPLES 4000

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// Key "TABLE\0" + id into buf (cap >= strlen(table) + 5); returns its length.
static size_t dict_key(uint8_t *buf, const char *table, uint32_t id) {
    size_t n = strlen(table);
    memcpy(buf, table, n);
    buf[n] = 0;
    be32(buf + n + 1, id);
    return n + 5;
}

// The dictionary table's dbi: 0, ERR_NOTFOUND when the store has none yet.
static int dict_dbi(ts_store *s, int create, MDB_dbi *dbi) { return ts__dbi(s, TS_DICT_TABLE, create, dbi); }

void ts__dict_free(ts_store *s) {
    for (int i = 0; i < s->ncdicts; i++) {
        free(s->cdicts[i].table);
        ZSTD_freeCDict(s->cdicts[i].cdict);
    }
    for (int i = 0; i < s->nddicts; i++) {
        free(s->ddicts[i].table);
        ZSTD_freeDDict(s->ddicts[i].ddict);
    }
    free(s->cdicts);
    free(s->ddicts);
    s->cdicts = NULL;
    s->ddicts = NULL;
    s->ncdicts = s->nddicts = 0;
}

// Reads dictionary `id` of `table` into a malloc'd buffer (or the active id when want_active).
static int dict_read(ts_store *s, const char *table, uint32_t id, int want_active, uint32_t *active, void **bytes,
                     size_t *len) {
    MDB_dbi dbi;
    MDB_txn *txn = s->wtxn;
    int rc = dict_dbi(s, 0, &dbi);
    if (rc < 0) return rc;
    // Outside a batch: a fresh read transaction, begun after the handle exists (this may run
    // while the store's reusable read transaction decodes a record). Dictionaries never change.
    if (!txn) ERR_TRY(ts__txn_begin_rd(s, &txn));
    uint8_t kb[TS_KEY_MAX + 8];
    MDB_val k, v;
    if (want_active) k = (MDB_val){strlen(table), (void *)table};
    else k = (MDB_val){dict_key(kb, table, id), kb};
    int mrc = mdb_get(txn, dbi, &k, &v);
    if (mrc == MDB_NOTFOUND) rc = err_set(ERR_NOTFOUND, "store %s: table '%s' has no dictionary %u", s->path, table, id);
    else if (mrc) rc = ts__lmdb_err(s, mrc, TS_DICT_TABLE);
    else if (want_active) {
        if (v.mv_size != 4) rc = err_set(ERR_CORRUPT, "store %s: bad dictionary entry for table '%s'", s->path, table);
        else *active = get_be32(v.mv_data);
    } else {
        *bytes = malloc(v.mv_size);
        if (!*bytes) rc = err_set(ERR_NOMEM, "store %s: out of memory", s->path);
        else memcpy(*bytes, v.mv_data, v.mv_size), *len = v.mv_size;
    }
    if (txn != s->wtxn) mdb_txn_abort(txn);
    return rc;
}

int ts_dict_id(ts_store *s, const char *table, uint32_t *id) {
    TS_GUARD(s);
    *id = 0;
    int rc = dict_read(s, table, 0, 1, id, NULL, NULL);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        return 0;
    }
    return rc;
}

int ts__cdict(ts_store *s, const char *table, ZSTD_CDict **cdict) {
    *cdict = NULL;
    for (int i = 0; i < s->ncdicts; i++)
        if (!strcmp(s->cdicts[i].table, table)) return *cdict = s->cdicts[i].cdict, 0;
    uint32_t id = 0;
    void *bytes = NULL;
    size_t len = 0;
    ERR_TRY(ts_dict_id(s, table, &id));
    ZSTD_CDict *cd = NULL;
    if (id) {
        ERR_TRY(dict_read(s, table, id, 0, NULL, &bytes, &len));
        cd = ZSTD_createCDict(bytes, len, s->zlevel);
        free(bytes);
        ERR_IF(!cd, ERR_CORRUPT, "store %s: table '%s': dictionary %u is not usable", s->path, table, id);
    }
    ts_cdict_ent *e = realloc(s->cdicts, (size_t)(s->ncdicts + 1) * sizeof *e);
    char *name = strdup(table);
    if (!e || !name) {
        if (e) s->cdicts = e;
        free(name);
        ZSTD_freeCDict(cd);
        return err_set(ERR_NOMEM, "store %s: out of memory", s->path);
    }
    s->cdicts = e;
    s->cdicts[s->ncdicts++] = (ts_cdict_ent){name, id, cd};
    *cdict = cd;
    return 0;
}

int ts__ddict(ts_store *s, const char *table, uint32_t id, ZSTD_DDict **ddict) {
    for (int i = 0; i < s->nddicts; i++)
        if (s->ddicts[i].id == id && !strcmp(s->ddicts[i].table, table)) return *ddict = s->ddicts[i].ddict, 0;
    void *bytes = NULL;
    size_t len = 0;
    int rc = dict_read(s, table, id, 0, NULL, &bytes, &len);
    if (rc == ERR_NOTFOUND) return err_set(ERR_CORRUPT, "zstd frame names dictionary %u, which the store lacks", id);
    if (rc < 0) return rc;
    ZSTD_DDict *dd = ZSTD_createDDict(bytes, len);
    free(bytes);
    ERR_IF(!dd, ERR_CORRUPT, "dictionary %u is not usable", id);
    ts_ddict_ent *e = realloc(s->ddicts, (size_t)(s->nddicts + 1) * sizeof *e);
    char *name = strdup(table);
    if (!e || !name) {
        if (e) s->ddicts = e;
        free(name);
        ZSTD_freeDDict(dd);
        return err_set(ERR_NOMEM, "store %s: out of memory", s->path);
    }
    s->ddicts = e;
    s->ddicts[s->nddicts++] = (ts_ddict_ent){name, id, dd};
    *ddict = dd;
    return 0;
}

// --- training ----------------------------------------------------------------------------------
int ts_dict_train(ts_store *s, const char *table, size_t max_samples, size_t dict_bytes, uint32_t *id_out) {
    TS_GUARD(s);
    int rc = 0, own = 0;
    ts_cursor *c = NULL;
    uint8_t *samples = NULL, *dict = NULL;
    size_t *sizes = NULL, used = 0, cap = 0, n = 0;
    ts_tensor t = {0};
    if (id_out) *id_out = 0;
    if (!max_samples) max_samples = TS_DICT_DEFAULT_SAMPLES;
    if (!dict_bytes) dict_bytes = TS_DICT_DEFAULT_BYTES;
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    uint64_t count;
    ERR_TRY(ts_count(s, table, &count));
    ERR_IF(count < 8, ERR_INPUT, "store %s: table '%s' has %llu records, too few to train a dictionary", s->path,
           table, (unsigned long long)count);
    size_t step = count > max_samples ? (size_t)(count / max_samples) : 1;
    sizes = malloc(sizeof *sizes * (max_samples + 1));
    ERR_GOTO_IF(rc, !sizes, ERR_NOMEM, "store %s: out of memory", s->path);
    ERR_GOTO(rc, ts_cursor_open(s, table, &c));
    uint64_t i = 0;
    int r;
    while (n < max_samples && (r = ts_cursor_next(c, NULL)) == 1) {
        if (i++ % step) continue;
        ts_record_info info;
        ERR_GOTO(rc, ts_cursor_info(c, &info));
        ERR_GOTO(rc, ts_cursor_get(c, &t, NULL, 0));
        if (used + t.nbytes > cap) {
            size_t ncap = (used + t.nbytes) * 2;
            uint8_t *p = realloc(samples, ncap);
            ERR_GOTO_IF(rc, !p, ERR_NOMEM, "store %s: out of memory", s->path);
            samples = p;
            cap = ncap;
        }
        size_t es = ts_dtype_size(t.dtype);
        if (info.codec == TS_CODEC_SHUFFLE_ZSTD && es > 1) ts__shuffle(samples + used, t.data, t.nbytes / es, es);
        else memcpy(samples + used, t.data, t.nbytes);
        sizes[n++] = t.nbytes;
        used += t.nbytes;
        ts_tensor_free(&t);
    }
    ts_cursor_close(c);
    c = NULL;
    dict = malloc(dict_bytes);
    ERR_GOTO_IF(rc, !dict, ERR_NOMEM, "store %s: out of memory", s->path);
    size_t len = ZDICT_trainFromBuffer(dict, dict_bytes, samples, sizes, (unsigned)n);
    ERR_GOTO_IF(rc, ZDICT_isError(len), ERR_INPUT, "store %s: table '%s': cannot train a dictionary from %zu records: %s",
                s->path, table, n, ZDICT_getErrorName(len));
    uint32_t id = ZDICT_getDictID(dict, len);
    ERR_GOTO_IF(rc, id == 0, ERR_INTERNAL, "store %s: table '%s': trained dictionary has no id", s->path, table);
    own = !s->wtxn;
    if (own) ERR_GOTO(rc, ts_begin_write(s));
    MDB_dbi dbi;
    ERR_GOTO(rc, dict_dbi(s, 1, &dbi));
    uint8_t kb[TS_KEY_MAX + 8], idb[4];
    MDB_val k = {dict_key(kb, table, id), kb}, v = {len, dict};
    int mrc = mdb_put(s->wtxn, dbi, &k, &v, 0);
    be32(idb, id);
    MDB_val ka = {strlen(table), (void *)table}, va = {4, idb};
    if (!mrc) mrc = mdb_put(s->wtxn, dbi, &ka, &va, 0);
    if (mrc) {
        rc = ts__lmdb_err(s, mrc, TS_DICT_TABLE);
        goto fail;
    }
    if (own) {
        own = 0;
        ERR_GOTO(rc, ts_commit(s));
    }
    // the next put into the table picks it up
    for (int j = 0; j < s->ncdicts; j++)
        if (!strcmp(s->cdicts[j].table, table)) {
            ZSTD_freeCDict(s->cdicts[j].cdict);
            free(s->cdicts[j].table);
            s->cdicts[j] = s->cdicts[--s->ncdicts];
            break;
        }
    if (id_out) *id_out = id;
fail:
    if (own) ts_abort(s);
    ts_cursor_close(c);
    ts_tensor_free(&t);
    free(samples);
    free(sizes);
    free(dict);
    return rc;
}
