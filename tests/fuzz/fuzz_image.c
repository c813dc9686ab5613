// Fuzz target: PNG and JPEG decoding of listed images (imglist_decode_file, by magic bytes), then
// what ingest does with an accepted image: channel conversion and resize + centre crop.
// Input: the image file; its last byte picks the crop size (1..32). Images of at most 4 MiB,
// resized when the result stays under 256 Ki pixels, keep each run short.
#include <stdlib.h>

#include "datasets/ds.h"
#include "datasets/imglist.h"
#include "tests/fuzz/util.h"

int fuzz_image(const uint8_t *data, size_t size) {
    fuzz_init();
    setenv("DIFFOOD_DS_MAX_BYTES", "4194304", 1); // decodes of at most 4 MiB keep each run short
    uint8_t *px = NULL;
    int c = 0, h = 0, w = 0, bad = 0;
    if (imglist_decode_file(fuzz_file(0, data, size), &px, &c, &h, &w) == 0) {
        bad = c < 1 || c > 4 || h < 1 || w < 1 || !px;
        int out_c = size % 2 ? 3 : 1, sz = size ? 1 + data[size - 1] % 32 : 8;
        size_t hw = (size_t)h * w;
        uint8_t *conv = malloc((size_t)out_c * hw), *crop = malloc((size_t)out_c * sz * sz);
        if (!bad && conv && crop && ds_convert_channels(conv, out_c, px, c, h, w) == 0 &&
            ds_resize_check("fuzz", out_c, h, w, sz) == 0) {
            int oh, ow; // keep each run quick: resize what stays small (the check is what ingest does)
            ds_resize_shorter_dims(h, w, sz, &oh, &ow);
            if ((size_t)oh * ow <= ((size_t)1 << 18) && hw <= ((size_t)1 << 20))
                bad = ds_resize_center_crop(crop, sz, conv, out_c, h, w) != 0;
        }
        free(conv);
        free(crop);
    }
    free(px);
    return bad;
}
