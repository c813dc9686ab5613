// store: opening a tensor store (an LMDB environment in a directory), write batches, the table
// handle cache, tables, meta text and statistics (see store.h; records: store_record.c,
// cursors: store_cursor.c).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/err.h"
#include "common/store_internal.h"

#define TS_MAP_INITIAL (UINT64_C(64) << 30) // sparse: the file grows with the data
#define TS_MAX_DBS 256

// Whether the file system holding path has (almost) no space left for this user.
static int disk_full(const char *path) {
    struct statvfs v;
    if (!path || statvfs(path, &v) != 0) return 0;
    return (uint64_t)v.f_bavail * v.f_frsize < (UINT64_C(1) << 20);
}

int ts__lmdb_err(ts_store *s, int mrc, const char *what) {
    int code = ERR_STORE;
    // LMDB reports a full disk as ENOSPC, or as EIO when a write into the file's holes failed
    if (mrc == ENOSPC || mrc == EDQUOT || ((mrc == EIO || mrc == EFBIG) && disk_full(s ? s->path : NULL)))
        return err_set(ERR_STORE,
                       "store %s: %s: the disk is full (%s); free some space and rerun: what was committed "
                       "before is kept and the rerun continues from there",
                       s ? s->path : "?", what, mdb_strerror(mrc));
    if (mrc == MDB_NOTFOUND) code = ERR_NOTFOUND;
    else if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INVALID ||
             mrc == MDB_VERSION_MISMATCH)
        code = ERR_CORRUPT;
    else if (mrc == ENOMEM) code = ERR_NOMEM;
    return err_set(code, "store %s: %s: %s", s ? s->path : "?", what, mdb_strerror(mrc));
}

int ts__scratch(ts_store *s, int which, size_t n) {
    uint8_t **p = which == 1 ? &s->scratch : &s->scratch2;
    size_t *cap = which == 1 ? &s->scratch_cap : &s->scratch2_cap;
    if (*cap >= n) return 0;
    size_t want = n + n / 4 + 4096;
    uint8_t *q = realloc(*p, want);
    if (!q) return err_set(ERR_NOMEM, "store %s: out of memory (%zu bytes)", s->path, want);
    *p = q;
    *cap = want;
    return 0;
}

// --- table handles -----------------------------------------------------------------------------
static int valid_table_name(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 200) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x21 || t[i] == 0x7f) return 0;
    return 1;
}

int ts__dbi(ts_store *s, const char *table, int create, MDB_dbi *dbi) {
    for (int i = 0; i < s->ntabs; i++)
        if (!strcmp(s->tabs[i].name, table)) return *dbi = s->tabs[i].dbi, 0;
    ERR_IF(!valid_table_name(table), ERR_USAGE, "store %s: bad table name '%s'", s->path, table);
    if (s->ntabs == s->captabs) {
        int cap = s->captabs ? 2 * s->captabs : 16;
        ts_table_ent *t = realloc(s->tabs, (size_t)cap * sizeof *t);
        ERR_IF(!t, ERR_NOMEM, "store %s: out of memory", s->path);
        s->tabs = t;
        s->captabs = cap;
    }
    int mrc;
    MDB_dbi d;
    int pending = 0;
    if (s->wtxn) {
        mrc = mdb_dbi_open(s->wtxn, table, create ? MDB_CREATE : 0, &d);
        pending = 1;
    } else {
        if (create) return err_set(ERR_INTERNAL, "store %s: table '%s' created outside a write", s->path, table);
        MDB_txn *txn;
        ERR_TRY(ts__txn_begin_rd(s, &txn));
        mrc = mdb_dbi_open(txn, table, 0, &d);
        if (mrc) mdb_txn_abort(txn);
        else mrc = mdb_txn_commit(txn); // keeps the handle
    }
    if (mrc == MDB_NOTFOUND) return err_set(ERR_NOTFOUND, "store %s: no table '%s'", s->path, table);
    if (mrc == MDB_INCOMPATIBLE)
        return err_set(ERR_CORRUPT, "store %s: '%s' is not a table", s->path, table);
    if (mrc) return ts__lmdb_err(s, mrc, table);
    char *name = strdup(table);
    ERR_IF(!name, ERR_NOMEM, "store %s: out of memory", s->path);
    s->tabs[s->ntabs++] = (ts_table_ent){name, d, pending};
    *dbi = d;
    return 0;
}

