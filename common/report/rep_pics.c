// rep_pics: the picture grids of the report (rep.h, rep_load_samples): for a samples store, the
// first requested images of its set, each row the original image then its denoised repeats at
// every level, written as a PNG under DIR/pictures/ for the HTML page to inline.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/png.h"
#include "common/report/rep.h"
#include "common/samples.h"
#include "common/store.h"

#define REP_PIC_REPEATS 4 // repeats shown per level at most

int rep_load_samples(rep_report *r, const char *path, const char *set, int count, const char *dir) {
    ts_store *img = NULL;
    char *name = NULL, *png_path = NULL;
    uint8_t *tiles = NULL, *grid = NULL;
    const uint8_t **tp = NULL;
    float *fbuf = NULL;
    rep_pictures p;
    memset(&p, 0, sizeof p);
    smp_view v;
    int rc = 0;
    ERR_TRY(smp_open(&v, path)); // follows the cache reference (meta records)
    int begin = (int)v.req.begin, end = (int)v.req.end;
    const char *images = v.images;
    ERR_GOTO_IF(rc, v.req.n_levels < 1 || v.req.n_levels > (int)(sizeof p.levels / sizeof p.levels[0]) ||
                        v.req.repeats < 1 || end <= begin,
                ERR_INPUT, "%s: meta request needs 1..%d levels, repeats >= 1 and images", path,
                (int)(sizeof p.levels / sizeof p.levels[0]));
    p.nlevels = v.req.n_levels;
    memcpy(p.levels, v.req.levels, sizeof(int) * (size_t)p.nlevels);
    p.repeats = v.req.repeats < REP_PIC_REPEATS ? v.req.repeats : REP_PIC_REPEATS;
    ERR_GOTO(rc, ts_open(&img, images, TS_RDONLY));
    if (set) {
        name = strdup(set);
    } else {
        rc = ts_meta_get(img, "dataset", &name);
        ERR_GOTO_IF(rc, rc == ERR_NOTFOUND, ERR_INPUT, "%s: image store %s has no meta 'dataset': give --samples NAME=%s",
                    path, images, path);
        ERR_GOTO(rc, rc);
    }
    ERR_GOTO_IF(rc, !name, ERR_NOMEM, "out of memory");
    int found = 0;
    for (int i = 0; i < r->nsets; i++) found |= strcmp(r->sets[i].name, name) == 0;
    ERR_GOTO_IF(rc, !found, ERR_INPUT, "%s: set '%s' is not a set of the scores store %s", path, name, r->scores_path);

    // geometry from the first original
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, (uint64_t)begin);
    ts_record_info info;
    ERR_GOTO(rc, ts_get_info(img, "image", &k, &info));
    ERR_GOTO_IF(rc, info.rank != 3 || info.dtype != TS_U8, ERR_INPUT, "%s: table 'image' is not u8 (C, H, W)", images);
    int C = (int)info.shape[0], H = (int)info.shape[1], W = (int)info.shape[2];
    size_t tile = (size_t)C * H * W;
    p.rows = end - begin < count ? end - begin : count;
    int cols = 1 + p.nlevels * p.repeats;
    tiles = malloc(tile * (size_t)p.rows * cols);
    tp = calloc((size_t)p.rows * cols, sizeof *tp);
    fbuf = malloc(tile * sizeof *fbuf);
    ERR_GOTO_IF(rc, !tiles || !tp || !fbuf, ERR_NOMEM, "out of memory");
    for (int i = 0; i < p.rows; i++) {
        uint8_t *row = tiles + tile * (size_t)i * cols;
        ts_key_u64(&k, (uint64_t)(begin + i));
        ERR_GOTO(rc, ts_get_into(img, "image", &k, &t, row, tile));
        tp[i * cols] = row;
        for (int l = 0; l < p.nlevels; l++)
            for (int q = 0; q < p.repeats; q++) {
                int col = 1 + l * p.repeats + q;
                ERR_GOTO(rc, smp_get(&v, (uint32_t)(begin + i), (uint32_t)p.levels[l], (uint32_t)q, &t, fbuf,
                                     tile * sizeof *fbuf));
                ERR_GOTO_IF(rc, t.dtype != TS_F32 || (size_t)ts_tensor_numel(&t) != tile, ERR_INPUT,
                            "%s: sample (%d, %d, %d) is not f32 (%d, %d, %d)", path, begin + i, p.levels[l], q, C,
                            H, W);
                uint8_t *o = row + tile * (size_t)col;
                for (size_t e = 0; e < tile; e++) {
                    float x = fbuf[e] < 0 ? 0 : fbuf[e] > 1 ? 1 : fbuf[e];
                    o[e] = (uint8_t)lrintf(x * 255.0f);
                }
                tp[i * cols + col] = o;
            }
    }
    png_grid_shape g = {p.rows, cols, C, H, W, 2, 255};
    grid = malloc((size_t)C * png_grid_height(&g) * png_grid_width(&g));
    ERR_GOTO_IF(rc, !grid, ERR_NOMEM, "out of memory");
    ERR_GOTO(rc, png_grid_compose(grid, &g, tp));
    size_t plen = strlen(dir) + strlen(name) + 64;
    png_path = malloc(plen);
    ERR_GOTO_IF(rc, !png_path, ERR_NOMEM, "out of memory");
    snprintf(png_path, plen, "%s/pictures", dir);
    mkdir(png_path, 0755);
    snprintf(png_path, plen, "%s/pictures/samples-%s.png", dir, name);
    ERR_GOTO(rc, png_write(png_path, grid, C, png_grid_height(&g), png_grid_width(&g)));
    rep_pictures *np = realloc(r->pics, (size_t)(r->npics + 1) * sizeof *np);
    ERR_GOTO_IF(rc, !np, ERR_NOMEM, "out of memory");
    r->pics = np;
    p.set = name, p.png_path = png_path;
    p.width = png_grid_width(&g), p.height = png_grid_height(&g);
    name = png_path = NULL;
    r->pics[r->npics++] = p;
fail:
    free(name), free(png_path);
    free(tiles), free(tp), free(fbuf), free(grid);
    ts_close(img);
    smp_close(&v);
    return rc;
}
