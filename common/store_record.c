// store_record: the record format (a 72-byte versioned header + payload), the codecs (raw, zstd,
// byte-shuffle + zstd) and the record functions of store.h (put, get, info, has, delete).
//
// Header, little-endian: 0 magic u32 "dtsr" | 4 version u8 | 5 dtype u8 | 6 rank u8 | 7 codec u8
// | 8 key kind u8 | 9..11 zero | 12 shape i64[4] | 44 raw length u64 | 52 stored length u64
// | 60 XXH64 of the raw bytes u64 | 68 XXH64 of bytes 0..67 seeded with the XXH64 of the record's
// key, low 32 bits. Every field is checked on read, so a flipped byte anywhere in a record is
// found, and so is a flipped byte in its key (the record would answer under another key).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/store_internal.h"

#define TS_HDR_SEED 0x74737264u

// The header checksum: bytes 0..67 of the header, seeded with the key.
static uint32_t header_check(const uint8_t *h, const void *key, size_t klen) {
    return (uint32_t)hash_xxh64(h, 68, hash_xxh64(key, klen, TS_HDR_SEED));
}

static void pack_header(uint8_t *h, const ts_tensor *t, ts_codec codec, const ts_key *key,
                        uint64_t stored, uint64_t sum) {
    ts_key_kind kind = key->kind;
    memset(h, 0, TS_REC_HEADER);
    ts__put_le(h, TS_REC_MAGIC, 4);
    h[4] = TS_REC_VERSION;
    h[5] = (uint8_t)t->dtype;
    h[6] = (uint8_t)t->rank;
    h[7] = (uint8_t)codec;
    h[8] = (uint8_t)kind;
    for (int i = 0; i < t->rank; i++) ts__put_le(h + 12 + 8 * i, (uint64_t)t->shape[i], 8);
    ts__put_le(h + 44, t->nbytes, 8);
    ts__put_le(h + 52, stored, 8);
    ts__put_le(h + 60, sum, 8);
    ts__put_le(h + 68, header_check(h, key->b, key->len), 4);
}

int ts__rec_parse(const MDB_val *key, const void *val, size_t vlen, ts_record_info *info, char *why, size_t cap) {
    const uint8_t *h = val;
    memset(info, 0, sizeof *info);
#define BAD(...) return snprintf(why, cap, __VA_ARGS__), -1
    if (vlen < TS_REC_HEADER) BAD("value of %zu bytes is shorter than a record header", vlen);
    if (ts__get_le(h, 4) != TS_REC_MAGIC) BAD("bad record magic");
    if (h[4] != TS_REC_VERSION) BAD("unsupported record version %u", h[4]);
    if (ts__get_le(h + 68, 4) != header_check(h, key->mv_data, key->mv_size))
        BAD("header checksum mismatch (a damaged header, or a damaged key)");
    if (h[5] >= TS_DTYPE_COUNT) BAD("bad dtype code %u", h[5]);
    if (h[6] > TS_MAX_RANK) BAD("bad rank %u", h[6]);
    if (h[7] >= TS_CODEC_COUNT) BAD("bad codec code %u", h[7]);
    if (h[8] >= TS_KEY_KIND_COUNT) BAD("bad key kind %u", h[8]);
    if (h[9] || h[10] || h[11]) BAD("reserved header bytes are not zero");
    info->version = h[4];
    info->dtype = (ts_dtype)h[5];
    info->rank = h[6];
    info->codec = (ts_codec)h[7];
    info->key_kind = (ts_key_kind)h[8];
    uint64_t n = ts_dtype_size(info->dtype);
    for (int i = 0; i < TS_MAX_RANK; i++) {
        uint64_t d = ts__get_le(h + 12 + 8 * i, 8);
        if (i >= info->rank) {
            if (d) BAD("shape entry %d past rank %d is not zero", i, info->rank);
            continue;
        }
        if (d > (UINT64_C(1) << 62)) BAD("bad dimension %" PRIu64, d);
        if (d && n > (UINT64_C(1) << 62) / d) BAD("shape overflows");
        n *= d;
        info->shape[i] = (int64_t)d;
    }
    info->raw_len = ts__get_le(h + 44, 8);
    info->stored_len = ts__get_le(h + 52, 8);
    info->checksum = ts__get_le(h + 60, 8);
    if (info->raw_len != n) BAD("raw length %" PRIu64 " does not match shape (%" PRIu64 " bytes)", info->raw_len, n);
    if (info->stored_len != vlen - TS_REC_HEADER)
        BAD("stored length %" PRIu64 " does not match the value (%zu payload bytes)", info->stored_len, vlen - TS_REC_HEADER);
    if (info->codec == TS_CODEC_RAW && info->stored_len != info->raw_len) BAD("raw record with stored length != raw length");
#undef BAD
    return 0;
}

