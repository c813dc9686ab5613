// Fuzz target: the image list parser (imglist_read): "relative/path label" lines.
#include <string.h>

#include "datasets/imglist.h"
#include "tests/fuzz/util.h"

int fuzz_imglist(const uint8_t *data, size_t size) {
    fuzz_init();
    imglist l;
    int bad = 0;
    if (imglist_read(&l, fuzz_file(0, data, size), "root") == 0) {
        bad = l.n < 1;
        for (int64_t i = 0; i < l.n; i++)
            bad |= l.items[i].label < -1 || l.items[i].line < 1 || strncmp(l.items[i].path, "root/", 5) != 0;
    }
    imglist_free(&l);
    return bad;
}
