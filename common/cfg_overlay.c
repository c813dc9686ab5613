// cfg_overlay: layering a config onto the schema tree (defaults.yml) with type checks, the
// `--set key=value` assignments, and cfg_load_stack (rules in cfg.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg_priv.h"
#include "common/err.h"

// --- messages ------------------------------------------------------------------------------

// "the int 128" / "a list" / "no value": what a node holds, for messages.
static const char *describe(const cfg *n, char *buf, size_t cap) {
    if (n->null) snprintf(buf, cap, "no value");
    else if (n->type == CFG_MAP) snprintf(buf, cap, "a map");
    else if (n->type == CFG_LIST) snprintf(buf, cap, "a list");
    else if (n->type == CFG_INT && !n->s) snprintf(buf, cap, "the int %lld", (long long)n->i);
    else if (n->type == CFG_FLOAT && !n->s) snprintf(buf, cap, "the float %.17g", n->f);
    else if (n->type == CFG_BOOL && !n->s) snprintf(buf, cap, "the bool %s", n->b ? "true" : "false");
    else snprintf(buf, cap, "the %s '%.80s'", cfg_type_name(n->type), n->s ? n->s : "");
    return buf;
}

static const char *article(cfg_type t) { return t == CFG_INT ? "an" : "a"; }

// "ORIGIN: key 'K' must be a T (default from D), got X".
static int type_error(const cfg *d, const cfg *s, const char *what) {
    char key[512], got[160];
    cfg_node_path(d, key, sizeof key);
    return err_set(ERR_CONFIG, "%s: key '%s' must be %s (like its value from %s), got %s", cfg_node_origin(s), key,
                   what, cfg_node_origin(d), describe(s, got, sizeof got));
}

static int unknown_key(const cfg *map, const char *key, const char *origin) {
    char base[512], keys[1500];
    cfg_node_path(map, base, sizeof base);
    cfg_map_keys_text(map, keys, sizeof keys);
    if (!base[0]) return err_set(ERR_CONFIG, "%s: unknown key '%s'; valid sections: %s", origin, key, keys);
    return err_set(ERR_CONFIG, "%s: unknown key '%s.%s'; valid keys of '%s': %s", origin, base, key, base, keys);
}

// Rejects nulls anywhere under `n` (for values added to open maps).
static int check_no_null(const cfg *n) {
    if (n->null) {
        char key[512];
        cfg_node_path(n, key, sizeof key);
        return err_set(ERR_CONFIG, "%s: key '%s' has no value", cfg_node_origin(n), key);
    }
    for (size_t i = 0; i < n->len; i++) ERR_TRY(check_no_null(n->items[i]));
    return 0;
}

// --- scalars and lists ---------------------------------------------------------------------

static bool is_scalar(cfg_type t) { return t == CFG_STR || t == CFG_INT || t == CFG_FLOAT || t == CFG_BOOL; }

// Whether a scalar `s` may be stored where a `want` is expected.
static bool fits(cfg_type want, const cfg *s) {
    if (!is_scalar(s->type) || s->null) return false;
    switch (want) {
    case CFG_STR: return s->type == CFG_STR || s->s != NULL; // plain scalars keep their text
    case CFG_FLOAT: return s->type == CFG_FLOAT || s->type == CFG_INT;
    default: return s->type == want;
    }
}

// Stores scalar `s` into `d` as a `want` (fits() holds).
static int assign_scalar(cfg *d, cfg_type want, const cfg *s) {
    char *text = s->s ? strdup(s->s) : NULL;
    if (s->s && !text) return err_set(ERR_NOMEM, "config: out of memory");
    ERR_TRY(cfg_node_set_origin(d, s->origin));
    free(d->s);
    d->s = text;
    d->null = false;
    d->type = want;
    d->i = s->i;
    d->b = s->b;
    d->f = s->type == CFG_INT ? (double)s->i : s->f;
    return 0;
}