void ts__key_from(ts_key *k, const MDB_val *key, const MDB_val *val) {
    size_t n = key->mv_size < TS_KEY_MAX ? key->mv_size : TS_KEY_MAX;
    memcpy(k->b, key->mv_data, n);
    k->len = n;
    k->kind = val ? ts__rec_key_kind(val) : TS_KEY_RAW;
    if (k->kind == TS_KEY_RAW) { // header unreadable: guess the usual kinds by length
        if (n == 8) k->kind = TS_KEY_U64;
        else if (n && n % 4 == 0 && n <= 16) k->kind = TS_KEY_TUPLE;
        else k->kind = TS_KEY_STR; // ts_key_format falls back to hex when not printable
    }
}

ts_key_kind ts__rec_key_kind(const MDB_val *val) {
    const uint8_t *h = val->mv_data;
    if (val->mv_size < TS_REC_HEADER || ts__get_le(h, 4) != TS_REC_MAGIC || h[8] >= TS_KEY_KIND_COUNT) return TS_KEY_RAW;
    return (ts_key_kind)h[8];
}

// "store S: table 'T' key K: " context for messages.
static int corrupt(ts_store *s, const char *table, const MDB_val *key, const MDB_val *val, int code,
                   const char *why) {
    ts_key k;
    char kb[128];
    ts__key_from(&k, key, val);
    return err_set(code, "store %s: table '%s' key %s: %s", s->path, table, ts_key_format(&k, kb, sizeof kb), why);
}

int ts__rec_info(ts_store *s, const char *table, const MDB_val *key, const MDB_val *val, ts_record_info *info) {
    char why[160], msg[200];
    if (ts__rec_parse(key, val->mv_data, val->mv_size, info, why, sizeof why) == 0) return 0;
    snprintf(msg, sizeof msg, "corrupt record: %s", why);
    return corrupt(s, table, key, val, ERR_CORRUPT, msg);
}

// --- codecs ------------------------------------------------------------------------------------
void ts__shuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t es) {
    if (es == 4) {
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[4 * i];
            dst[n + i] = src[4 * i + 1];
            dst[2 * n + i] = src[4 * i + 2];
            dst[3 * n + i] = src[4 * i + 3];
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < es; b++) dst[b * n + i] = src[i * es + b];
}

