// Fuzz target: class lists (--classes / config key ingest.classes: "0,3-5,9") as ingest parses
// them (ds_parse_classes over 65536 labels). Input: the text up to its first NUL.
#include <stdlib.h>
#include <string.h>

#include "datasets/ds.h"
#include "tests/fuzz/util.h"

int fuzz_classes(const uint8_t *data, size_t size) {
    fuzz_init();
    static uint8_t mask[DS_MAX_CLASSES];
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    int bad = 0;
    if (ds_parse_classes(text, mask, DS_MAX_CLASSES) == 0) {
        int any = 0; // an accepted list selects at least one class
        for (int k = 0; k < DS_MAX_CLASSES && !any; k++) any = mask[k];
        bad = !any;
    }
    free(text);
    return bad;
}