// The common element type of a list of scalars (ints and floats give float). ERR_CONFIG for
// nested lists/maps or mixed types; an empty list gives CFG_TYPE_COUNT ("any").
static int elem_type(const cfg *list, cfg_type *out) {
    cfg_type t = CFG_TYPE_COUNT;
    for (size_t i = 0; i < list->len; i++) {
        const cfg *e = list->items[i];
        char key[512];
        if (e->null || !is_scalar(e->type))
            return err_set(ERR_CONFIG, "%s: list '%s' may hold only numbers, strings or bools (element %zu)",
                           cfg_node_origin(e), cfg_node_path(list, key, sizeof key), i);
        if (t == CFG_TYPE_COUNT || t == e->type) t = e->type;
        else if ((t == CFG_INT && e->type == CFG_FLOAT) || (t == CFG_FLOAT && e->type == CFG_INT)) t = CFG_FLOAT;
        else
            return err_set(ERR_CONFIG, "%s: list '%s' mixes %s and %s elements", cfg_node_origin(e),
                           cfg_node_path(list, key, sizeof key), cfg_type_name(t), cfg_type_name(e->type));
    }
    *out = t;
    return 0;
}

static int overlay_list(cfg *d, const cfg *s) {
    int rc = 0;
    cfg_type want, have;
    ERR_TRY(elem_type(d, &want));
    ERR_TRY(elem_type(s, &have));
    if (d->open || want == CFG_TYPE_COUNT) want = have;
    cfg **items = s->len ? calloc(s->len, sizeof *items) : NULL;
    if (s->len && !items) return err_set(ERR_NOMEM, "config: out of memory");
    for (size_t i = 0; i < s->len; i++) {
        const cfg *e = s->items[i];
        if (!fits(want, e)) {
            char key[512], got[160];
            ERR_GOTO_IF(rc, 1, ERR_CONFIG, "%s: key '%s' must be a list of %ss (like its value from %s), element %zu is %s",
                        cfg_node_origin(s), cfg_node_path(d, key, sizeof key), cfg_type_name(want), cfg_node_origin(d),
                        i, describe(e, got, sizeof got));
        }
        items[i] = cfg_node_new(want, e->origin);
        ERR_GOTO_IF(rc, !items[i], ERR_NOMEM, "config: out of memory");
        items[i]->parent = d;
        ERR_GOTO(rc, assign_scalar(items[i], want, e));
    }
    ERR_GOTO(rc, cfg_node_set_origin(d, s->origin));
    for (size_t i = 0; i < d->len; i++) cfg_node_free(d->items[i]);
    free(d->items);
    d->items = items;
    d->len = d->cap = s->len;
    return 0;
fail:
    for (size_t i = 0; i < s->len; i++) cfg_node_free(items[i]);
    free(items);
    return rc;
}

// --- maps ----------------------------------------------------------------------------------

static int overlay_node(cfg *d, const cfg *s);

static int add_open(cfg *map, const cfg *s) {
    ERR_TRY(check_no_null(s));
    cfg *c = cfg_node_clone(s, map, NULL);
    if (!c) return err_set(ERR_NOMEM, "config: out of memory");
    int rc = cfg_node_append(map, c, s->key);
    if (rc < 0) cfg_node_free(c);
    return rc;
}

static int overlay_map(cfg *d, const cfg *s) {
    for (size_t i = 0; i < s->len; i++) {
        const cfg *sc = s->items[i];
        cfg *dc = cfg_map_lookup_n(d, sc->key, strlen(sc->key));
        if (!dc) {
            if (!d->open) return unknown_key(d, sc->key, cfg_node_origin(sc));
            ERR_TRY(add_open(d, sc));
            continue;
        }
        ERR_TRY(overlay_node(dc, sc));
    }
    return 0;
}

static int overlay_node(cfg *d, const cfg *s) {
    char what[64];
    if (d->null) { // an untyped slot: take the value as it is
        ERR_TRY(check_no_null(s));
        cfg *c = cfg_node_clone(s, d->parent, d->key);
        if (!c) return err_set(ERR_NOMEM, "config: out of memory");
        cfg tmp = *d;
        *d = *c;
        d->parent = tmp.parent;
        for (size_t i = 0; i < d->len; i++) d->items[i]->parent = d;
        *c = tmp;
        c->len = 0;
        cfg_node_free(c); // frees d's old fields
        return 0;
    }
    if (s->null) {
        char key[512];
        return err_set(ERR_CONFIG, "%s: key '%s' has no value (expected %s %s)", cfg_node_origin(s),
                       cfg_node_path(d, key, sizeof key), article(d->type), cfg_type_name(d->type));
    }
    switch (d->type) {
    case CFG_MAP:
        if (s->type != CFG_MAP || s->null) return type_error(d, s, "a map");
        return overlay_map(d, s);
    case CFG_LIST:
        if (s->type != CFG_LIST || s->null) return type_error(d, s, "a list");
        return overlay_list(d, s);
    default:
        if (!fits(d->type, s)) {
            snprintf(what, sizeof what, "%s %s", article(d->type), cfg_type_name(d->type));
            return type_error(d, s, what);
        }
        return assign_scalar(d, d->type, s);
    }
}