static void unshuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t es) {
    if (es == 4) {
        for (size_t i = 0; i < n; i++) {
            dst[4 * i] = src[i];
            dst[4 * i + 1] = src[n + i];
            dst[4 * i + 2] = src[2 * n + i];
            dst[4 * i + 3] = src[3 * n + i];
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < es; b++) dst[i * es + b] = src[b * n + i];
}

int ts__rec_decode(ts_store *s, const char *table, const MDB_val *key, const MDB_val *val, ts_tensor *out,
                   void *buf, size_t cap) {
    ts_record_info info;
    int rc = ts__rec_info(s, table, key, val, &info);
    memset(out, 0, sizeof *out);
    if (rc < 0) return rc;
    size_t raw = (size_t)info.raw_len, es = ts_dtype_size(info.dtype);
    uint8_t *dst;
    if (info.codec != TS_CODEC_RAW) { // the frame must agree before anything is allocated
        unsigned long long fcs =
            ZSTD_getFrameContentSize((const uint8_t *)val->mv_data + TS_REC_HEADER, (size_t)info.stored_len);
        if (fcs != (unsigned long long)raw)
            return corrupt(s, table, key, val, ERR_CORRUPT, "corrupt record: zstd frame size disagrees with the header");
    }
    if (buf) {
        if (cap < raw) {
            char msg[120];
            snprintf(msg, sizeof msg, "buffer of %zu bytes is too small for the record's %zu bytes", cap, raw);
            return corrupt(s, table, key, val, ERR_INPUT, msg);
        }
        dst = buf;
    } else {
        dst = malloc(raw ? raw : 1);
        if (!dst) return corrupt(s, table, key, val, ERR_NOMEM, "out of memory");
    }
    const uint8_t *payload = (const uint8_t *)val->mv_data + TS_REC_HEADER;
    const char *why = NULL;
    char dwhy[160];
    if (info.codec == TS_CODEC_RAW) {
        memcpy(dst, payload, raw);
    } else {
        uint8_t *z = dst;
        if (info.codec == TS_CODEC_SHUFFLE_ZSTD) {
            if ((rc = ts__scratch(s, 2, raw)) < 0) goto fail;
            z = s->scratch2;
        }
        unsigned dict_id = ZSTD_getDictID_fromFrame(payload, (size_t)info.stored_len);
        ZSTD_DDict *ddict = NULL;
        size_t got = 0;
        if (dict_id && (rc = ts__ddict(s, table, dict_id, &ddict)) < 0) {
            if (rc != ERR_CORRUPT) goto fail;
            snprintf(dwhy, sizeof dwhy, "%s", err_msg());
            why = dwhy;
        } else if (ddict)
            got = ZSTD_decompress_usingDDict(s->dctx, z, raw, payload, (size_t)info.stored_len, ddict);
        else
            got = ZSTD_decompressDCtx(s->dctx, z, raw, payload, (size_t)info.stored_len);
        if (why) { // reported below
        } else if (ZSTD_isError(got)) why = ZSTD_getErrorName(got);
        else if (got != raw) why = "decompressed length mismatch";
        else if (info.codec == TS_CODEC_SHUFFLE_ZSTD) unshuffle(dst, z, raw / es, es);
    }
    if (!why && hash_xxh64(dst, raw, 0) != info.checksum) why = "checksum mismatch";
    if (why) {
        char msg[256];
        snprintf(msg, sizeof msg, "corrupt record: %s", why);
        rc = corrupt(s, table, key, val, ERR_CORRUPT, msg);
        goto fail;
    }
    out->dtype = info.dtype;
    out->rank = info.rank;
    memcpy(out->shape, info.shape, sizeof out->shape);
    out->data = dst;
    out->nbytes = raw;
    return 0;
fail:
    if (!buf) free(dst);
    memset(out, 0, sizeof *out);
    return rc;
}

int ts__rec_put(ts_store *s, MDB_txn *txn, MDB_dbi dbi, const char *table, const ts_key *key,
                const ts_tensor *t, ts_codec codec, int *mrc_out) {
    char kb[128];
    *mrc_out = 0;
    size_t es = ts_dtype_size(t->dtype);
    ts_tensor chk;
    int rc = ts_tensor_init(&chk, t->dtype, t->rank, t->shape, t->data);
    if (rc < 0 || chk.nbytes != t->nbytes || (t->nbytes && !t->data))
        return err_set(ERR_USAGE, "store %s: table '%s' key %s: bad tensor (dtype, rank, shape or nbytes)", s->path,
                       table, ts_key_format(key, kb, sizeof kb));
    ERR_IF(codec < 0 || codec >= TS_CODEC_COUNT, ERR_USAGE, "store %s: bad codec %d", s->path, (int)codec);
    ERR_IF(key->len == 0 || key->len > TS_KEY_MAX, ERR_USAGE, "store %s: table '%s': bad key length %zu", s->path,
           table, key->len);
    if (codec == TS_CODEC_SHUFFLE_ZSTD && es == 1) codec = TS_CODEC_ZSTD;
    uint64_t sum = hash_xxh64(t->data, t->nbytes, 0);
    const uint8_t *payload = t->data;
    size_t stored = t->nbytes;
    if (codec != TS_CODEC_RAW && t->nbytes > 0) {
        const uint8_t *src = t->data;
        if (codec == TS_CODEC_SHUFFLE_ZSTD) {
            ERR_TRY(ts__scratch(s, 2, t->nbytes));
            ts__shuffle(s->scratch2, src, t->nbytes / es, es);
            src = s->scratch2;
        }
        size_t bound = ZSTD_compressBound(t->nbytes);
        ERR_TRY(ts__scratch(s, 1, bound));
        ZSTD_CDict *cdict;
        ERR_TRY(ts__cdict(s, table, &cdict));
        size_t z = cdict ? ZSTD_compress_usingCDict(s->cctx, s->scratch, bound, src, t->nbytes, cdict)
                         : ZSTD_compressCCtx(s->cctx, s->scratch, bound, src, t->nbytes, s->zlevel);
        ERR_IF(ZSTD_isError(z), ERR_INTERNAL, "store %s: table '%s' key %s: zstd: %s", s->path, table,
               ts_key_format(key, kb, sizeof kb), ZSTD_getErrorName(z));
        if (z < t->nbytes) {
            payload = s->scratch;
            stored = z;
        } else codec = TS_CODEC_RAW;
    } else codec = TS_CODEC_RAW;
    MDB_val k = {key->len, (void *)key->b}, v = {TS_REC_HEADER + stored, NULL};
    // Appending past the last key fills pages densely (no 50/50 splits); any other key falls
    // back to an ordinary insert.
    int mrc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (mrc == MDB_KEYEXIST) {
        v.mv_size = TS_REC_HEADER + stored;
        mrc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    }
    if (mrc) {
        *mrc_out = mrc;
        return err_set(ERR_STORE, "store %s: table '%s' key %s: put: %s", s->path, table,
                       ts_key_format(key, kb, sizeof kb), mdb_strerror(mrc));
    }
    pack_header(v.mv_data, t, codec, key, stored, sum);
    if (stored) memcpy((uint8_t *)v.mv_data + TS_REC_HEADER, payload, stored);
    return 0;
}

// --- public record functions -------------------------------------------------------------------
static int check_table(ts_store *s, const char *table) {
    ERR_IF(!strcmp(table, TS_META_TABLE), ERR_USAGE, "store %s: 'meta' holds text, not records (use ts_meta_*)",
           s->path);
    ERR_IF(!strncmp(table, "ts.", 3), ERR_USAGE, "store %s: table names starting with 'ts.' are reserved ('%s')",
           s->path, table);
    return 0;
}

int ts_put(ts_store *s, const char *table, const ts_key *key, const ts_tensor *t, ts_codec codec) {
    TS_GUARD(s);
    ERR_TRY(check_table(s, table));
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    int own = !s->wtxn, rc = 0, mrc = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (own) ERR_TRY(ts_begin_write(s));
        MDB_dbi dbi;
        ERR_GOTO(rc, ts__dbi(s, table, 1, &dbi));
        rc = ts__rec_put(s, s->wtxn, dbi, table, key, t, codec, &mrc);
        if (rc == 0) return own ? ts_commit(s) : 0;
        if (!own || mrc != MDB_MAP_FULL) goto fail;
        // a lone put that fills the map: abort, grow the map, retry
        ts_abort(s);
        if (s->ncursors) break;
        MDB_envinfo info;
        mrc = mdb_env_info(s->env, &info);
        if (mrc) return ts__lmdb_err(s, mrc, "environment info");
        if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
        mrc = mdb_env_set_mapsize(s->env, info.me_mapsize * 2);
        if (mrc) return ts__lmdb_err(s, mrc, "grow map");
    }
    return rc;
fail:
    if (mrc == MDB_MAP_FULL && !own)
        err_prefix(rc, "batch too large for the map (commit smaller batches): ");
    if (own) ts_abort(s);
    return rc;
}

