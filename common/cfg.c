// cfg: config tree nodes, access by dotted path, canonical text and its hash (see cfg.h).
// Parsing lives in cfg_yaml.c, schema overlay and --set in cfg_overlay.c.
#include "common/cfg.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg_priv.h"
#include "common/err.h"
#include "common/hash.h"

static const char *const cfg_type_names[] = {
#define CFG_TYPE_NAME(name, text) text,
    CFG_TYPE_LIST(CFG_TYPE_NAME)
#undef CFG_TYPE_NAME
};
_Static_assert(sizeof cfg_type_names / sizeof cfg_type_names[0] == CFG_TYPE_COUNT, "cfg type names");

const char *cfg_type_name(cfg_type t) {
    return (unsigned)t < CFG_TYPE_COUNT ? cfg_type_names[t] : "unknown";
}

static const char *full_key(const cfg *node, const char *path, char *buf, size_t cap);

// --- nodes ---------------------------------------------------------------------------------

cfg *cfg_node_new(cfg_type type, const char *origin) {
    cfg *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->type = type;
    if (origin && !(n->origin = strdup(origin))) {
        free(n);
        return NULL;
    }
    return n;
}

void cfg_node_free(cfg *node) {
    if (!node) return;
    for (size_t i = 0; i < node->len; i++) cfg_node_free(node->items[i]);
    free(node->items);
    free(node->key);
    free(node->origin);
    free(node->s);
    free(node);
}

void cfg_free(cfg *root) { cfg_node_free(root); }

int cfg_node_append(cfg *node, cfg *child, const char *key) {
    if (node->len == node->cap) {
        size_t cap = node->cap ? node->cap * 2 : 8;
        cfg **items = realloc(node->items, cap * sizeof *items);
        if (!items) return err_set(ERR_NOMEM, "config: out of memory");
        node->items = items;
        node->cap = cap;
    }
    if (key) {
        char *k = strdup(key);
        if (!k) return err_set(ERR_NOMEM, "config: out of memory");
        free(child->key);
        child->key = k;
    }
    child->parent = node;
    node->items[node->len++] = child;
    return 0;
}

cfg *cfg_map_lookup_n(const cfg *map, const char *key, size_t n) {
    if (!map || map->type != CFG_MAP) return NULL;
    for (size_t i = 0; i < map->len; i++) {
        const char *k = map->items[i]->key;
        if (k && strlen(k) == n && memcmp(k, key, n) == 0) return map->items[i];
    }
    return NULL;
}

int cfg_node_set_origin(cfg *node, const char *origin) {
    char *o = origin ? strdup(origin) : NULL;
    if (origin && !o) return err_set(ERR_NOMEM, "config: out of memory");
    free(node->origin);
    node->origin = o;
    return 0;
}

cfg *cfg_node_clone(const cfg *node, cfg *parent, const char *key) {
    cfg *n = cfg_node_new(node->type, node->origin);
    if (!n) return NULL;
    n->null = node->null;
    n->open = node->open;
    n->i = node->i;
    n->f = node->f;
    n->b = node->b;
    n->parent = parent;
    if ((key && !(n->key = strdup(key))) || (node->s && !(n->s = strdup(node->s)))) goto fail;
    for (size_t i = 0; i < node->len; i++) {
        cfg *c = cfg_node_clone(node->items[i], n, node->items[i]->key);
        if (!c) goto fail;
        if (cfg_node_append(n, c, NULL) < 0) {
            cfg_node_free(c);
            goto fail;
        }
    }
    return n;
fail:
    cfg_node_free(n);
    return NULL;
}

int cfg_clone(cfg **out, const cfg *node) {
    *out = cfg_node_clone(node, NULL, NULL);
    return *out ? 0 : err_set(ERR_NOMEM, "config: out of memory");
}

int cfg_remove(cfg *node, const char *path) {
    char key[600];
    cfg *n = (cfg *)cfg_find(node, path);
    ERR_IF(!n || !n->parent || !path || !*path, ERR_CONFIG, "config key '%s' not found",
           full_key(node, path, key, sizeof key));
    cfg *p = n->parent;
    size_t i = 0;
    while (p->items[i] != n) i++;
    memmove(p->items + i, p->items + i + 1, (p->len - i - 1) * sizeof *p->items);
    p->len--;
    cfg_node_free(n);
    return 0;
}