int cfg_overlay(cfg *dst, const cfg *src) { return overlay_node(dst, src); }

int cfg_overlay_file(cfg *dst, const char *path) {
    cfg *src = NULL;
    ERR_TRY(cfg_parse_file(&src, path));
    int rc = cfg_overlay(dst, src);
    cfg_free(src);
    return rc;
}

// --- --set ---------------------------------------------------------------------------------

int cfg_set(cfg *dst, const char *assignment) {
    int rc = 0;
    cfg *v = NULL;
    char origin[1100];
    snprintf(origin, sizeof origin, "--set %.1000s", assignment);
    const char *eq = strchr(assignment, '=');
    ERR_IF(!eq, ERR_CONFIG, "%s: expected KEY=VALUE (e.g. --set train_diffusion.lr=1e-4)", origin);
    const char *key = assignment;
    size_t klen = (size_t)(eq - key);
    ERR_IF(klen == 0, ERR_CONFIG, "%s: empty key before '='", origin);
    for (const char *p = key; p < eq;) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(eq - p);
        ERR_IF(!cfg_key_valid(p, n), ERR_CONFIG, "%s: bad key '%.*s' (dotted words of letters, digits, '_', '-')",
               origin, (int)klen, key);
        p += n + (dot ? 1 : 0);
        ERR_IF(dot && p == eq, ERR_CONFIG, "%s: key ends with '.'", origin);
    }
    const char *value = eq + 1;
    ERR_GOTO(rc, cfg_yaml_parse_any(&v, value, strlen(value), origin, origin));
    ERR_GOTO_IF(rc, !v || v->null, ERR_CONFIG, "%s: no value after '=' for key '%.*s'", origin, (int)klen, key);
    cfg *node = dst;
    for (const char *p = key; p < eq;) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(eq - p);
        cfg *child = cfg_map_lookup_n(node, p, n);
        if (!child) {
            char part[256];
            snprintf(part, sizeof part, "%.*s", (int)(n < 255 ? n : 255), p);
            if (node->type == CFG_MAP && node->open && !dot) {
                free(v->key);
                v->key = strdup(part);
                ERR_GOTO_IF(rc, !v->key, ERR_NOMEM, "config: out of memory");
                ERR_GOTO(rc, add_open(node, v));
                goto done;
            }
            if (node->type != CFG_MAP) {
                char base[512];
                ERR_GOTO_IF(rc, 1, ERR_CONFIG, "%s: key '%s' is a %s, not a section", origin,
                            cfg_node_path(node, base, sizeof base), cfg_type_name(node->type));
            }
            ERR_GOTO(rc, unknown_key(node, part, origin));
        }
        node = child;
        p += n + (dot ? 1 : 0);
    }
    ERR_GOTO(rc, overlay_node(node, v));
done:
fail:
    cfg_free(v);
    return rc;
}

// --- the stack -----------------------------------------------------------------------------

// The schema must give every key a value; lists hold scalars of one type.
static int check_schema(const cfg *n) {
    ERR_TRY(check_no_null(n));
    if (n->type == CFG_LIST) {
        cfg_type t;
        ERR_TRY(elem_type(n, &t));
    }
    for (size_t i = 0; i < n->len; i++) ERR_TRY(check_schema(n->items[i]));
    return 0;
}

int cfg_load_stack(cfg **out, const char *defaults_path, const char *user_path, const char *const *sets,
                   size_t nsets) {
    int rc = 0;
    cfg *root = NULL;
    *out = NULL;
    ERR_GOTO(rc, cfg_parse_file(&root, defaults_path));
    ERR_GOTO(rc, check_schema(root));
    if (user_path) ERR_GOTO(rc, cfg_overlay_file(root, user_path));
    for (size_t i = 0; i < nsets; i++) ERR_GOTO(rc, cfg_set(root, sets[i]));
    *out = root;
    return 0;
fail:
    cfg_free(root);
    return rc;
}