// Looks up key in table: *val valid until ts__rd_end(s, *txn). ERR_NOTFOUND names the key.
static int lookup(ts_store *s, const char *table, const ts_key *key, MDB_txn **txn, MDB_val *val) {
    MDB_dbi dbi;
    char kb[128];
    ERR_TRY(check_table(s, table));
    ERR_TRY(ts__dbi(s, table, 0, &dbi));
    ERR_TRY(ts__rd_begin(s, txn));
    MDB_val k = {key->len, (void *)key->b};
    int mrc = mdb_get(*txn, dbi, &k, val);
    if (mrc == 0) return 0;
    ts__rd_end(s, *txn);
    if (mrc == MDB_NOTFOUND)
        return err_set(ERR_NOTFOUND, "store %s: table '%s' has no key %s", s->path, table,
                       ts_key_format(key, kb, sizeof kb));
    return ts__lmdb_err(s, mrc, table);
}

int ts_get_into(ts_store *s, const char *table, const ts_key *key, ts_tensor *out, void *buf, size_t cap) {
    TS_GUARD(s);
    MDB_txn *txn;
    MDB_val v;
    memset(out, 0, sizeof *out);
    ERR_IF(!buf, ERR_USAGE, "store %s: ts_get_into without a buffer", s->path);
    ERR_TRY(lookup(s, table, key, &txn, &v));
    MDB_val k = {key->len, (void *)key->b};
    int rc = ts__rec_decode(s, table, &k, &v, out, buf, cap);
    ts__rd_end(s, txn);
    return rc;
}

