// Tests of the NPY reader/writer (common/npy.h): header parsing, round trips, files written by
// numpy (versions 1.0, 2.0, 3.0) and files we write read back by numpy ($DIFFOOD_PYTHON).
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/err.h"
#include "common/npy.h"
#include "tests/test_util.h"


// Runs a Python program (numpy imported as np) in tu_dir; returns its exit status.
static int run_py(const char *code) {
    char file[300], cmd[700];
    snprintf(file, sizeof file, "%s/prog.py", tu_dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "import numpy as np, os, sys\nos.chdir(%s%s%s)\n%s\n", "'", tu_dir, "'", code);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' '%s'", tu_python(), file);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tu_dir, name); }

START_TEST(test_parse_dict) {
    npy_header h;
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    ck_assert_int_eq(npy_parse_dict(ok, strlen(ok), &h, "x"), 0);
    ck_assert_int_eq(h.dtype, TS_F32);
    ck_assert_int_eq(h.rank, 2);
    ck_assert_int_eq(h.shape[1], 4);
    ck_assert_uint_eq(h.nbytes, 48);
    const char *r1 = "{\"shape\": (7,), \"fortran_order\": False, \"descr\": \"|u1\"}   \n";
    ck_assert_int_eq(npy_parse_dict(r1, strlen(r1), &h, "x"), 0);
    ck_assert_int_eq(h.rank, 1);
    ck_assert_int_eq(h.dtype, TS_U8);
    const char *r0 = "{'descr': '<f8', 'fortran_order': False, 'shape': ()}";
    ck_assert_int_eq(npy_parse_dict(r0, strlen(r0), &h, "x"), 0);
    ck_assert_int_eq(h.rank, 0);
    ck_assert_uint_eq(h.nbytes, 8);
    struct { const char *text; int code; const char *msg; } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", ERR_UNSUPPORTED, "fortran"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3, 4), }", ERR_UNSUPPORTED, "<c8"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'shape': (3, 4), }", ERR_INPUT, "needs"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, x), }", ERR_INPUT, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'extra': 1}", ERR_INPUT, "extra"},
        {"garbage", ERR_INPUT, "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }", ERR_UNSUPPORTED, "rank"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", ERR_INPUT, "large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(npy_parse_dict(bad[i].text, strlen(bad[i].text), &h, "file.npy"), bad[i].code);
        ck_assert_ptr_nonnull(strstr(err_msg(), "file.npy"));
        ck_assert_msg(strstr(err_msg(), bad[i].msg), "message '%s' lacks '%s'", err_msg(), bad[i].msg);
    }
}
END_TEST

START_TEST(test_roundtrip_c) {
    char p[300];
    path_of(p, sizeof p, "rt.npy");
    for (int dt = 0; dt < TS_DTYPE_COUNT; dt++)
        for (int rank = 0; rank <= 5; rank++) {
            int64_t shape[5] = {2, 3, 1, 4, 2};
            size_t es = ts_dtype_size((ts_dtype)dt), n = 1;
            for (int i = 0; i < rank; i++) n *= (size_t)shape[i];
            unsigned char *d = malloc(n * es);
            for (size_t i = 0; i < n * es; i++) d[i] = (unsigned char)(i * 31 + dt);
            ck_assert_int_eq(npy_save(p, (ts_dtype)dt, rank, shape, d), 0);
            npy_header h;
            void *back;
            ck_assert_int_eq(npy_load(p, &h, &back), 0);
            ck_assert_int_eq(h.dtype, dt);
            ck_assert_int_eq(h.rank, rank);
            for (int i = 0; i < rank; i++) ck_assert_int_eq(h.shape[i], shape[i]); // not only the byte count
            ck_assert_int_eq(h.version, 1);
            ck_assert_uint_eq(h.data_offset % 64, 0);
            ck_assert_uint_eq(h.nbytes, n * es);
            ck_assert_int_eq(memcmp(back, d, n * es), 0);
            free(back);
            free(d);
        }
}
END_TEST

