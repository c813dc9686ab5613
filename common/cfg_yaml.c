// cfg_yaml: YAML text -> cfg tree with libyaml's event parser; types plain scalars by the YAML
// 1.2 core schema (see cfg.h) and records "file:line" origins.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/cfg_priv.h"
#include "common/err.h"
#include "common/infile.h"

typedef struct {
    yaml_parser_t parser;
    const char *name;     // file name for messages
    const char *origin;   // when set, every node's origin (a --set argument)
} yaml_in;

// --- scalar typing -------------------------------------------------------------------------

static bool is_digits(const char *s, const char *e, int base) {
    if (s >= e) return false;
    for (; s < e; s++) {
        int c = (unsigned char)*s;
        bool ok = base == 16 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
                  : base == 8 ? (c >= '0' && c <= '7')
                              : (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool one_of(const char *s, const char *const *words) {
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

// Float syntax of the core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
static bool is_float_text(const char *s) {
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    const char *m = p;
    while (*p >= '0' && *p <= '9') p++;
    size_t int_digits = (size_t)(p - m);
    size_t frac_digits = 0;
    if (*p == '.') {
        p++;
        const char *f = p;
        while (*p >= '0' && *p <= '9') p++;
        frac_digits = (size_t)(p - f);
    }
    if (int_digits == 0 && frac_digits == 0) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        const char *x = p;
        while (*p >= '0' && *p <= '9') p++;
        if (p == x) return false;
    }
    return *p == 0;
}

// Types a plain scalar into `n` (its text already in n->s). ERR_CONFIG for an integer that does
// not fit 64 bits.
static int type_plain(cfg *n, const char *where) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = n->s;
    size_t len = strlen(s);
    if (one_of(s, nulls)) {
        n->null = true;
        return 0;
    }
    if (one_of(s, trues) || one_of(s, falses)) {
        n->type = CFG_BOOL;
        n->b = s[0] == 't' || s[0] == 'T';
        return 0;
    }
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    int base = 0;
    if (is_digits(p, s + len, 10)) base = 10;
    else if (p == s && len > 2 && s[0] == '0' && s[1] == 'x' && is_digits(s + 2, s + len, 16)) base = 16;
    else if (p == s && len > 2 && s[0] == '0' && s[1] == 'o' && is_digits(s + 2, s + len, 8)) base = 8;
    if (base) {
        errno = 0;
        const char *digits = base == 10 ? s : s + 2;
        long long v;
        if (base == 10) {
            v = strtoll(digits, NULL, 10);
        } else {
            unsigned long long u = strtoull(digits, NULL, base);
            if (u > (unsigned long long)INT64_MAX) errno = ERANGE;
            v = (long long)u;
        }
        if (errno == ERANGE) return err_set(ERR_CONFIG, "%s: integer '%s' does not fit 64 bits", where, s);
        n->type = CFG_INT;
        n->i = v;
        return 0;
    }
    if (is_float_text(s)) {
        n->type = CFG_FLOAT;
        n->f = strtod(s, NULL);
        return 0;
    }
    if (one_of(s, infs) || one_of(s, ninfs) || one_of(s, nans)) {
        n->type = CFG_FLOAT;
        n->f = one_of(s, nans) ? (double)NAN : one_of(s, ninfs) ? -(double)INFINITY : (double)INFINITY;
        return 0;
    }
    return 0; // a string
}

// --- the event walk --------------------------------------------------------------------------

static int next_event(yaml_in *in, yaml_event_t *ev) {
    if (yaml_parser_parse(&in->parser, ev)) return 0;
    const yaml_parser_t *p = &in->parser;
    const char *problem = p->problem ? p->problem : "YAML error";
    if (p->context)
        return err_set(ERR_CONFIG, "%s:%zu:%zu: %s %s (line %zu)", in->name, p->problem_mark.line + 1,
                       p->problem_mark.column + 1, problem, p->context, p->context_mark.line + 1);
    return err_set(ERR_CONFIG, "%s:%zu:%zu: %s", in->name, p->problem_mark.line + 1,
                   p->problem_mark.column + 1, problem);
}

static cfg *new_at(yaml_in *in, cfg_type type, const yaml_event_t *ev) {
    if (in->origin) return cfg_node_new(type, in->origin);
    char where[1200];
    snprintf(where, sizeof where, "%s:%zu", in->name, ev->start_mark.line + 1);
    return cfg_node_new(type, where);
}

static int parse_node(yaml_in *in, yaml_event_t *ev, int depth, cfg **out);

static int parse_scalar(yaml_in *in, yaml_event_t *ev, cfg **out) {
    int rc = 0;
    char where[1200];
    snprintf(where, sizeof where, "%s:%zu:%zu", in->name, ev->start_mark.line + 1, ev->start_mark.column + 1);
    const char *tag = (const char *)ev->data.scalar.tag;
    bool force_str = false;
    if (tag) {
        if (strcmp(tag, "tag:yaml.org,2002:str") != 0 && strcmp(tag, "!!str") != 0)
            return err_set(ERR_CONFIG, "%s: unsupported tag '%s' (only !!str is allowed)", where, tag);
        force_str = true;
    }
    cfg *n = new_at(in, CFG_STR, ev);
    ERR_GOTO_IF(rc, !n, ERR_NOMEM, "%s: out of memory", where);
    n->s = malloc(ev->data.scalar.length + 1);
    ERR_GOTO_IF(rc, !n->s, ERR_NOMEM, "%s: out of memory", where);
    memcpy(n->s, ev->data.scalar.value, ev->data.scalar.length);
    n->s[ev->data.scalar.length] = 0;
    ERR_GOTO_IF(rc, strlen(n->s) != ev->data.scalar.length, ERR_CONFIG, "%s: NUL character in a scalar", where);
    if (!force_str && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) ERR_GOTO(rc, type_plain(n, where));
    *out = n;
    return 0;
fail:
    cfg_node_free(n);
    return rc;
}

// The key event `ev` of map n (deleted here) into key[256]: a plain scalar of letters, digits,
// '_' and '-' that n does not hold yet. ERR_CONFIG naming file, line and column.
static int parse_key(yaml_in *in, const cfg *n, yaml_event_t *ev, char *key) {
    size_t line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
    if (ev->type != YAML_SCALAR_EVENT) {
        yaml_event_delete(ev);
        return err_set(ERR_CONFIG, "%s:%zu:%zu: a key must be a plain word, not a list or map", in->name, line, col);
    }
    size_t klen = ev->data.scalar.length;
    bool ok = klen < 256 && cfg_key_valid((const char *)ev->data.scalar.value, klen);
    if (ok) {
        memcpy(key, ev->data.scalar.value, klen);
        key[klen] = 0;
    } else {
        snprintf(key, 256, "%.*s", (int)(klen < 80 ? klen : 80), (const char *)ev->data.scalar.value);
    }
    yaml_event_delete(ev);
    ERR_IF(!ok, ERR_CONFIG, "%s:%zu:%zu: bad key '%s' (keys are letters, digits, '_' and '-')", in->name, line, col,
           key);
    ERR_IF(cfg_map_lookup_n(n, key, klen), ERR_CONFIG, "%s:%zu:%zu: duplicate key '%s'", in->name, line, col, key);
    return 0;
}

// A list or map (type CFG_LIST / CFG_MAP) from its start event to its end event; in a map each
// child follows its key.
static int parse_collection(yaml_in *in, yaml_event_t *start, int depth, cfg_type type, cfg **out) {
    int rc = 0;
    yaml_event_t ev;
    yaml_event_type_t end = type == CFG_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    cfg *n = new_at(in, type, start);
    if (!n) return err_set(ERR_NOMEM, "%s: out of memory", in->name);
    for (;;) {
        ERR_GOTO(rc, next_event(in, &ev));
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        char key[256];
        if (type == CFG_MAP) {
            ERR_GOTO(rc, parse_key(in, n, &ev, key));
            ERR_GOTO(rc, next_event(in, &ev));
        }
        cfg *child = NULL;
        rc = parse_node(in, &ev, depth + 1, &child);
        yaml_event_delete(&ev);
        if (rc < 0) goto fail;
        if ((rc = cfg_node_append(n, child, type == CFG_MAP ? key : NULL)) < 0) {
            cfg_node_free(child);
            goto fail;
        }
    }
    if (n->len == 0) n->open = true;
    *out = n;
    return 0;
fail:
    cfg_node_free(n);
    return rc;
}

static int parse_node(yaml_in *in, yaml_event_t *ev, int depth, cfg **out) {
    size_t line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
    if (depth > CFG_MAX_DEPTH)
        return err_set(ERR_CONFIG, "%s:%zu:%zu: nested deeper than %d levels", in->name, line, col, CFG_MAX_DEPTH);
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return parse_scalar(in, ev, out);
    case YAML_SEQUENCE_START_EVENT: return parse_collection(in, ev, depth, CFG_LIST, out);
    case YAML_MAPPING_START_EVENT: return parse_collection(in, ev, depth, CFG_MAP, out);
    case YAML_ALIAS_EVENT:
        return err_set(ERR_CONFIG, "%s:%zu:%zu: aliases (*name) are not supported", in->name, line, col);
    default: return err_set(ERR_CONFIG, "%s:%zu:%zu: unexpected YAML event", in->name, line, col);
    }
}

// --- documents -----------------------------------------------------------------------------

// Parses one document; an empty stream gives *out = NULL.
static int parse_document(yaml_in *in, cfg **out) {
    int rc = 0;
    yaml_event_t ev;
    cfg *root = NULL;
    *out = NULL;
    ERR_TRY(next_event(in, &ev)); // stream start
    yaml_event_delete(&ev);
    ERR_TRY(next_event(in, &ev));
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); // document start
    ERR_TRY(next_event(in, &ev));
    rc = parse_node(in, &ev, 0, &root);
    yaml_event_delete(&ev);
    if (rc < 0) return rc;
    ERR_GOTO(rc, next_event(in, &ev)); // document end
    yaml_event_delete(&ev);
    ERR_GOTO(rc, next_event(in, &ev));
    bool more = ev.type != YAML_STREAM_END_EVENT;
    size_t line = ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    ERR_GOTO_IF(rc, more, ERR_CONFIG, "%s:%zu: a second YAML document ('---') is not allowed", in->name, line);
    *out = root;
    return 0;
fail:
    cfg_node_free(root);
    return rc;
}