int ts_get(ts_store *s, const char *table, const ts_key *key, ts_tensor *out) {
    TS_GUARD(s);
    MDB_txn *txn;
    MDB_val v;
    memset(out, 0, sizeof *out);
    ERR_TRY(lookup(s, table, key, &txn, &v));
    MDB_val k = {key->len, (void *)key->b};
    int rc = ts__rec_decode(s, table, &k, &v, out, NULL, 0);
    ts__rd_end(s, txn);
    return rc;
}

int ts_get_info(ts_store *s, const char *table, const ts_key *key, ts_record_info *info) {
    TS_GUARD(s);
    MDB_txn *txn;
    MDB_val v;
    ERR_TRY(lookup(s, table, key, &txn, &v));
    MDB_val k = {key->len, (void *)key->b};
    int rc = ts__rec_info(s, table, &k, &v, info);
    ts__rd_end(s, txn);
    return rc;
}

int ts_has(ts_store *s, const char *table, const ts_key *key) {
    TS_GUARD(s);
    MDB_txn *txn;
    MDB_val v;
    int rc = lookup(s, table, key, &txn, &v);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        return 0;
    }
    if (rc < 0) return rc;
    ts__rd_end(s, txn);
    return 1;
}

int ts_del(ts_store *s, const char *table, const ts_key *key) {
    TS_GUARD(s);
    char kb[128];
    ERR_TRY(check_table(s, table));
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    int own = !s->wtxn, rc = 0;
    if (own) ERR_TRY(ts_begin_write(s));
    MDB_dbi dbi;
    ERR_GOTO(rc, ts__dbi(s, table, 0, &dbi));
    MDB_val k = {key->len, (void *)key->b};
    int mrc = mdb_del(s->wtxn, dbi, &k, NULL);
    ERR_GOTO_IF(rc, mrc == MDB_NOTFOUND, ERR_NOTFOUND, "store %s: table '%s' has no key %s", s->path, table,
                ts_key_format(key, kb, sizeof kb));
    if (mrc) { rc = ts__lmdb_err(s, mrc, table); goto fail; }
    if (own) return ts_commit(s);
    return 0;
fail:
    if (own) ts_abort(s);
    return rc;
}