// Forgets cached handles: all pending ones (batch aborted) or one name.
static void forget_tables(ts_store *s, int pending_only, const char *name) {
    int j = 0;
    for (int i = 0; i < s->ntabs; i++) {
        int drop = name ? !strcmp(s->tabs[i].name, name) : (!pending_only || s->tabs[i].pending);
        if (drop) free(s->tabs[i].name);
        else s->tabs[j++] = s->tabs[i];
    }
    s->ntabs = j;
}

// --- read transactions -------------------------------------------------------------------------
int ts__txn_begin_rd(ts_store *s, MDB_txn **txn) {
    int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (mrc == MDB_MAP_RESIZED && !s->ncursors && s->rd_depth == 0 && !s->wtxn) {
        // another process grew the map: adopt its size (no transaction of ours may be open)
        if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
        mrc = mdb_env_set_mapsize(s->env, 0);
        if (!mrc) mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    }
    if (mrc) {
        *txn = NULL;
        return ts__lmdb_err(s, mrc, "begin read");
    }
    return 0;
}

int ts__rd_begin(ts_store *s, MDB_txn **txn) {
    if (s->wtxn) return *txn = s->wtxn, 0;
    if (s->rd_depth > 0) { // nested use inside another read: the same snapshot
        s->rd_depth++;
        return *txn = s->rtxn, 0;
    }
    int mrc;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->rtxn) mrc = mdb_txn_renew(s->rtxn);
        else mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
        if (mrc == MDB_MAP_RESIZED && s->ncursors == 0) { // another process grew the map
            if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
            mrc = mdb_env_set_mapsize(s->env, 0);
            if (mrc) return ts__lmdb_err(s, mrc, "adopt the grown map");
            continue;
        }
        break;
    }
    if (mrc) {
        if (s->rtxn && mrc != MDB_MAP_RESIZED) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
        return ts__lmdb_err(s, mrc, "begin read");
    }
    *txn = s->rtxn;
    s->rd_depth = 1;
    return 0;
}

void ts__rd_end(ts_store *s, MDB_txn *txn) {
    if (txn && txn == s->rtxn && s->rd_depth > 0 && --s->rd_depth == 0) mdb_txn_reset(txn);
}

// --- opening -----------------------------------------------------------------------------------
// mkdir -p: creates path and its missing parents.
static int mkdir_parents(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    ERR_IF(n == 0 || n >= sizeof buf, ERR_USAGE, "store '%s': bad path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_set(ERR_IO, "store %s: cannot create directory %s: %s", path, buf, strerror(errno));
        buf[i] = c;
    }
    return 0;
}

