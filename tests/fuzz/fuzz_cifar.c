// Fuzz target: the CIFAR-10/100 binary reader (datasets/cifar.h). Input: one byte for the kind
// (10, 100-fine, 100-coarse), a 2-byte length, then two files of records.
#include "datasets/cifar.h"
#include "tests/fuzz/util.h"

int fuzz_cifar(const uint8_t *data, size_t size) {
    fuzz_init();
    if (size < 1) return 0;
    cifar_kind kind = (cifar_kind)(data[0] % CIFAR_KIND_COUNT);
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data + 1, size - 1, &a, &na, &b, &nb);
    const char *paths[2] = {fuzz_file(0, a, na), fuzz_file(1, b, nb)};
    ds_images s;
    int bad = 0, max = kind == CIFAR_10 ? 9 : kind == CIFAR_100_FINE ? 99 : 19;
    if (cifar_read(&s, paths, 2, kind) == 0) {
        bad = s.c != 3 || s.h != CIFAR_SIDE || s.w != CIFAR_SIDE;
        for (int64_t i = 0; i < s.n; i++) bad |= s.labels[i] < 0 || s.labels[i] > max;
    }
    ds_images_free(&s);
    return bad;
}