bool cfg_key_valid(const char *key, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

// --- inspection ----------------------------------------------------------------------------

cfg_type cfg_node_type(const cfg *node) { return node->type; }
size_t cfg_node_len(const cfg *node) { return node->type == CFG_MAP || node->type == CFG_LIST ? node->len : 0; }
const char *cfg_node_key(const cfg *node, size_t i) {
    return node->type == CFG_MAP && i < node->len ? node->items[i]->key : NULL;
}
const cfg *cfg_node_at(const cfg *node, size_t i) {
    return (node->type == CFG_MAP || node->type == CFG_LIST) && i < node->len ? node->items[i] : NULL;
}
const char *cfg_node_origin(const cfg *node) { return node->origin ? node->origin : "(built in)"; }

// Appends the path of `node` to buf at *len (recursively from the root).
static void path_append(const cfg *node, char *buf, size_t cap, size_t *len) {
    if (!node->parent) return;
    path_append(node->parent, buf, cap, len);
    char part[300];
    if (node->key) {
        snprintf(part, sizeof part, "%s%s", *len ? "." : "", node->key);
    } else {
        size_t idx = 0;
        while (idx < node->parent->len && node->parent->items[idx] != node) idx++;
        snprintf(part, sizeof part, "[%zu]", idx);
    }
    size_t pl = strlen(part);
    if (*len + pl >= cap) pl = cap - 1 - *len;
    memcpy(buf + *len, part, pl);
    *len += pl;
    buf[*len] = 0;
}

const char *cfg_node_path(const cfg *node, char *buf, size_t cap) {
    if (!cap) return buf;
    size_t len = 0;
    buf[0] = 0;
    path_append(node, buf, cap, &len);
    return buf;
}

char *cfg_node_path_dup(const cfg *node) {
    char buf[1024];
    return strdup(cfg_node_path(node, buf, sizeof buf));
}

const char *cfg_map_keys_text(const cfg *map, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < map->len && len + 1 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", map->items[i]->key);
        if (w < 0) break;
        len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
    }
    if (!map->len) snprintf(buf, cap, "(none)");
    return buf;
}

// --- access by dotted path -----------------------------------------------------------------

const cfg *cfg_find(const cfg *node, const char *path) {
    if (!node) return NULL;
    if (!path) return node;
    const char *p = path;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        node = cfg_map_lookup_n(node, p, n);
        if (!node) return NULL;
        p += n;
        if (*p == '.') p++;
    }
    return node;
}

// Full key for messages: node's path joined with `path`.
static const char *full_key(const cfg *node, const char *path, char *buf, size_t cap) {
    char base[512];
    cfg_node_path(node, base, sizeof base);
    snprintf(buf, cap, "%s%s%s", base, base[0] && path && path[0] ? "." : "", path ? path : "");
    return buf;
}

// Finds the node of `path` and checks its type (CFG_FLOAT also admits CFG_INT).
static int get_typed(const cfg *node, const char *path, cfg_type want, const cfg **out) {
    char key[600];
    const cfg *n = cfg_find(node, path);
    if (!n) return err_set(ERR_CONFIG, "config key '%s' not found", full_key(node, path, key, sizeof key));
    if (n->null)
        return err_set(ERR_CONFIG, "config key '%s' (from %s) has no value", full_key(node, path, key, sizeof key),
                       cfg_node_origin(n));
    if (n->type != want && !(want == CFG_FLOAT && n->type == CFG_INT))
        return err_set(ERR_CONFIG, "config key '%s' (from %s) is a %s, expected a%s %s",
                       full_key(node, path, key, sizeof key), cfg_node_origin(n), cfg_type_name(n->type),
                       want == CFG_INT ? "n" : "", cfg_type_name(want));
    *out = n;
    return 0;
}

int cfg_subtree(const cfg *node, const char *path, const cfg **out) {
    return get_typed(node, path, CFG_MAP, out);
}

