// cpu_sgemm: the CPU backend's own single-precision GEMM for the convolutions' small, skinny
// matrices (Winograd's 16 GEMMs of C_out x C_in by C_in x tiles, im2col columns, linear layers).
//
// Why not OpenBLAS: on these shapes (K and M of 8-64, N of a few hundred) OpenBLAS's AVX2 path
// (the Haswell kernel) packs both operands for every call and then runs a kernel built for big
// matrices: packing and edge handling were half of the GEMM time, and the GEMMs half of a UNet
// step (perf, fmnist UNet train step, 1 thread, AMD EPYC Zen 4 with OPENBLAS_CORETYPE=Haswell).
// Here op(B) (K x N) is read in place (copied into a panel when transposed, except in the
// AVX-512 dot-product kernel), op(A) is
// broadcast from place, with a 6 x 32 register tile on a CPU with AVX-512 (chosen at run time:
// AMD Zen 5 runs 512-bit FMAs at full rate, twice the AVX2 FLOPs) and 6 x 16 with AVX2 + FMA
// (the build's baseline), a plain C loop without AVX2.
//
// Results: every element of C is a sum over p of a[i,p] * b[p,j] in a fixed order that depends
// only on k and the kernel (B not transposed: in order of p with FMA, in blocks of
// CPU_SGEMM_KC, the same in the AVX-512 and the AVX2 kernels; B transposed, AVX-512, C of
// fewer than 64 rows: 16 interleaved partial sums, then added), never on M, N, the thread count or the split:
// cpu_sgemm_mt gives the same bits for any thread count.
#ifndef DIFFOOD_CPU_SGEMM_H
#define DIFFOOD_CPU_SGEMM_H

// Row-major C (m x n) = alpha * op(A) op(B) + beta * C, op(A) (m x k): A stored (m x k, lda) or,
// when ta, (k x m, lda); op(B) (k x n): B stored (k x n, ldb) or, when tb, (n x k, ldb). beta 0:
// C is only written (garbage or NaN in it never shows). One thread. ta && tb is not supported
// (no caller needs it): it computes nothing and returns -1; otherwise returns 0.
int cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc);
// cpu_sgemm with `nt` OpenMP threads over blocks of C (columns, or rows when tb): the same
// result as one thread. Must not be called from inside a parallel region when nt > 1.
int cpu_sgemm_mt(int nt, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);

// Tests and benchmarks: run the AVX-512 kernels (isa 2) or the AVX2 / plain C ones (1) from now
// on. Returns the previous choice, or -1 (nothing changed) when the CPU lacks AVX-512.
// DIFFOOD_CPU_ISA=avx2 in the environment makes AVX2 the first choice.
int cpu_sgemm_force_isa(int isa);

#endif