int cfg_yaml_parse_any(cfg **out, const char *text, size_t len, const char *name, const char *origin_override) {
    yaml_in in = {.name = name, .origin = origin_override};
    *out = NULL;
    if (!yaml_parser_initialize(&in.parser)) return err_set(ERR_NOMEM, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&in.parser, (const unsigned char *)text, len);
    int rc = parse_document(&in, out);
    yaml_parser_delete(&in.parser);
    return rc;
}

int cfg_parse_text(cfg **out, const char *text, size_t len, const char *name) {
    cfg *root = NULL;
    *out = NULL;
    ERR_TRY(cfg_yaml_parse_any(&root, text, len, name, NULL));
    if (!root) {
        char where[1200];
        snprintf(where, sizeof where, "%s:1", name);
        root = cfg_node_new(CFG_MAP, where);
        if (!root) return err_set(ERR_NOMEM, "%s: out of memory", name);
        root->open = true;
    }
    if (root->type != CFG_MAP || root->null) {
        int rc = err_set(ERR_CONFIG, "%s: the top level must be a map of 'key: value' lines, found a %s",
                         name, root->null ? "null" : cfg_type_name(root->type));
        cfg_node_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

int cfg_parse_file(cfg **out, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    ERR_TRY(infile_read_all(path, CFG_MAX_FILE, "a YAML config", &buf, &len));
    int rc = cfg_parse_text(out, buf, len, path);
    free(buf);
    return rc;
}