int cfg_get_i64(const cfg *node, const char *path, int64_t *out) {
    const cfg *n = NULL;
    ERR_TRY(get_typed(node, path, CFG_INT, &n));
    *out = n->i;
    return 0;
}

int cfg_get_int(const cfg *node, const char *path, int *out) {
    const cfg *n = NULL;
    char key[600];
    ERR_TRY(get_typed(node, path, CFG_INT, &n));
    ERR_IF(n->i < INT_MIN || n->i > INT_MAX, ERR_CONFIG, "config key '%s' (from %s): %lld does not fit an int",
           full_key(node, path, key, sizeof key), cfg_node_origin(n), (long long)n->i);
    *out = (int)n->i;
    return 0;
}

int cfg_get_float(const cfg *node, const char *path, double *out) {
    const cfg *n = NULL;
    ERR_TRY(get_typed(node, path, CFG_FLOAT, &n));
    *out = n->type == CFG_INT ? (double)n->i : n->f;
    return 0;
}

int cfg_get_bool(const cfg *node, const char *path, bool *out) {
    const cfg *n = NULL;
    ERR_TRY(get_typed(node, path, CFG_BOOL, &n));
    *out = n->b;
    return 0;
}

int cfg_get_str(const cfg *node, const char *path, const char **out) {
    const cfg *n = NULL;
    ERR_TRY(get_typed(node, path, CFG_STR, &n));
    *out = n->s;
    return 0;
}

int cfg_get_enum(const cfg *node, const char *path, const char *const *names, int n, int *out) {
    const char *s;
    ERR_TRY(cfg_get_str(node, path, &s));
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char key[600], list[600];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < n && len + 1 < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        len += (size_t)w < sizeof list - len ? (size_t)w : sizeof list - len - 1;
    }
    return err_set(ERR_CONFIG, "config key '%s' (from %s): '%s' is not one of: %s", full_key(node, path, key, sizeof key),
                   cfg_node_origin(cfg_find(node, path)), s, list);
}

// Shared part of the list getters: element type check and capacity.
static int get_list(const cfg *node, const char *path, cfg_type elem, size_t cap, bool want_out, size_t *n,
                    const cfg **list) {
    char key[600];
    ERR_TRY(get_typed(node, path, CFG_LIST, list));
    for (size_t i = 0; i < (*list)->len; i++) {
        cfg_type t = (*list)->items[i]->type;
        if (t != elem && !(elem == CFG_FLOAT && t == CFG_INT))
            return err_set(ERR_CONFIG, "config key '%s' (from %s): element %zu is a %s, expected a%s %s",
                           full_key(node, path, key, sizeof key), cfg_node_origin(*list), i, cfg_type_name(t),
                           elem == CFG_INT ? "n" : "", cfg_type_name(elem));
    }
    *n = (*list)->len;
    ERR_IF(want_out && (*list)->len > cap, ERR_CONFIG, "config key '%s' (from %s): %zu elements, at most %zu allowed",
           full_key(node, path, key, sizeof key), cfg_node_origin(*list), (*list)->len, cap);
    return 0;
}

int cfg_get_int_list(const cfg *node, const char *path, int *out, size_t cap, size_t *n) {
    const cfg *list = NULL;
    char key[600];
    ERR_TRY(get_list(node, path, CFG_INT, cap, out != NULL, n, &list));
    for (size_t i = 0; out && i < list->len; i++) {
        int64_t v = list->items[i]->i;
        ERR_IF(v < INT_MIN || v > INT_MAX, ERR_CONFIG, "config key '%s' (from %s): element %zu does not fit an int",
               full_key(node, path, key, sizeof key), cfg_node_origin(list), i);
        out[i] = (int)v;
    }
    return 0;
}

int cfg_get_float_list(const cfg *node, const char *path, double *out, size_t cap, size_t *n) {
    const cfg *list = NULL;
    ERR_TRY(get_list(node, path, CFG_FLOAT, cap, out != NULL, n, &list));
    for (size_t i = 0; out && i < list->len; i++) {
        const cfg *e = list->items[i];
        out[i] = e->type == CFG_INT ? (double)e->i : e->f;
    }
    return 0;
}

