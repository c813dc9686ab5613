// Fuzz target: the IDX reader (datasets/idx.h), raw or gzip. Input: a 2-byte length, the images
// file, then the labels file. An accepted pair must give consistent dimensions.
#include "datasets/idx.h"
#include "tests/fuzz/util.h"

int fuzz_idx(const uint8_t *data, size_t size) {
    fuzz_init();
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, &a, &na, &b, &nb);
    ds_images s;
    const char *img = fuzz_file(0, a, na), *lab = fuzz_file(1, b, nb);
    int bad = 0;
    if (idx_read(&s, img, lab) == 0) bad = s.n < 1 || s.c != 1 || s.h < 1 || s.w < 1 || !s.pixels || !s.labels;
    ds_images_free(&s);
    return bad;
}