// Opens the LMDB environment of s (its directory exists; the writer lock is held when writing)
// and checks it is a readable store of this format.
static int open_env(ts_store *s) {
    int rc = 0, mrc;
    const char *path = s->path;
    unsigned flags = s->flags;
    struct stat st;
    char data[4200];
    ERR_IF(strlen(path) > 4000, ERR_USAGE, "store %.100s...: path too long", path);
    snprintf(data, sizeof data, "%s/data.mdb", path);
    int have_data = stat(data, &st) == 0;
    off_t data_size = have_data ? st.st_size : 0;
    ERR_IF(have_data && !S_ISREG(st.st_mode), ERR_INPUT, "store %s: data.mdb is not a regular file", path);
    if (!have_data && !(flags & TS_CREATE))
        return err_set(ERR_NOTFOUND, "store %s: not a tensor store (no data.mdb in the directory)", path);
    if (have_data && data_size < 2 * 4096 && !(data_size == 0 && (flags & TS_CREATE)))
        return err_set(ERR_CORRUPT, "store %s: data.mdb is truncated (%lld bytes)", path, (long long)data_size);

    uint64_t map = TS_MAP_INITIAL;
    const char *env_map = getenv("DIFFOOD_STORE_MAPSIZE"); // tests of map growth
    if (env_map && strtoull(env_map, NULL, 10) >= (1u << 20)) map = strtoull(env_map, NULL, 10);
    unsigned mflags = MDB_NOTLS;
    if (flags & TS_RDONLY) mflags |= MDB_RDONLY;
    if (flags & TS_NOSYNC) mflags |= MDB_NOSYNC;
    for (int attempt = 0; attempt < 2; attempt++) {
        mrc = mdb_env_create(&s->env);
        if (mrc) { s->env = NULL; return ts__lmdb_err(s, mrc, "create environment"); }
        mrc = mdb_env_set_maxdbs(s->env, TS_MAX_DBS);
        if (!mrc) mrc = mdb_env_set_maxreaders(s->env, 510);
        if (!mrc) mrc = mdb_env_set_mapsize(s->env, (size_t)map);
        if (mrc) return ts__lmdb_err(s, mrc, "set up environment");
        mrc = mdb_env_open(s->env, path, mflags, 0664);
        // a read-only look at a store on read-only media: no lock file (no writer can be there)
        if ((mrc == EACCES || mrc == EROFS) && (flags & TS_RDONLY) && !(mflags & MDB_NOLOCK)) {
            mdb_env_close(s->env);
            s->env = NULL;
            mflags |= MDB_NOLOCK;
            continue;
        }
        break;
    }
    if (mrc) {
        if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH || mrc == ENOENT || mrc == EINVAL)
            return err_set(ERR_CORRUPT, "store %s: data.mdb is not a valid LMDB file (%s)", path, mdb_strerror(mrc));
        return ts__lmdb_err(s, mrc, "open");
    }
    // A truncated file would fault on access: the pages LMDB thinks it has must be in the file.
    MDB_envinfo info;
    MDB_stat est;
    mrc = mdb_env_info(s->env, &info);
    if (!mrc) mrc = mdb_env_stat(s->env, &est);
    if (mrc) return ts__lmdb_err(s, mrc, "environment info");
    ERR_IF(stat(data, &st) != 0, ERR_IO, "store %s: data.mdb: %s", path, strerror(errno));
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    ERR_IF((uint64_t)st.st_size < need, ERR_CORRUPT,
           "store %s: data.mdb is truncated (%lld bytes, its pages need %" PRIu64 ")", path,
           (long long)st.st_size, need);
    if (!(mflags & MDB_NOLOCK)) {
        int dead = 0; // reader slots of killed processes would keep old pages from being reused
        mrc = mdb_reader_check(s->env, &dead);
        if (mrc) return ts__lmdb_err(s, mrc, "reader check");
    }
    ERR_TRY(ts__meta_open(s, !(flags & TS_RDONLY) && (flags & TS_CREATE)));
    return rc;
}

// Removes the LMDB files of a damaged store (TS_REPLACE; the writer lock is held).
static int remove_env(ts_store *s) {
    char p[4200];
    const char *files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", s->path, files[i]);
        ERR_IF(unlink(p) != 0 && errno != ENOENT, ERR_IO, "store %s: cannot remove the damaged %s: %s", s->path,
               files[i], strerror(errno));
    }
    return 0;
}

int ts_reset(ts_store *s) {
    TS_GUARD(s);
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    ERR_IF(s->ncursors, ERR_USAGE, "store %s: reset with open cursors", s->path);
    if (s->wtxn) ts_abort(s);
    if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
    if (s->env) mdb_env_close(s->env); // nothing of the old pages is read again (they may be damaged)
    s->env = NULL;
    s->rd_depth = 0;
    forget_tables(s, 0, NULL);
    ts__dict_free(s);
    ERR_TRY(remove_env(s));
    unsigned flags = s->flags;
    s->flags |= TS_CREATE;
    int rc = open_env(s);
    s->flags = flags;
    return rc;
}

int ts_open(ts_store **out, const char *path, unsigned flags) {
    int rc = 0;
    *out = NULL;
    ERR_IF((flags & TS_RDONLY) && (flags & TS_CREATE), ERR_USAGE, "store %s: read-only and create together", path);
    ERR_IF((flags & TS_REPLACE) && !(flags & TS_CREATE), ERR_USAGE, "store %s: TS_REPLACE without TS_CREATE", path);
    ts__guard_install();
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) return err_set(ERR_IO, "store %s: %s", path, strerror(errno));
        if (!(flags & TS_CREATE)) return err_set(ERR_NOTFOUND, "store %s: no such store (missing directory)", path);
        ERR_TRY(mkdir_parents(path));
    } else if (!S_ISDIR(st.st_mode)) {
        return err_set(ERR_INPUT, "store %s: not a store (a store is a directory; this is a file)", path);
    }
    ts_store *s = calloc(1, sizeof *s);
    if (!s) return err_set(ERR_NOMEM, "store %s: out of memory", path);
    s->lock_fd = -1;
    s->flags = flags;
    s->zlevel = 3;
    s->path = strdup(path);
    if (!s->path) { // before TS_GUARD: no goto may jump into the guard's scope
        free(s);
        return err_set(ERR_NOMEM, "store %s: out of memory", path);
    }
    TS_GUARD(s);
    s->cctx = ZSTD_createCCtx();
    s->dctx = ZSTD_createDCtx();
    ERR_GOTO_IF(rc, !s->cctx || !s->dctx, ERR_NOMEM, "store %s: out of memory (zstd)", path);
    if (!(flags & TS_RDONLY)) ERR_GOTO(rc, ts__lock_take(path, &s->lock_fd));
    rc = open_env(s);
    if ((rc == ERR_CORRUPT || rc == ERR_UNSUPPORTED) && (flags & TS_REPLACE)) {
        err_clear(); // a damaged or old store the caller asked to replace: start afresh
        rc = ts_reset(s);
    }
    ERR_GOTO(rc, rc);
    *out = s;
    return 0;