// --- canonical text ------------------------------------------------------------------------

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

// Shortest %.Ng (N = 1..17) that reads back to the same bits, with ".0" added to integral forms.
static void sb_float(sbuf *b, double v) {
    char t[40];
    if (isnan(v)) {
        sb_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_str(b, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        double back = strtod(t, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) break;
    }
    if (!strpbrk(t, ".e")) strcat(t, ".0");
    sb_str(b, t);
}

static int cmp_keys(const void *a, const void *b) {
    const cfg *x = *(const cfg *const *)a, *y = *(const cfg *const *)b;
    return strcmp(x->key, y->key);
}

static int canon(sbuf *b, const cfg *n) {
    char t[32];
    if (n->null) {
        sb_str(b, "null");
        return 0;
    }
    switch (n->type) {
    case CFG_MAP: {
        const cfg **sorted = n->len ? malloc(n->len * sizeof *sorted) : NULL;
        if (n->len && !sorted) return err_set(ERR_NOMEM, "config: out of memory");
        for (size_t i = 0; i < n->len; i++) sorted[i] = n->items[i];
        if (n->len) qsort(sorted, n->len, sizeof *sorted, cmp_keys);
        sb_put(b, "{", 1);
        for (size_t i = 0; i < n->len; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_string(b, sorted[i]->key);
            sb_put(b, ":", 1);
            int rc = canon(b, sorted[i]);
            if (rc < 0) {
                free(sorted);
                return rc;
            }
        }
        sb_put(b, "}", 1);
        free(sorted);
        return 0;
    }
    case CFG_LIST:
        sb_put(b, "[", 1);
        for (size_t i = 0; i < n->len; i++) {
            if (i) sb_put(b, ",", 1);
            ERR_TRY(canon(b, n->items[i]));
        }
        sb_put(b, "]", 1);
        return 0;
    case CFG_STR: sb_json_string(b, n->s ? n->s : ""); return 0;
    case CFG_INT:
        snprintf(t, sizeof t, "%lld", (long long)n->i);
        sb_str(b, t);
        return 0;
    case CFG_FLOAT: sb_float(b, n->f); return 0;
    case CFG_BOOL: sb_str(b, n->b ? "true" : "false"); return 0;
    default: return err_set(ERR_INTERNAL, "config: bad node type %d", (int)n->type);
    }
}

int cfg_canonical(const cfg *node, const char *path, char **text) {
    char key[600];
    *text = NULL;
    const cfg *n = cfg_find(node, path);
    ERR_IF(!n, ERR_CONFIG, "config key '%s' not found", full_key(node, path, key, sizeof key));
    sbuf b = {0};
    int rc = canon(&b, n);
    if (rc == 0 && (b.oom || !b.p)) {
        if (!b.oom) sb_str(&b, "");
        if (b.oom) rc = err_set(ERR_NOMEM, "config: out of memory writing '%s'", full_key(node, path, key, sizeof key));
    }
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *text = b.p;
    return 0;
}

int cfg_canonical_except(const cfg *node, const char *path, const char *const *drop, char **text) {
    char key[600];
    *text = NULL;
    const cfg *n = cfg_find(node, path);
    ERR_IF(!n, ERR_CONFIG, "config key '%s' not found", full_key(node, path, key, sizeof key));
    cfg *copy = NULL;
    ERR_TRY(cfg_clone(&copy, n));
    int rc = 0;
    for (int i = 0; drop && drop[i]; i++)
        if (copy->type == CFG_MAP && cfg_find(copy, drop[i])) ERR_GOTO(rc, cfg_remove(copy, drop[i]));
    rc = cfg_canonical(copy, "", text);
fail:
    cfg_free(copy);
    return rc;
}

int cfg_hash(const cfg *node, const char *path, char hex_out[33]) {
    char *text = NULL;
    ERR_TRY(cfg_canonical(node, path, &text));
    hash_text_hex(text, hex_out);
    free(text);
    return 0;
}
