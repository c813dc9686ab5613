// imgstats: the dataset facts of an image store (ingest's meta `count`, `class_counts`, `mean`,
// `std`; docs/FORMATS.md "Image store") from exact per-channel pixel histograms and label counts,
// so the facts do not depend on the order the images were seen: `dstore merge` recomputes them
// over the joined shards of an ingest run and gets the text one unsharded run writes; ingest
// computes them with the same functions while it writes.
#ifndef DIFFOOD_IMGSTATS_H
#define DIFFOOD_IMGSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/store.h"

#define IMGSTATS_MAX_CLASS 65536 // labels 0..IMGSTATS_MAX_CLASS-1 are counted; -1 is OOD

typedef struct {
    int c;                  // channels
    uint64_t (*hist)[256];  // (c, 256) pixel value counts
    int64_t *class_counts;  // (IMGSTATS_MAX_CLASS)
    int64_t count, ood;     // images; images labelled < 0
} imgstats;

// Zeroed statistics of images with c (1..4) channels. ERR_USAGE, ERR_NOMEM. Release with
// imgstats_free.
int imgstats_init(imgstats *st, int c);
void imgstats_free(imgstats *st);
// Adds one image (c planes of `plane` bytes) with its label.
void imgstats_add(imgstats *st, const uint8_t *img, size_t plane, int32_t label);
// Adds every record of tables `image` (u8 (C, H, W), C == st->c) and `label` (i32, the same
// keys) of s. ERR_CORRUPT naming the store and key for a record of another dtype or shape, or an
// image without its label; store errors.
int imgstats_scan(ts_store *s, imgstats *st);
// Writes meta count, class_counts, mean and std (population std of pixel/255 per channel) into
// s, inside its open batch. ERR_NOMEM, store errors.
int imgstats_meta_put(ts_store *s, const imgstats *st);

#endif