fail:
    ts_close(s);
    return rc;
}

void ts_close(ts_store *s) {
    if (!s) return;
    if (s->wtxn) ts_abort(s);
    if (s->rtxn) mdb_txn_abort(s->rtxn);
    if (s->env) mdb_env_close(s->env);
    ts__lock_release(s->lock_fd);
    forget_tables(s, 0, NULL);
    free(s->tabs);
    ts__dict_free(s);
    ZSTD_freeCCtx(s->cctx);
    ZSTD_freeDCtx(s->dctx);
    free(s->scratch);
    free(s->scratch2);
    free(s->path);
    free(s);
}

const char *ts_path(const ts_store *s) { return s->path; }

void ts_set_zstd_level(ts_store *s, int level) {
    s->zlevel = level < 1 ? 1 : level > 19 ? 19 : level;
}

// --- write batches -----------------------------------------------------------------------------
// Doubles the map when more than half is used (only with no open transaction or cursor).
static int maybe_grow(ts_store *s) {
    MDB_envinfo info;
    MDB_stat est;
    if (s->ncursors) return 0;
    int mrc = mdb_env_info(s->env, &info);
    if (!mrc) mrc = mdb_env_stat(s->env, &est);
    if (mrc) return ts__lmdb_err(s, mrc, "environment info");
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    if (used <= info.me_mapsize / 2) return 0;
    if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
    mrc = mdb_env_set_mapsize(s->env, info.me_mapsize * 2);
    if (mrc) return ts__lmdb_err(s, mrc, "grow map");
    return 0;
}

int ts_begin_write(ts_store *s) {
    TS_GUARD(s);
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    ERR_IF(s->wtxn != NULL, ERR_USAGE, "store %s: a write batch is already open", s->path);
    ERR_TRY(maybe_grow(s));
    int mrc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
    if (mrc == MDB_MAP_RESIZED && !s->ncursors) {
        if (s->rtxn) { mdb_txn_abort(s->rtxn); s->rtxn = NULL; }
        mrc = mdb_env_set_mapsize(s->env, 0);
        if (!mrc) mrc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
    }
    if (mrc) {
        s->wtxn = NULL;
        return ts__lmdb_err(s, mrc, "begin write");
    }
    return 0;
}

int ts_commit(ts_store *s) {
    TS_GUARD(s);
    ERR_IF(!s->wtxn, ERR_USAGE, "store %s: commit without a write batch", s->path);
    ts__cursors_detach(s);
    int mrc = mdb_txn_commit(s->wtxn);
    s->wtxn = NULL;
    if (mrc) {
        forget_tables(s, 1, NULL);
        return ts__lmdb_err(s, mrc, "commit");
    }
    for (int i = 0; i < s->ntabs; i++) s->tabs[i].pending = 0;
    return 0;
}

void ts_abort(ts_store *s) {
    TS_GUARD(s);
    if (!s->wtxn) return;
    ts__cursors_detach(s);
    mdb_txn_abort(s->wtxn);
    s->wtxn = NULL;
    forget_tables(s, 1, NULL);
}

int ts_in_write(const ts_store *s) { return s->wtxn != NULL; }

// --- tables ------------------------------------------------------------------------------------
int ts_table_exists(ts_store *s, const char *table) {
    TS_GUARD(s);
    MDB_dbi dbi;
    int rc = ts__dbi(s, table, 0, &dbi);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        return 0;
    }
    return rc < 0 ? rc : 1;
}

