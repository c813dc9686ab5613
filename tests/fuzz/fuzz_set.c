// Fuzz target: `--set KEY=VALUE` assignments (cfg_set: key path, YAML scalar or flow value,
// schema types) on config/defaults.yml, then the canonical text. Input: the argument (text up to
// its first NUL). Run from the repository root.
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "tests/fuzz/util.h"

int fuzz_set(const uint8_t *data, size_t size) {
    fuzz_init();
    static cfg *schema;
    if (!schema && cfg_parse_file(&schema, "config/defaults.yml") < 0) abort();
    char *arg = malloc(size + 1);
    if (!arg) abort();
    memcpy(arg, data, size);
    arg[size] = '\0';
    cfg *root = NULL;
    char *text = NULL;
    int bad = 0;
    if (cfg_clone(&root, schema) < 0) abort();
    if (cfg_set(root, arg) == 0) bad = cfg_canonical(root, "", &text) < 0;
    free(text);
    cfg_free(root);
    free(arg);
    return bad;
}
