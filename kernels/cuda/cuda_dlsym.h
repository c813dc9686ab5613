// cuda_dlsym: every function the CUDA backend looks up at run time with dlsym, in one table that
// both the backend (kernels/cuda/cuda_backend.cu fills cuda_blas from it) and the test that
// resolves it against the real libraries of CUDA_HOME without a GPU (tests/test_cuda_load.c)
// include, so the two cannot drift. Plain C, no CUDA headers: the test is built without them.
//
// The CUDA runtime and cuDNN are linked normally (lib/libdiffood_cuda.so is linked with
// --no-undefined and loaded with RTLD_NOW, so a missing symbol there fails at dlopen, with the
// library's name; cuDNN 9's own sub-libraries, which libcudnn.so.9 dlopens, are loaded and
// version-checked by ops_cuda_load_libraries and at context creation); cuBLAS is dlopened
// (libcublas.so.<CUBLAS_VER_MAJOR>: its 500 MB libcublasLt is only loaded once a GPU has been
// found) and these are its functions.
#ifndef DIFFOOD_CUDA_DLSYM_H
#define DIFFOOD_CUDA_DLSYM_H

// X(field, function): `field` is the member of cuda_cublas_api (cuda_internal.h), `function` the
// name exported by libcublas (the _v2 names that cublas_v2.h maps the plain ones to).
#define CUDA_CUBLAS_SYMBOLS(X)                                                                  \
    X(create, cublasCreate_v2)                                                                  \
    X(destroy, cublasDestroy_v2)                                                                \
    X(set_stream, cublasSetStream_v2)                                                           \
    X(set_math_mode, cublasSetMathMode)                                                         \
    X(sgemm, cublasSgemm_v2)                                                                    \
    X(sgemm_strided_batched, cublasSgemmStridedBatched)                                         \
    X(status_string, cublasGetStatusString)

// The library the table is resolved in: "libcublas.so." followed by CUBLAS_VER_MAJOR of the
// cublas_api.h the backend was compiled with (the emulator's is "emu").
#define CUDA_CUBLAS_SONAME_PREFIX "libcublas.so."

#endif