int ts_count(ts_store *s, const char *table, uint64_t *n) {
    TS_GUARD(s);
    MDB_dbi dbi;
    MDB_txn *txn;
    MDB_stat st;
    ERR_TRY(ts__dbi(s, table, 0, &dbi));
    ERR_TRY(ts__rd_begin(s, &txn));
    int mrc = mdb_stat(txn, dbi, &st);
    ts__rd_end(s, txn);
    if (mrc) return ts__lmdb_err(s, mrc, table);
    *n = st.ms_entries;
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ts_names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int ts__list_keys(ts_store *s, MDB_dbi dbi, int skip_meta, char ***names, int *n) {
    int rc = 0, mrc, cnt = 0, cap = 0;
    char **v = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    *names = NULL;
    *n = 0;
    ERR_GOTO(rc, ts__rd_begin(s, &txn));
    if (dbi == TS_MAIN_DBI) {
        mrc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (mrc) { rc = ts__lmdb_err(s, mrc, "main database"); goto fail; }
    }
    mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) { rc = ts__lmdb_err(s, mrc, "cursor"); goto fail; }
    MDB_val k, d;
    for (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !mrc; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (skip_meta && ((k.mv_size == strlen(TS_META_TABLE) && !memcmp(k.mv_data, TS_META_TABLE, k.mv_size)) ||
                          (k.mv_size >= 3 && !memcmp(k.mv_data, "ts.", 3))))
            continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            ERR_GOTO_IF(rc, !nv, ERR_NOMEM, "store %s: out of memory", s->path);
            v = nv;
        }
        v[cnt] = strndup(k.mv_data, k.mv_size);
        ERR_GOTO_IF(rc, !v[cnt], ERR_NOMEM, "store %s: out of memory", s->path);
        cnt++;
    }
    if (mrc != MDB_NOTFOUND) { rc = ts__lmdb_err(s, mrc, "list"); goto fail; }
    mdb_cursor_close(cur);
    ts__rd_end(s, txn);
    if (cnt > 1) qsort(v, (size_t)cnt, sizeof *v, cmp_names);
    *names = v;
    *n = cnt;
    return 0;
fail:
    if (cur) mdb_cursor_close(cur);
    if (txn) ts__rd_end(s, txn);
    ts_names_free(v, cnt);
    return rc;
}

int ts_tables(ts_store *s, char ***names, int *n) {
    TS_GUARD(s);
    // the unnamed main database lists the named ones
    return ts__list_keys(s, TS_MAIN_DBI, 1, names, n);
}

int ts_drop_table(ts_store *s, const char *table) {
    TS_GUARD(s);
    ERR_IF(!strcmp(table, TS_META_TABLE) || !strncmp(table, "ts.", 3), ERR_USAGE,
           "store %s: table '%s' is the store's own and cannot be dropped", s->path, table);
    ERR_IF(s->flags & TS_RDONLY, ERR_USAGE, "store %s: opened read-only", s->path);
    int own = !s->wtxn, rc;
    if (own) ERR_TRY(ts_begin_write(s));
    MDB_dbi dbi;
    ERR_GOTO(rc, ts__dbi(s, table, 0, &dbi));
    int mrc = mdb_drop(s->wtxn, dbi, 1);
    forget_tables(s, 0, table); // LMDB closed the handle
    if (mrc) { rc = ts__lmdb_err(s, mrc, table); goto fail; }
    if (own) return ts_commit(s);
    return 0;
fail:
    if (own) ts_abort(s);
    return rc;
}

int ts_env_stat(ts_store *s, ts_env_info *st) {
    TS_GUARD(s);
    MDB_envinfo info;
    MDB_stat est;
    memset(st, 0, sizeof *st);
    int mrc = mdb_env_info(s->env, &info);
    if (!mrc) mrc = mdb_env_stat(s->env, &est);
    if (mrc) return ts__lmdb_err(s, mrc, "env info");
    st->map_size = info.me_mapsize;
    st->page_size = est.ms_psize;
    st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    st->max_readers = info.me_maxreaders;
    st->num_readers = info.me_numreaders;
    st->last_txn = info.me_last_txnid;
    char dp[4096];
    struct stat fst;
    snprintf(dp, sizeof dp, "%s/data.mdb", s->path);
    if (stat(dp, &fst) == 0) st->file_bytes = (uint64_t)fst.st_size;
    return 0;
}
