// png: a small PNG writer (libpng) for grey and RGB uint8 images and grids of equally sized
// tiles (training pictures, report pictures).
//
// Images are planar CxHxW uint8 (the tensor store's `image` layout), C = 1 (grey) or 3 (RGB).
#ifndef DIFFOOD_PNG_H
#define DIFFOOD_PNG_H

#include <stddef.h>
#include <stdint.h>

// Writes the planar image `img` (c, h, w) to `path` (replaced). ERR_USAGE for c not 1 or 3 or
// a non-positive size; ERR_IO naming the path (cannot create, write error).
int png_write(const char *path, const uint8_t *img, int c, int h, int w);

// Geometry of a grid of rows x cols tiles (c, th, tw), `gap` pixels of value `bg` between tiles
// and around the border.
typedef struct {
    int rows, cols, c, th, tw, gap;
    uint8_t bg;
} png_grid_shape;

// Height and width of the whole grid picture.
int png_grid_height(const png_grid_shape *g);
int png_grid_width(const png_grid_shape *g);

// Composes the grid into `out` (c, png_grid_height, png_grid_width), filling it with bg first;
// tile (r, k) is tiles[r * cols + k], each planar (c, th, tw); a NULL tile stays background.
// ERR_USAGE for a bad shape.
int png_grid_compose(uint8_t *out, const png_grid_shape *g, const uint8_t *const *tiles);

#endif
