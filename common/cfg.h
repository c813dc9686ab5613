// cfg: typed YAML configuration trees, validated against a schema, with dotted-path access and a
// canonical text form for hashing.
//
// A config is a tree of nodes: map, list, string, int, float, bool. Files are read with libyaml.
//
// THE SCHEMA is config/defaults.yml itself: it lists every valid key with its default value,
// and a default's type is the key's type (a list is typed by its elements). A stage builds its
// effective configuration in three layers, later ones winning:
//     defaults.yml  <  the user's file (--config FILE)  <  each `--set a.b=VALUE` in order
// (cfg_load_stack does all three; cli_load_config finds the files). Overlay rules:
//   * a key that the schema's map lacks is an ERR_CONFIG error naming the file and line, the
//     full key, and listing the valid keys of that section;
//   * a map overlays a map key by key; a scalar or a list REPLACES the old value;
//   * types must match the schema: an int is accepted (and stored as a float) where a float is
//     expected, but not the reverse; a string key accepts any plain scalar as its text
//     (`name: 2024` is the string "2024"); a bool key takes only true/false;
//   * list elements must all match the schema list's element type (ints widen to floats); an
//     EMPTY list in the schema accepts a list of any scalars of one type;
//   * an EMPTY map (`{}`) in the schema is open: it accepts any keys and values;
//   * null values (`~`, `key:` with nothing after it) are errors in user input.
// Plain YAML scalars are typed by the YAML 1.2 core schema: true/false (any case), decimal or
// 0x/0o integers, decimal floats with '.' or an exponent (1e-4 is a float), .inf/.nan; quoted
// scalars are always strings. Anchors/aliases, tags other than !!str and several documents in
// one file are rejected. Keys are [A-Za-z0-9_-]; '.' separates them in dotted paths.
//
// Errors: every function returns 0 or a negative err.h code after err_set(); messages name the
// file (and line:column for YAML input) or the --set argument, and the full dotted key.
//
// Ownership: a root tree from cfg_load_* / cfg_parse_* belongs to the caller (cfg_free). Nodes
// returned by cfg_find / cfg_subtree and strings returned by cfg_get_str are borrowed: valid
// until the root is freed or modified (cfg_overlay, cfg_set).
#ifndef DIFFOOD_CFG_H
#define DIFFOOD_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_TYPE_LIST(X) \
    X(CFG_MAP, "map")    \
    X(CFG_LIST, "list")  \
    X(CFG_STR, "string") \
    X(CFG_INT, "int")    \
    X(CFG_FLOAT, "float") \
    X(CFG_BOOL, "bool")

typedef enum {
#define CFG_TYPE_ENUM(name, text) name,
    CFG_TYPE_LIST(CFG_TYPE_ENUM)
#undef CFG_TYPE_ENUM
    CFG_TYPE_COUNT
} cfg_type;

// A node of a config tree (a root is a node too). Opaque.
typedef struct cfg cfg;

// Name of a type ("float"); never NULL.
const char *cfg_type_name(cfg_type t);

// --- reading YAML --------------------------------------------------------------------------

// Parses the YAML file `path` into a new tree (no schema check). The top level must be a map (an
// empty file gives an empty map). The file may be a pipe; it is read up to 4 MiB
// (common/infile.h). ERR_NOTFOUND when the file does not exist, ERR_INPUT for a directory or a
// file over 4 MiB, ERR_IO when it cannot be read; ERR_CONFIG for bad YAML ("FILE:LINE:COL: PROBLEM"), duplicate keys, aliases,
// tags, several documents, integers beyond 64 bits. Null values are kept (cfg_overlay rejects
// them).
// *out is owned by the caller (cfg_free).
int cfg_parse_file(cfg **out, const char *path);
// Same for YAML text of `len` bytes; `name` stands for the file name in messages.
int cfg_parse_text(cfg **out, const char *text, size_t len, const char *name);
// Releases a root tree and everything in it; NULL is a no-op. Never call on a borrowed node.
void cfg_free(cfg *root);
// Deep copy of `node` (any node) as a new root owned by the caller. ERR_NOMEM.
int cfg_clone(cfg **out, const cfg *node);
// Deletes the entry at `path` (relative to the map `node`) and everything under it: e.g. on a
// clone, drop keys that do not change a stage's output (batch sizes, log intervals) before
// cfg_hash. ERR_CONFIG when absent; borrowed pointers into the removed part become invalid.
int cfg_remove(cfg *node, const char *path);

// --- layering and validation -----------------------------------------------------------------

