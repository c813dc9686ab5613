// Fuzz target: NPY files, as ingest reads them (npyimg_read: images and labels, every layout)
// and as npy_load reads them (npy_read_header, which dstore import uses). Input: one byte for the layout, a 2-byte length,
// the images file, then the labels file (empty: none).
#include <stdlib.h>

#include "common/npy.h"
#include "datasets/npyimg.h"
#include "tests/fuzz/util.h"

int fuzz_npy(const uint8_t *data, size_t size) {
    fuzz_init();
    if (size < 1) return 0;
    npyimg_layout layout = (npyimg_layout)(data[0] % NPYIMG_LAYOUT_COUNT);
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data + 1, size - 1, &a, &na, &b, &nb);
    const char *img = fuzz_file(0, a, na), *lab = nb ? fuzz_file(1, b, nb) : NULL;
    ds_images s;
    int bad = 0;
    if (npyimg_read(&s, img, lab, layout) == 0) {
        bad = s.n < 1 || s.c < 1 || s.c > 4 || s.h < 1 || s.w < 1;
        for (int64_t i = 0; i < s.n; i++) bad |= s.labels[i] < -1;
    }
    ds_images_free(&s);
    npy_header h;
    void *p = NULL;
    if (npy_load(img, &h, &p) == 0) bad |= npy_numel(&h) < 0 || h.nbytes != (size_t)npy_numel(&h) * ts_dtype_size(h.dtype);
    free(p);
    return bad;
}