START_TEST(test_numpy_reads_ours) {
    char p[300];
    int64_t s3[3] = {4, 5, 6}, s1[1] = {7};
    float f[120];
    for (int i = 0; i < 120; i++) f[i] = (float)i * 0.5f - 3.0f;
    uint8_t u[120];
    for (int i = 0; i < 120; i++) u[i] = (uint8_t)(i * 2);
    int32_t i4[7] = {-3, -2, -1, 0, 1, 2, 2147483647};
    uint16_t h[7];
    for (int i = 0; i < 7; i++) h[i] = ts_f32_to_f16((float)i / 3.0f);
    double d8 = 3.25;
    path_of(p, sizeof p, "f4.npy");
    ck_assert_int_eq(npy_save(p, TS_F32, 3, s3, f), 0);
    path_of(p, sizeof p, "u1.npy");
    ck_assert_int_eq(npy_save(p, TS_U8, 3, s3, u), 0);
    path_of(p, sizeof p, "i4.npy");
    ck_assert_int_eq(npy_save(p, TS_I32, 1, s1, i4), 0);
    path_of(p, sizeof p, "f2.npy");
    ck_assert_int_eq(npy_save(p, TS_F16, 1, s1, h), 0);
    path_of(p, sizeof p, "f8.npy");
    ck_assert_int_eq(npy_save(p, TS_F64, 0, NULL, &d8), 0);
    ck_assert_int_eq(run_py("a = np.load('f4.npy'); assert a.dtype == np.float32 and a.shape == (4, 5, 6)\n"
                            "assert (a.ravel() == np.arange(120, dtype=np.float32) * 0.5 - 3).all()\n"
                            "b = np.load('u1.npy'); assert b.dtype == np.uint8 and (b.ravel() == np.arange(120) * 2).all()\n"
                            "c = np.load('i4.npy'); assert c.dtype == np.int32 and list(c) == [-3,-2,-1,0,1,2,2147483647]\n"
                            "e = np.load('f2.npy'); assert e.dtype == np.float16\n"
                            "assert (e == (np.arange(7) / 3.0).astype(np.float16)).all(), e\n"
                            "g = np.load('f8.npy'); assert g.shape == () and g == 3.25\n"),
                     0);
}
END_TEST

START_TEST(test_we_read_numpy) {
    ck_assert_int_eq(run_py("a = (np.arange(2 * 3 * 5, dtype=np.float32) / 7).reshape(2, 3, 5)\n"
                            "np.save('v1.npy', a)\n"
                            "for v in [(2, 0), (3, 0)]:\n"
                            "    with open('v%d.npy' % v[0], 'wb') as f: np.lib.format.write_array(f, a, version=v)\n"
                            "np.save('fortran.npy', np.asfortranarray(a))\n"
                            "np.save('big.npy', a.astype('>f4'))\n"
                            "np.save('i8.npy', np.arange(5, dtype=np.int64))\n"
                            "np.save('bool.npy', np.zeros(3, dtype=bool))\n"
                            "open('trunc.npy', 'wb').write(open('v1.npy', 'rb').read()[:-5])\n"
                            "open('text.npy', 'w').write('hello world, not an array')\n"),
                     0);
    char p[300];
    npy_header h;
    void *d;
    for (int v = 1; v <= 3; v++) {
        char name[16];
        snprintf(name, sizeof name, "v%d.npy", v);
        path_of(p, sizeof p, name);
        ck_assert_int_eq(npy_load(p, &h, &d), 0);
        ck_assert_int_eq(h.version, v);
        ck_assert_int_eq(h.rank, 3);
        ck_assert_int_eq(h.shape[0], 2);
        ck_assert_int_eq(h.shape[1], 3);
        ck_assert_int_eq(h.shape[2], 5);
        const float *f = d;
        for (int i = 0; i < 30; i++) ck_assert_float_eq(f[i], (float)i / 7.0f);
        free(d);
    }
    path_of(p, sizeof p, "i8.npy");
    ck_assert_int_eq(npy_load(p, &h, &d), 0);
    ck_assert_int_eq(h.dtype, TS_I64);
    ck_assert_int_eq(((int64_t *)d)[4], 4);
    free(d);
    struct { const char *name; int code; const char *msg; } bad[] = {
        {"fortran.npy", ERR_UNSUPPORTED, "fortran"},
        {"big.npy", ERR_UNSUPPORTED, "big-endian"},
        {"bool.npy", ERR_UNSUPPORTED, "b1"},
        {"trunc.npy", ERR_INPUT, "truncated"},
        {"text.npy", ERR_INPUT, "not an NPY file"},
        {"missing.npy", ERR_NOTFOUND, "missing.npy"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path_of(p, sizeof p, bad[i].name);
        d = NULL;
        ck_assert_int_eq(npy_load(p, &h, &d), bad[i].code);
        ck_assert_ptr_null(d);
        ck_assert_ptr_nonnull(strstr(err_msg(), bad[i].name));
        ck_assert_msg(strstr(err_msg(), bad[i].msg), "message '%s' lacks '%s'", err_msg(), bad[i].msg);
    }
}
END_TEST

Suite *suite_npy(void) {
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_dict);
    tcase_add_test(tc, test_roundtrip_c);
    tcase_add_test(tc, test_numpy_reads_ours);
    tcase_add_test(tc, test_we_read_numpy);
    suite_add_tcase(s, tc);
    return s;
}