// Overlays `src` onto `dst`, using `dst` as the schema (rules in the header comment). On error
// `dst` may hold part of the overlay: discard it. ERR_CONFIG naming src's file:line and key.
int cfg_overlay(cfg *dst, const cfg *src);
// cfg_parse_file(path) then cfg_overlay onto `dst`.
int cfg_overlay_file(cfg *dst, const char *path);
// Applies one assignment "a.b.c=VALUE" to `dst`; VALUE is a YAML scalar or flow list
// ("0.5", "ddim", "[0, 120]", "'quoted text'"); the key must exist in `dst`. ERR_CONFIG for a
// missing '=', an unknown key (listing the section's valid keys), a value of the wrong type or
// bad YAML; messages quote the argument as "--set ARG".
int cfg_set(cfg *dst, const char *assignment);
// The effective config: parses `defaults_path` (the schema), overlays `user_path` (NULL: none),
// then applies `sets[0..nsets)` in order. *out is owned by the caller (cfg_free).
int cfg_load_stack(cfg **out, const char *defaults_path, const char *user_path,
                   const char *const *sets, size_t nsets);

// --- access by dotted path ------------------------------------------------------------------
// `path` is relative to `node` ("train_diffusion.lr"); "" or NULL means `node` itself. The
// getters return ERR_CONFIG when the key is missing or holds another type ("config key
// 'unet.ch' (from config/fmnist.yml:12) is a float, expected an int").

// The node at `path`, or NULL when absent. Borrowed.
const cfg *cfg_find(const cfg *node, const char *path);
// The map at `path` (ERR_CONFIG when absent or not a map) in *out, borrowed: use it as the
// `node` of further getters (the unet module reads cfg_get_int(sub, "ch", ...)).
int cfg_subtree(const cfg *node, const char *path, const cfg **out);
// An int key into *out; ERR_CONFIG also when it does not fit an int.
int cfg_get_int(const cfg *node, const char *path, int *out);
int cfg_get_i64(const cfg *node, const char *path, int64_t *out);
// A float key (int keys are accepted and converted).
int cfg_get_float(const cfg *node, const char *path, double *out);
int cfg_get_bool(const cfg *node, const char *path, bool *out);
// A string key; *out is borrowed (see Ownership).
int cfg_get_str(const cfg *node, const char *path, const char **out);
// A string key that must be one of names[0..n): *out = its index. ERR_CONFIG lists the choices.
int cfg_get_enum(const cfg *node, const char *path, const char *const *names, int n, int *out);
// A list of ints into out[0..cap) with *n = its length; ERR_CONFIG when longer than cap or an
// element is not an int. An empty list gives *n = 0.
int cfg_get_int_list(const cfg *node, const char *path, int *out, size_t cap, size_t *n);
// A list of numbers (ints accepted) into out[0..cap), likewise.
int cfg_get_float_list(const cfg *node, const char *path, double *out, size_t cap, size_t *n);

// --- inspecting nodes ----------------------------------------------------------------------

cfg_type cfg_node_type(const cfg *node);
// Number of entries of a map or list; 0 for scalars.
size_t cfg_node_len(const cfg *node);
// Key of map entry i (in file order), or NULL. Borrowed.
const char *cfg_node_key(const cfg *node, size_t i);
// Value of map entry or list element i, or NULL. Borrowed.
const cfg *cfg_node_at(const cfg *node, size_t i);
// Where the node's value came from: "config/fmnist.yml:12" or "--set unet.ch=32". Borrowed.
const char *cfg_node_origin(const cfg *node);
// Full dotted key of the node from its root ("unet.ch_mult"; "" for the root) into buf
// (truncated to cap; always terminated). Returns buf.
const char *cfg_node_path(const cfg *node, char *buf, size_t cap);

// --- canonical text and hash ---------------------------------------------------------------

// Canonical one-line text of the node at `path` ("" = node itself): JSON with map keys sorted
// bytewise, no spaces, ints as decimal, floats in the shortest "%.{1..17}g" form that reads back
// exactly and always with a '.', 'e', or as NaN/Infinity/-Infinity (so 2.0 stays "2.0" and never
// equals the int 2), strings JSON-escaped, true/false. Equal trees give equal text whatever their
// key order or source. *text is malloc'd, owned by the caller (free). ERR_CONFIG (missing
// path), ERR_NOMEM.
int cfg_canonical(const cfg *node, const char *path, char **text);
// cfg_canonical of the node at `path` without the entries named in drop[] (NULL-terminated
// dotted paths relative to that node; absent ones are skipped): the parameters of a stage key
// without the keys that do not change its output. Numbers keep cfg_canonical's exact form (no
// round trip through a double: an int64 seed stays exact). *text as for cfg_canonical.
int cfg_canonical_except(const cfg *node, const char *path, const char *const *drop, char **text);
// XXH3-128 of cfg_canonical's text as 32 lower-case hex digits (high 64 bits first, the
// XXH128_canonical byte order) plus NUL into hex_out: hash_text_hex of common/hash.h.
int cfg_hash(const cfg *node, const char *path, char hex_out[33]);

#endif
