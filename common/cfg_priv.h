// cfg_priv: the node layout and helpers shared by cfg.c (tree, access, canonical text),
// cfg_yaml.c (libyaml parsing, scalar typing) and cfg_overlay.c (schema overlay, --set).
// Not a public header: only the cfg*.c files include it.
#ifndef DIFFOOD_CFG_PRIV_H
#define DIFFOOD_CFG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"

#define CFG_MAX_DEPTH 64 // nesting limit of parsed YAML
#define CFG_MAX_FILE ((size_t)4 << 20) // a YAML file is read up to 4 MiB (defaults.yml: ~10 KB)

struct cfg {
    cfg_type type;
    bool null;   // parsed null scalar (type CFG_STR, text ""): rejected by cfg_overlay
    bool open;   // parsed as empty: a map that accepts any keys, a list of any scalar type
    cfg *parent; // NULL for a root
    char *key;   // key in the parent map; NULL for roots and list elements
    char *origin; // "file:line" or "--set ARG"; owned
    int64_t i;   // CFG_INT
    double f;    // CFG_FLOAT
    bool b;      // CFG_BOOL
    char *s;     // CFG_STR value; for int/float/bool parsed from YAML, the plain scalar's text
    cfg **items; // CFG_MAP values (their ->key) and CFG_LIST elements, in order
    size_t len, cap;
};

// New node of `type` with a copy of `origin` (may be NULL). NULL on allocation failure.
cfg *cfg_node_new(cfg_type type, const char *origin);
// Frees a node and its children (does not unlink it from its parent).
void cfg_node_free(cfg *node);
// Appends `child` to a map (with a copy of `key`) or list `node`. ERR_NOMEM (child not taken).
int cfg_node_append(cfg *node, cfg *child, const char *key);
// Map entry `key` (exact, n bytes), or NULL.
cfg *cfg_map_lookup_n(const cfg *map, const char *key, size_t n);
// Replaces *slot's origin with a copy of origin. ERR_NOMEM.
int cfg_node_set_origin(cfg *node, const char *origin);
// Deep copy, attached to `parent` with `key` (not appended). NULL on allocation failure.
cfg *cfg_node_clone(const cfg *node, cfg *parent, const char *key);
// The node's full dotted path from the root into a malloc'd string (NULL on ENOMEM).
char *cfg_node_path_dup(const cfg *node);
// Comma-separated keys of a map into buf ("(none)" when empty). Returns buf.
const char *cfg_map_keys_text(const cfg *map, char *buf, size_t cap);
// Whether a key is made of [A-Za-z0-9_-] and not empty.
bool cfg_key_valid(const char *key, size_t n);

// Parses YAML text whose top-level may be any node (a --set value). `name` for messages.
int cfg_yaml_parse_any(cfg **out, const char *text, size_t len, const char *name,
                       const char *origin_override);

#endif
