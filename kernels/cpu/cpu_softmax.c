// cpu_softmax: row softmax (with a scale, for attention) forward and backward, the embedding
// table lookup and its adjoint, and the sinusoidal timestep embedding (METHOD.md 4).
#include "kernels/cpu/cpu_internal.h"

#include "common/err.h"

int cpu_softmax_fwd(ops_ctx *ctx, float *y, const float *x, int rows, int cols, float scale) {
    ERR_IF(rows <= 0 || cols <= 0, ERR_USAGE, "softmax_fwd: invalid shape rows=%d cols=%d (both must be > 0)", rows, cols);
    int nt = cpu_par_threads(ctx, (size_t)rows * cols);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        float mx = scale * xr[0];
#pragma omp simd reduction(max : mx)
        for (int i = 1; i < cols; i++) mx = mx > scale * xr[i] ? mx : scale * xr[i];
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < cols; i++) {
            float e = cpu_expf(scale * xr[i] - mx);
            yr[i] = e;
            s += e;
        }
        float inv = 1.0f / s;
#pragma omp simd
        for (int i = 0; i < cols; i++) yr[i] *= inv;
    }
    return 0;
}

int cpu_softmax_bwd(ops_ctx *ctx, float *dx, const float *dy, const float *y, int rows, int cols, float scale) {
    ERR_IF(rows <= 0 || cols <= 0, ERR_USAGE, "softmax_bwd: invalid shape rows=%d cols=%d (both must be > 0)", rows, cols);
    int nt = cpu_par_threads(ctx, (size_t)rows * cols);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int r = 0; r < rows; r++) {
        const float *dyr = dy + (size_t)r * cols, *yr = y + (size_t)r * cols;
        float *dxr = dx + (size_t)r * cols;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < cols; i++) dot += dyr[i] * yr[i];
#pragma omp simd
        for (int i = 0; i < cols; i++) dxr[i] += scale * yr[i] * (dyr[i] - dot);
    }
    return 0;
}

// ERR_INPUT naming the first id outside 0..rows-1, 0 when all are in range.
static int cpu_check_ids(const char *op, const int32_t *ids, int n, int rows) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= rows)
            return err_set(ERR_INPUT, "%s: id %d at position %d is outside the table's %d rows", op, (int)ids[i], i, rows);
    return 0;
}

int cpu_embedding_fwd(ops_ctx *ctx, float *y, const float *table, const int32_t *ids, int n, int rows, int dim) {
    ERR_IF(n <= 0 || rows <= 0 || dim <= 0, ERR_USAGE, "embedding_fwd: invalid shape n=%d rows=%d dim=%d (all must be > 0)",
           n, rows, dim);
    ERR_TRY(cpu_check_ids("embedding_fwd", ids, n, rows));
    for (int i = 0; i < n; i++) memcpy(y + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim * sizeof(float));
    return 0;
}

int cpu_embedding_bwd(ops_ctx *ctx, float *dtable, const float *dy, const int32_t *ids, int n, int rows, int dim) {
    ERR_IF(n <= 0 || rows <= 0 || dim <= 0, ERR_USAGE, "embedding_bwd: invalid shape n=%d rows=%d dim=%d (all must be > 0)",
           n, rows, dim);
    ERR_TRY(cpu_check_ids("embedding_bwd", ids, n, rows));
    for (int i = 0; i < n; i++) { // in order: repeated ids add up deterministically
        float *d = dtable + (size_t)ids[i] * dim;
        const float *g = dy + (size_t)i * dim;
#pragma omp simd
        for (int k = 0; k < dim; k++) d[k] += g[k];
    }
    return 0;
}

int cpu_timestep_embedding(ops_ctx *ctx, float *y, const float *t, int n, int dim) {
    ERR_IF(n <= 0 || dim < 2, ERR_USAGE, "timestep_embedding: invalid shape n=%d dim=%d (n > 0, dim >= 2)", n, dim);
    int half = dim / 2;
    // f_k = exp(k * c), c = -ln(10000) / (half - 1) computed in double and rounded to float, then
    // the products in float, as the PyTorch reference does (f = 1 when half == 1)
    float c = half > 1 ? (float)(-(log(10000.0) / (double)(half - 1))) : 0.0f;
    for (int i = 0; i < n; i++) {
        float *yr = y + (size_t)i * dim;
        for (int k = 0; k < half; k++) {
            float f = expf((float)k * c);
            float a = t[i] * f;
            yr[k] = sinf(a);
            yr[half + k] = cosf(a);
        }
        if (dim & 1) yr[dim - 1] = 0.0f; // odd widths are zero-padded (the reference does the same)
    }
    return 0;
}
