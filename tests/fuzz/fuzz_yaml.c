// Fuzz target: YAML configs as --config FILE is read: libyaml events -> cfg tree
// (cfg_parse_file), laid over config/defaults.yml (the schema), then the canonical text every
// store key hashes. Run from the repository root (config/defaults.yml).
#include <stdlib.h>

#include "common/cfg.h"
#include "tests/fuzz/util.h"

int fuzz_yaml(const uint8_t *data, size_t size) {
    fuzz_init();
    static cfg *schema;
    if (!schema && cfg_parse_file(&schema, "config/defaults.yml") < 0) abort(); // run from the repo root
    cfg *root = NULL, *user = NULL;
    char *text = NULL;
    int bad = 0;
    if (cfg_parse_file(&user, fuzz_file(0, data, size)) == 0) {
        char *t2 = NULL;
        if (cfg_canonical(user, "", &t2) < 0) bad = 1; // any parsed tree has a canonical text
        free(t2);
        if (cfg_clone(&root, schema) < 0) abort();
        if (cfg_overlay(root, user) == 0) bad |= cfg_canonical(root, "", &text) < 0;
    }
    free(text);
    cfg_free(root);
    cfg_free(user);
    return bad;
}
