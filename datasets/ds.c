// ds: image sets, the memory cap every reader honours, and the image operations of ds.h
// (padding, channel conversion, PIL-exact bilinear resize, torchvision-style centre crop).
#include "datasets/ds.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

// --- memory cap ----------------------------------------------------------------------------

uint64_t ds_max_bytes(void) {
    const char *env = getenv("DIFFOOD_DS_MAX_BYTES");
    if (env && *env) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (errno == 0 && end && *end == '\0' && v > 0) return (uint64_t)v;
    }
    return (uint64_t)16 << 30;
}

uint64_t ds_max_file_bytes(void) {
    uint64_t m = ds_max_bytes();
    if (m > (UINT64_MAX >> 1)) return UINT64_MAX;
    return m + m / 256 + ((uint64_t)1 << 20);
}

static int (*ds_poll_fn)(void);

void ds_set_poll(int (*poll)(void)) { ds_poll_fn = poll; }

int ds_poll(void) { return ds_poll_fn ? ds_poll_fn() : 0; }

int ds_check_size(const char *what, int64_t n, int64_t c, int64_t h, int64_t w) {
    ERR_IF(n <= 0 || c <= 0 || h <= 0 || w <= 0, ERR_INPUT,
           "%s: bad dimensions %lld x %lld x %lld x %lld (every one must be positive)", what, (long long)n,
           (long long)c, (long long)h, (long long)w);
    uint64_t limit = ds_max_bytes();
    // Each factor is checked against the limit before multiplying, so nothing overflows.
    uint64_t per = (uint64_t)c;
    ERR_IF((uint64_t)h > limit || (uint64_t)w > limit || per > limit, ERR_INPUT,
           "%s: header claims images of %lld x %lld x %lld, over the limit of %llu bytes", what, (long long)c,
           (long long)h, (long long)w, (unsigned long long)limit);
    per *= (uint64_t)h;
    ERR_IF(per > limit || per * (uint64_t)w > limit, ERR_INPUT,
           "%s: header claims images of %lld x %lld x %lld, over the limit of %llu bytes", what, (long long)c,
           (long long)h, (long long)w, (unsigned long long)limit);
    per *= (uint64_t)w;
    ERR_IF((uint64_t)n > limit / per, ERR_INPUT,
           "%s: header claims %lld images of %llu bytes (%.3g bytes in all), over the limit of %llu bytes", what,
           (long long)n, (unsigned long long)per, (double)n * (double)per, (unsigned long long)limit);
    return 0;
}

int ds_images_alloc(ds_images *s, const char *what, int64_t n, int c, int h, int w) {
    memset(s, 0, sizeof *s);
    ERR_TRY(ds_check_size(what, n, c, h, w));
    size_t bytes = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    s->pixels = calloc(bytes, 1);
    s->labels = calloc((size_t)n, sizeof *s->labels);
    if (!s->pixels || !s->labels) {
        ds_images_free(s);
        return err_set(ERR_NOMEM, "%s: cannot allocate %zu bytes for %lld images", what, bytes, (long long)n);
    }
    s->n = n;
    s->c = c;
    s->h = h;
    s->w = w;
    return 0;
}

void ds_images_free(ds_images *s) {
    if (!s) return;
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

// --- padding and channels ------------------------------------------------------------------

void ds_pad(uint8_t *dst, const uint8_t *src, int c, int h, int w, int p) {
    int ph = h + 2 * p, pw = w + 2 * p;
    memset(dst, 0, (size_t)c * ph * pw);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)ch * ph + y + p) * pw + p, src + ((size_t)ch * h + y) * w, (size_t)w);
}

int ds_convert_channels(uint8_t *dst, int c_out, const uint8_t *src, int c_in, int h, int w) {
    size_t hw = (size_t)h * w;
    ERR_IF(c_in < 1 || c_in > 4, ERR_UNSUPPORTED, "images with %d channels are not supported (1 to 4)", c_in);
    ERR_IF(c_out != 1 && c_out != 3, ERR_UNSUPPORTED, "conversion to %d channels is not supported (1 or 3)", c_out);
    int colour = c_in >= 3; // 3 = RGB, 4 = RGBA; 1 = grey, 2 = grey + alpha
    if (c_out == 1) {
        if (!colour) {
            memcpy(dst, src, hw);
            return 0;
        }
        const uint8_t *r = src, *g = src + hw, *b = src + 2 * hw;
        for (size_t i = 0; i < hw; i++)
            dst[i] = (uint8_t)(((uint32_t)r[i] * 19595u + (uint32_t)g[i] * 38470u + (uint32_t)b[i] * 7471u + 0x8000u) >> 16);
        return 0;
    }
    for (int ch = 0; ch < 3; ch++) memcpy(dst + ch * hw, src + (colour ? ch : 0) * hw, hw);
    return 0;
}

