// ds: the small in-memory image set every dataset reader produces, and the image operations
// ingest applies before storing (zero padding, channel conversion, resize + centre crop).
//
// Pixels are uint8, laid out (N, C, H, W) contiguously; labels are int32 (-1 = OOD / unknown).
// Readers reject headers that would need absurd memory BEFORE allocating: every allocation of
// pixel data goes through ds_images_alloc, which refuses more than ds_max_bytes() bytes.
#ifndef DIFFOOD_DS_H
#define DIFFOOD_DS_H

#include <stddef.h>
#include <stdint.h>

#define DS_MAX_CLASSES 65536 // labels are below this (class counts are kept per label)

typedef struct {
    int64_t n;      // number of images
    int c, h, w;    // channels, height, width of every image
    uint8_t *pixels; // (N, C, H, W); owned by the set
    int32_t *labels; // (N); owned by the set
} ds_images;

// Largest pixel payload any reader allocates (default 16 GiB; the environment variable
// DIFFOOD_DS_MAX_BYTES overrides it, e.g. for tests). Never 0.
uint64_t ds_max_bytes(void);

// Checks that n images of c x h x w bytes fit under ds_max_bytes() without overflow; `what`
// names the file for the message. Returns 0, or ERR_INPUT ("file: header claims ... bytes,
// over the limit of ...") for zero/negative dimensions or too many bytes.
int ds_check_size(const char *what, int64_t n, int64_t c, int64_t h, int64_t w);

// Largest source FILE any format may need to hold ds_max_bytes() of pixels: the limit plus
// 1/256 (gzip's stored blocks, CIFAR's label bytes) plus 1 MiB of headers. Source files above it
// are refused before they are hashed or read.
uint64_t ds_max_file_bytes(void);

// --- interruption --------------------------------------------------------------------------
// Readers call the function set here in their long loops (every few MiB or thousand records:
// hashing sources, reading IDX/CIFAR/NPY data, parsing JSON, reading lists) and stop with its
// code when it returns < 0. The stage passes cli_check_interrupt; NULL (the default) never stops.
void ds_set_poll(int (*poll)(void));
// 0, or the poll function's negative code (its message set).
int ds_poll(void);

// Allocates a set of n images (pixels zeroed, labels 0) after ds_check_size(what, ...).
// Returns 0, ERR_INPUT (too big, bad dims) or ERR_NOMEM. Free with ds_images_free.
int ds_images_alloc(ds_images *s, const char *what, int64_t n, int c, int h, int w);
// Frees pixels and labels and zeroes the struct; safe on a zeroed or already freed set.
void ds_images_free(ds_images *s);
// Bytes of one image (c*h*w).
static inline size_t ds_image_bytes(const ds_images *s) { return (size_t)s->c * s->h * s->w; }
// Pointer to image i's pixels.
static inline uint8_t *ds_image_at(const ds_images *s, int64_t i) { return s->pixels + (size_t)i * ds_image_bytes(s); }

// --- single-image operations (CHW uint8) ---------------------------------------------------

// Zero-pads one (c, h, w) image by p pixels on every side into dst (c, h+2p, w+2p).
// src and dst must not overlap. Never fails.
void ds_pad(uint8_t *dst, const uint8_t *src, int c, int h, int w, int p);

// Converts one image of c_in channels into c_out channels (both in {1, 2, 3, 4} for input,
// {1, 3} for output), following PIL's convert(): grey -> RGB replicates; alpha is dropped
// (2 = grey+alpha, 4 = RGBA); RGB -> grey is L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
// src is (c_in, h, w) CHW; dst is (c_out, h, w). Returns 0 or ERR_UNSUPPORTED.
int ds_convert_channels(uint8_t *dst, int c_out, const uint8_t *src, int c_in, int h, int w);

// Output size of a torchvision Resize(size) of an h x w image: the shorter side becomes
// `size`, the longer int(size * long / short) (at most INT_MAX). Writes *oh, *ow.
void ds_resize_shorter_dims(int h, int w, int size, int *oh, int *ow);

// Largest decoded or resized image (c x h x w bytes) the image readers make: 1 GiB.
#define DS_MAX_IMAGE_BYTES ((int64_t)1 << 30)

// Checks that Resize(size) of a c x h x w image stays under DS_MAX_IMAGE_BYTES (an image of an
// absurd aspect ratio, 1 x 1000000 to a shorter side of 4096, would not). 0 or ERR_INPUT
// "WHAT: a H x W image resized to a shorter side of S is OH x OW pixels, over ...".
int ds_resize_check(const char *what, int c, int h, int w, int size);

// Resizes one CHW image from (h, w) to (oh, ow) with PIL's BILINEAR filter (triangle filter
// whose support widens when downscaling, fixed-point 22-bit coefficients, horizontal pass
// then vertical pass with a uint8 intermediate), so results equal PIL Image.resize() pixel
// for pixel. dst is (c, oh, ow). Returns 0 or ERR_NOMEM.
int ds_resize_bilinear(uint8_t *dst, int oh, int ow, const uint8_t *src, int c, int h, int w);

// torchvision Resize(size) then CenterCrop(size): dst is (c, size, size). The crop offset is
// Python's round((h - size) / 2) (round half to even), as torchvision computes it.
// Returns 0, ERR_INPUT (ds_resize_check) or ERR_NOMEM.
int ds_resize_center_crop(uint8_t *dst, int size, const uint8_t *src, int c, int h, int w);

// --- set-level helpers ---------------------------------------------------------------------

// Parses a class list "0,3,7" or "0-4,9" into a 0/1 mask over labels 0..mask_len-1 (labels
// outside are an error). Returns 0 or ERR_USAGE naming the bad item.
int ds_parse_classes(const char *list, uint8_t *mask, int mask_len);

#endif
