// wio_pickle: an unpickler for exactly what torch.save writes (wio_internal.h): nested dicts,
// OrderedDicts, lists and tuples of tensors and plain values. Globals are limited to the ones
// torch.save uses for tensors; nothing is ever called or imported. Every length is checked
// against the bytes left, memo indices against the memo, MARKs against the stack.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wio/wio_internal.h"

// --- arena ---------------------------------------------------------------------------------------

struct wio_arena_chunk {
    wio_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *wio_arena_alloc(wio_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    wio_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void wio_arena_free(wio_arena *a) {
    while (a->head) {
        wio_arena_chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

// --- the machine ---------------------------------------------------------------------------------

typedef struct {
    wio_arena *a;
    const uint8_t *p, *end, *start;
    const char *what;
    int op;         // the opcode being run
    size_t op_at;   // its offset
    pv **stack;
    size_t sn, scap;
    size_t *marks;
    size_t mn, mcap;
    pv **memo;
    size_t memn, memcap;
} up;

static int up_fail(up *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int up_fail(up *u, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(ERR_INPUT, "%s: pickle opcode 0x%02x at byte %zu: %s", u->what, u->op, u->op_at, msg);
}

static int up_need(up *u, size_t k) {
    if ((size_t)(u->end - u->p) < k) return up_fail(u, "%s", "runs past the end of data.pkl");
    return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*arr, c * elem);
    ERR_IF(!q, ERR_NOMEM, "out of memory while unpickling");
    *arr = q;
    *cap = c;
    return 0;
}

static pv *pv_new(up *u, pv_kind k) {
    pv *v = wio_arena_alloc(u->a, sizeof *v);
    if (v) v->kind = k;
    return v;
}

static int push(up *u, pv *v) {
    ERR_IF(!v, ERR_NOMEM, "out of memory while unpickling");
    ERR_TRY(grow((void **)&u->stack, &u->scap, u->sn + 1, sizeof *u->stack));
    u->stack[u->sn++] = v;
    return 0;
}

static int pop(up *u, pv **v) {
    size_t floor = u->mn ? u->marks[u->mn - 1] : 0;
    if (u->sn <= floor) return up_fail(u, "%s", "pops an empty stack");
    *v = u->stack[--u->sn];
    return 0;
}

static int top(up *u, pv **v) {
    size_t floor = u->mn ? u->marks[u->mn - 1] : 0;
    if (u->sn <= floor) return up_fail(u, "%s", "reads an empty stack");
    *v = u->stack[u->sn - 1];
    return 0;
}

// Pops the items above the last MARK (and the mark): *first is their index in the stack.
static int pop_mark(up *u, size_t *first) {
    if (!u->mn) return up_fail(u, "%s", "needs a MARK and there is none");
    *first = u->marks[--u->mn];
    return 0;
}

// Appends v to container c (LIST, TUPLE, or DICT as key/value pairs: two calls).
static int pv_append(up *u, pv *c, pv *v) {
    if (c->n >= c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 8;
        pv **items = wio_arena_alloc(u->a, sizeof(pv *) * (size_t)cap);
        ERR_IF(!items, ERR_NOMEM, "out of memory while unpickling");
        if (c->n) memcpy(items, c->items, sizeof(pv *) * (size_t)c->n);
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n++] = v;
    return 0;
}

static int pv_tuple(up *u, size_t first) {
    pv *t = pv_new(u, PV_TUPLE);
    ERR_IF(!t, ERR_NOMEM, "out of memory while unpickling");
    for (size_t i = first; i < u->sn; i++) ERR_TRY(pv_append(u, t, u->stack[i]));
    u->sn = first;
    return push(u, t);
}

static int set_items(up *u, pv *d, pv **kv, size_t n) {
    if (d->kind != PV_DICT) return up_fail(u, "%s", "SETITEM(S) on something that is not a dict");
    if (n % 2) return up_fail(u, "%s", "SETITEMS with an odd number of items");
    for (size_t i = 0; i < n; i++) ERR_TRY(pv_append(u, d, kv[i]));
    return 0;
}

static int append_items(up *u, pv *l, pv **v, size_t n) {
    if (l->kind != PV_LIST) return up_fail(u, "%s", "APPEND(S) on something that is not a list");
    for (size_t i = 0; i < n; i++) ERR_TRY(pv_append(u, l, v[i]));
    return 0;
}

static int str_value(up *u, size_t len) {
    ERR_TRY(up_need(u, len));
    pv *s = pv_new(u, PV_STR);
    ERR_IF(!s, ERR_NOMEM, "out of memory while unpickling");
    s->s = wio_arena_alloc(u->a, len + 1);
    ERR_IF(!s->s, ERR_NOMEM, "out of memory while unpickling");
    memcpy(s->s, u->p, len);
    s->n = (int64_t)len;
    u->p += len;
    return push(u, s);
}

static int memo_put(up *u, size_t idx) {
    pv *v = NULL;
    ERR_TRY(top(u, &v));
    if (idx > u->memn) return up_fail(u, "%s", "memo index out of order");
    if (idx == u->memn) {
        ERR_TRY(grow((void **)&u->memo, &u->memcap, u->memn + 1, sizeof *u->memo));
        u->memn++;
    }
    u->memo[idx] = v;
    return 0;
}

static int memo_get(up *u, size_t idx) {
    if (idx >= u->memn) return up_fail(u, "%s", "memo index never stored");
    return push(u, u->memo[idx]);
}

static const struct {
    const char *module, *name;
    pv_global gid;
    wio_dtype dtype;
} up_globals[] = {
    {"collections", "OrderedDict", PG_ORDERED_DICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", PG_REBUILD_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_parameter", PG_REBUILD_PARAMETER, 0},
    {"torch", "FloatStorage", PG_STORAGE, WIO_F32},
    {"torch", "HalfStorage", PG_STORAGE, WIO_F16},
    {"torch", "BFloat16Storage", PG_STORAGE, WIO_BF16},
    {"torch", "DoubleStorage", PG_STORAGE, WIO_F64},
    {"torch", "LongStorage", PG_STORAGE, WIO_I64},
    {"torch", "IntStorage", PG_STORAGE, WIO_I32},
    {"torch", "ByteStorage", PG_STORAGE, WIO_U8},
    {"torch", "BoolStorage", PG_STORAGE, WIO_BOOL},
};

static int global(up *u, const char *module, size_t ml, const char *name, size_t nl) {
    for (size_t i = 0; i < sizeof up_globals / sizeof up_globals[0]; i++) {
        if (strlen(up_globals[i].module) == ml && memcmp(up_globals[i].module, module, ml) == 0 &&
            strlen(up_globals[i].name) == nl && memcmp(up_globals[i].name, name, nl) == 0) {
            pv *g = pv_new(u, PV_GLOBAL);
            ERR_IF(!g, ERR_NOMEM, "out of memory while unpickling");
            g->gid = up_globals[i].gid;
            g->dtype = up_globals[i].dtype;
            return push(u, g);
        }
    }
    char full[160];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml > 70 ? 70 : ml), module, (int)(nl > 70 ? 70 : nl), name);
    for (char *c = full; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
    return up_fail(u, "global %s is not allowed (only the tensors and dicts of torch.save are read)", full);
}

// BINPERSID: ('storage', <StorageType>, key, location, numel)
static int persid(up *u) {
    pv *pid = NULL;
    ERR_TRY(pop(u, &pid));
    if (pid->kind != PV_TUPLE || pid->n != 5 || pid->items[0]->kind != PV_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->kind != PV_GLOBAL || pid->items[1]->gid != PG_STORAGE || pid->items[2]->kind != PV_STR ||
        pid->items[4]->kind != PV_INT || pid->items[4]->i < 0)
        return up_fail(u, "%s", "persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
    pv *s = pv_new(u, PV_STORAGE);
    ERR_IF(!s, ERR_NOMEM, "out of memory while unpickling");
    s->dtype = pid->items[1]->dtype;
    s->s = pid->items[2]->s;
    s->i = pid->items[4]->i;
    return push(u, s);
}

static int int_list(up *u, const pv *t, int64_t *out, int *rank, const char *what) {
    if (t->kind != PV_TUPLE || t->n > WIO_MAX_RANK) return up_fail(u, "tensor %s is not a tuple of at most 8 ints", what);
    for (int64_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PV_INT) return up_fail(u, "tensor %s holds something other than an int", what);
        out[i] = t->items[i]->i;
    }
    *rank = (int)t->n;
    return 0;
}

static int reduce(up *u) {
    pv *args = NULL, *fn = NULL;
    ERR_TRY(pop(u, &args));
    ERR_TRY(pop(u, &fn));
    if (fn->kind != PV_GLOBAL || fn->gid == PG_STORAGE) return up_fail(u, "%s", "REDUCE of something not callable here");
    if (args->kind != PV_TUPLE) return up_fail(u, "%s", "REDUCE arguments are not a tuple");
    if (fn->gid == PG_ORDERED_DICT) {
        if (args->n != 0) return up_fail(u, "%s", "OrderedDict with arguments");
        return push(u, pv_new(u, PV_DICT));
    }
    if (fn->gid == PG_REBUILD_PARAMETER) {
        if (args->n < 1 || args->items[0]->kind != PV_TENSOR)
            return up_fail(u, "%s", "_rebuild_parameter without a tensor");
        return push(u, args->items[0]);
    }
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->n < 6 || args->n > 7 || args->items[0]->kind != PV_STORAGE || args->items[1]->kind != PV_INT)
        return up_fail(u, "%s", "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
    pv *t = pv_new(u, PV_TENSOR);
    ERR_IF(!t, ERR_NOMEM, "out of memory while unpickling");
    t->storage = args->items[0];
    t->i = args->items[1]->i;
    int r2 = 0;
    ERR_TRY(int_list(u, args->items[2], t->size, &t->rank, "size"));
    ERR_TRY(int_list(u, args->items[3], t->stride, &r2, "stride"));
    if (r2 != t->rank) return up_fail(u, "%s", "tensor size and stride differ in length");
    return push(u, t);
}

static int build(up *u) {
    pv *state = NULL, *obj = NULL;
    ERR_TRY(pop(u, &state));
    ERR_TRY(top(u, &obj));
    // OrderedDict state (state_dict's _metadata attribute): dropped
    if (obj->kind == PV_DICT && (state->kind == PV_DICT || state->kind == PV_NONE)) return 0;
    return up_fail(u, "%s", "BUILD of something other than a dict's attributes");
}

static int64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

static int step(up *u, int *done) {
    u->op_at = (size_t)(u->p - u->start);
    u->op = *u->p++;
    size_t first = 0;
    pv *v = NULL, *w = NULL;
    switch (u->op) {
    case 0x80: // PROTO
        ERR_TRY(up_need(u, 1));
        if (*u->p < 2 || *u->p > 5) return up_fail(u, "%s", "unsupported pickle protocol");
        u->p++;
        return 0;
    case 0x95: // FRAME
        ERR_TRY(up_need(u, 8));
        u->p += 8;
        return 0;
    case '}': return push(u, pv_new(u, PV_DICT));
    case ']': return push(u, pv_new(u, PV_LIST));
    case ')': return push(u, pv_new(u, PV_TUPLE));
    case '(':
        ERR_TRY(grow((void **)&u->marks, &u->mcap, u->mn + 1, sizeof *u->marks));
        u->marks[u->mn++] = u->sn;
        return 0;
    case 'N': return push(u, pv_new(u, PV_NONE));
    case 0x88: case 0x89:
        ERR_TRY(push(u, pv_new(u, PV_BOOL)));
        u->stack[u->sn - 1]->i = u->op == 0x88;
        return 0;
    case 'J': case 'K': case 'M': {
        int k = u->op == 'J' ? 4 : u->op == 'K' ? 1 : 2;
        ERR_TRY(up_need(u, (size_t)k));
        int64_t x = rd_le(u->p, k);
        if (k == 4) x = (int32_t)(uint32_t)x;
        u->p += k;
        ERR_TRY(push(u, pv_new(u, PV_INT)));
        u->stack[u->sn - 1]->i = x;
        return 0;
    }
    case 0x8a: { // LONG1
        ERR_TRY(up_need(u, 1));
        int k = *u->p++;
        if (k > 8) return up_fail(u, "%s", "integer wider than 64 bits");
        ERR_TRY(up_need(u, (size_t)k));
        int64_t x = k ? rd_le(u->p, k) : 0;
        if (k && k < 8 && (u->p[k - 1] & 0x80)) x -= (int64_t)1 << (8 * k); // sign
        u->p += k;
        ERR_TRY(push(u, pv_new(u, PV_INT)));
        u->stack[u->sn - 1]->i = x;
        return 0;
    }
    case 'G': { // BINFLOAT, big-endian
        ERR_TRY(up_need(u, 8));
        uint64_t b = 0;
        for (int i = 0; i < 8; i++) b = b << 8 | u->p[i];
        u->p += 8;
        double d;
        memcpy(&d, &b, 8);
        ERR_TRY(push(u, pv_new(u, PV_FLOAT)));
        u->stack[u->sn - 1]->f = d;
        return 0;
    }
    case 'X': case 0x8c: case 0x8d: { // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        int k = u->op == 'X' ? 4 : u->op == 0x8c ? 1 : 8;
        ERR_TRY(up_need(u, (size_t)k));
        uint64_t len = (uint64_t)rd_le(u->p, k);
        u->p += k;
        if (len > (uint64_t)(u->end - u->p)) return up_fail(u, "%s", "string runs past the end of data.pkl");
        return str_value(u, (size_t)len);
    }
    case 'q': case 'r': case 'h': case 'j': {
        int k = (u->op == 'q' || u->op == 'h') ? 1 : 4;
        ERR_TRY(up_need(u, (size_t)k));
        size_t idx = (size_t)(uint64_t)rd_le(u->p, k);
        u->p += k;
        return (u->op == 'q' || u->op == 'r') ? memo_put(u, idx) : memo_get(u, idx);
    }
    case 0x94: return memo_put(u, u->memn); // MEMOIZE
    case 'c': { // GLOBAL module\nname\n
        const uint8_t *m = u->p, *nl1 = memchr(m, '\n', (size_t)(u->end - m));
        if (!nl1) return up_fail(u, "%s", "GLOBAL without its newline");
        const uint8_t *nm = nl1 + 1, *nl2 = memchr(nm, '\n', (size_t)(u->end - nm));
        if (!nl2) return up_fail(u, "%s", "GLOBAL without its second newline");
        u->p = nl2 + 1;
        return global(u, (const char *)m, (size_t)(nl1 - m), (const char *)nm, (size_t)(nl2 - nm));
    }
    case 0x93: // STACK_GLOBAL
        ERR_TRY(pop(u, &w));
        ERR_TRY(pop(u, &v));
        if (v->kind != PV_STR || w->kind != PV_STR) return up_fail(u, "%s", "STACK_GLOBAL of non-strings");
        return global(u, v->s, (size_t)v->n, w->s, (size_t)w->n);
    case 't':
        ERR_TRY(pop_mark(u, &first));
        return pv_tuple(u, first);
    case 0x85: case 0x86: case 0x87: {
        size_t k = (size_t)(u->op - 0x84), floor = u->mn ? u->marks[u->mn - 1] : 0;
        if (u->sn < floor + k) return up_fail(u, "%s", "TUPLEn with too few items on the stack");
        return pv_tuple(u, u->sn - k);
    }
    case 'Q': return persid(u);
    case 'R': return reduce(u);
    case 'b': return build(u);
    case 's':
        ERR_TRY(pop(u, &w));
        ERR_TRY(pop(u, &v));
        {
            pv *kv[2] = {v, w}, *d = NULL;
            ERR_TRY(top(u, &d));
            return set_items(u, d, kv, 2);
        }
    case 'u': case 'e':
        ERR_TRY(pop_mark(u, &first));
        if (first == 0 || (u->mn && u->marks[u->mn - 1] >= first))
            return up_fail(u, "%s", "no container below the MARK");
        v = u->stack[first - 1];
        ERR_TRY(u->op == 'u' ? set_items(u, v, u->stack + first, u->sn - first)
                             : append_items(u, v, u->stack + first, u->sn - first));
        u->sn = first;
        return 0;
    case 'a':
        ERR_TRY(pop(u, &w));
        ERR_TRY(top(u, &v));
        return append_items(u, v, &w, 1);
    case '.':
        *done = 1;
        return 0;
    default: return up_fail(u, "%s", "opcode not supported (not one torch.save writes for tensors and state dicts)");
    }
}

int wio_unpickle(wio_arena *a, const uint8_t *p, size_t n, const char *what, pv **out) {
    up u;
    memset(&u, 0, sizeof u);
    u.a = a;
    u.p = u.start = p;
    u.end = p + n;
    u.what = what;
    int done = 0, rc = 0;
    while (!done) {
        if (u.p >= u.end) {
            rc = err_set(ERR_INPUT, "%s: data.pkl ends without STOP", what);
            break;
        }
        rc = step(&u, &done);
        if (rc < 0) break;
    }
    if (rc >= 0 && (u.sn != 1 || u.mn != 0))
        rc = err_set(ERR_INPUT, "%s: data.pkl leaves %zu values and %zu marks at STOP (expected one value)", what, u.sn,
                     u.mn);
    if (rc >= 0) *out = u.stack[0];
    free(u.stack);
    free(u.marks);
    free(u.memo);
    return rc;
}