// --- PIL bilinear resampling (Pillow src/libImaging/Resample.c) ----------------------------

#define DS_PRECISION_BITS (32 - 8 - 2)

static double ds_bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Fixed-point coefficients for resampling in_size -> out_size: per output pixel a window
// [bounds[2i], bounds[2i] + bounds[2i+1]) and ksize weights. Returns ksize or ERR_NOMEM.
static int ds_precompute_coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = calloc((size_t)out_size * ksize, sizeof *pre);
    int *bounds = calloc((size_t)out_size * 2, sizeof *bounds);
    int32_t *kk = calloc((size_t)out_size * ksize, sizeof *kk);
    if (!pre || !bounds || !kk) {
        free(pre);
        free(bounds);
        free(kk);
        return err_set(ERR_NOMEM, "resize: cannot allocate coefficients for %d -> %d", in_size, out_size);
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = pre + (size_t)xx * ksize;
        int x;
        for (x = 0; x < xmax; x++) {
            double wgt = ds_bilinear_filter((x + xmin - center + 0.5) * ss);
            k[x] = wgt;
            ww += wgt;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * ksize; i++)
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << DS_PRECISION_BITS))
                           : (int32_t)(0.5 + pre[i] * (1 << DS_PRECISION_BITS));
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static uint8_t ds_clip8(int64_t v) {
    if (v <= 0) return 0;
    v >>= DS_PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

int ds_resize_bilinear(uint8_t *dst, int oh, int ow, const uint8_t *src, int c, int h, int w) {
    int rc = 0;
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    if (oh == h && ow == w) {
        memcpy(dst, src, (size_t)c * h * w);
        return 0;
    }
    int ksh, ksv;
    ERR_GOTO(rc, ksh = ds_precompute_coeffs(w, ow, &bh, &kh));
    ERR_GOTO(rc, ksv = ds_precompute_coeffs(h, oh, &bv, &kv));
    // Rows of the source the vertical pass reads.
    int y_first = bv[0], y_last = bv[(oh - 1) * 2] + bv[(oh - 1) * 2 + 1];
    int need_h = ow != w, need_v = oh != h;
    int th = need_h ? y_last - y_first : h; // rows of the intermediate image
    tmp = malloc((size_t)th * ow);
    ERR_GOTO_IF(rc, !tmp, ERR_NOMEM, "resize: cannot allocate %d x %d", th, ow);
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *in = src + (size_t)ch * h * w;
        uint8_t *out = dst + (size_t)ch * oh * ow;
        const uint8_t *mid = in; // (th, ow) when need_h, else the input itself
        int y_off = 0;
        if (need_h) {
            for (int y = 0; y < th; y++)
                for (int xx = 0; xx < ow; xx++) {
                    int xmin = bh[xx * 2], xn = bh[xx * 2 + 1];
                    const int32_t *k = kh + (size_t)xx * ksh;
                    int64_t ss = 1 << (DS_PRECISION_BITS - 1);
                    for (int x = 0; x < xn; x++) ss += (int64_t)in[(size_t)(y + y_first) * w + x + xmin] * k[x];
                    tmp[(size_t)y * ow + xx] = ds_clip8(ss);
                }
            mid = tmp;
            y_off = y_first;
        }
        if (!need_v) {
            memcpy(out, mid, (size_t)oh * ow);
            continue;
        }
        for (int yy = 0; yy < oh; yy++) {
            int ymin = bv[yy * 2] - y_off, yn = bv[yy * 2 + 1];
            const int32_t *k = kv + (size_t)yy * ksv;
            for (int xx = 0; xx < ow; xx++) {
                int64_t ss = 1 << (DS_PRECISION_BITS - 1);
                for (int y = 0; y < yn; y++) ss += (int64_t)mid[(size_t)(y + ymin) * ow + xx] * k[y];
                out[(size_t)yy * ow + xx] = ds_clip8(ss);
            }
        }
    }
fail:
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    free(tmp);
    return rc < 0 ? rc : 0;
}

// int(size * a / b), at most INT_MAX.
static int ds_scaled_side(int size, int a, int b) {
    double v = (double)size * a / b;
    return v >= (double)INT_MAX ? INT_MAX : (int)v;
}

void ds_resize_shorter_dims(int h, int w, int size, int *oh, int *ow) {
    if (w <= h) {
        *ow = size;
        *oh = ds_scaled_side(size, h, w);
    } else {
        *oh = size;
        *ow = ds_scaled_side(size, w, h);
    }
}

int ds_resize_check(const char *what, int c, int h, int w, int size) {
    int oh, ow;
    ERR_IF(c < 1 || h < 1 || w < 1 || size < 1, ERR_INPUT, "%s: cannot resize a %d x %d x %d image to %d", what, c, h,
           w, size);
    ds_resize_shorter_dims(h, w, size, &oh, &ow);
    double dh = w <= h ? (double)size * h / w : size, dw = w <= h ? size : (double)size * w / h;
    double bytes = (double)c * dh * dw;
    ERR_IF(oh == INT_MAX || ow == INT_MAX || bytes > (double)DS_MAX_IMAGE_BYTES, ERR_INPUT,
           "%s: a %d x %d image resized to a shorter side of %d is %.0f x %.0f pixels (%.3g bytes), over the limit of "
           "%lld bytes per image",
           what, h, w, size, dh, dw, bytes, (long long)DS_MAX_IMAGE_BYTES);
    return 0;
}

// Python's round() of x/2 for an integer x: half to even.
static int ds_round_half_even_div2(int x) {
    int q = x / 2; // x >= 0 here
    if (x % 2 == 0) return q;
    return (q % 2 == 0) ? q : q + 1;
}

int ds_resize_center_crop(uint8_t *dst, int size, const uint8_t *src, int c, int h, int w) {
    int oh, ow;
    ERR_TRY(ds_resize_check("resize", c, h, w, size));
    ds_resize_shorter_dims(h, w, size, &oh, &ow);
    uint8_t *tmp = malloc((size_t)c * oh * ow);
    ERR_IF(!tmp, ERR_NOMEM, "resize: cannot allocate %d x %d x %d", c, oh, ow);
    int rc = ds_resize_bilinear(tmp, oh, ow, src, c, h, w);
    if (rc < 0) {
        free(tmp);
        return rc;
    }
    int top = ds_round_half_even_div2(oh - size), left = ds_round_half_even_div2(ow - size);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < size; y++)
            memcpy(dst + ((size_t)ch * size + y) * size, tmp + ((size_t)ch * oh + y + top) * ow + left, (size_t)size);
    free(tmp);
    return 0;
}

// --- class lists ---------------------------------------------------------------------------

int ds_parse_classes(const char *list, uint8_t *mask, int mask_len) {
    memset(mask, 0, (size_t)mask_len);
    const char *p = list;
    int any = 0;
    while (*p) {
        char *end = NULL;
        errno = 0;
        long a = strtol(p, &end, 10), b;
        ERR_IF(end == p || errno, ERR_USAGE, "--classes '%s': expected a number at '%s'", list, p);
        p = end;
        b = a;
        if (*p == '-') {
            const char *q = p + 1;
            b = strtol(q, &end, 10);
            ERR_IF(end == q || errno, ERR_USAGE, "--classes '%s': expected a number after '-' at '%s'", list, p);
            p = end;
        }
        ERR_IF(a < 0 || b < a || b >= mask_len, ERR_USAGE, "--classes '%s': bad class or range %ld-%ld (0..%d)", list,
               a, b, mask_len - 1);
        for (long v = a; v <= b; v++) mask[v] = 1;
        any = 1;
        if (*p == ',') {
            p++;
            ERR_IF(!*p, ERR_USAGE, "--classes '%s': trailing comma", list);
        } else
            ERR_IF(*p, ERR_USAGE, "--classes '%s': unexpected '%c'", list, *p);
    }
    ERR_IF(!any, ERR_USAGE, "--classes: empty list");
    return 0;
}
