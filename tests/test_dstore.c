// Tests of bin/dstore ($DIFFOOD_BIN): import of numpy-written files, export read back by numpy,
// ls/info/show output, verify on a damaged store, diff, merge, and exit status 2 for bad input.
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/err.h"
#include "common/store.h"
#include "tests/test_util.h"

static char out[1 << 16]; // stdout + stderr of the last run

// Runs a shell command in tu_dir with $DS = the dstore binary and $PY = python; captures output
// into `out`; returns the exit status.
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[4096], full[5000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && export DS='%s/dstore' PY='%s' && { %s ; }", tu_dir, tu_bin(), tu_python(),
             cmd);
    return tu_capture(full, out, sizeof out);
}

#define HAS(text) ck_assert_msg(strstr(out, text), "output lacks '%s':\n%s", text, out)

static void make_arrays(void) {
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "rng = np.random.default_rng(1)\n"
                        "np.save('img.npy', rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8))\n"
                        "f = np.maximum(rng.standard_normal((30, 64)).astype(np.float32), 0); f[3, 5] = np.nan\n"
                        "np.save('feat.npy', f)\n"
                        "np.save('lab.npy', np.arange(20, dtype=np.int32) %% 10)\n"
                        "np.save('h.npy', rng.standard_normal((4, 8)).astype(np.float16))\n"
                        "\""),
                     0);
}

START_TEST(test_import_export_numpy) {
    make_arrays();
    const char *codecs[] = {"raw", "zstd", "shuffle-zstd"};
    for (int c = 0; c < 3; c++) {
        ck_assert_int_eq(sh("$DS import s%d image --npy img.npy --codec %s && $DS import s%d feature --npy feat.npy "
                            "--codec %s && $DS import s%d label --npy lab.npy && $DS import s%d half --npy h.npy --codec %s",
                            c, codecs[c], c, codecs[c], c, c, codecs[c]),
                         0);
        ck_assert_int_eq(sh("$DS export s%d image --npy e_img.npy && $DS export s%d feature --npy e_feat.npy && "
                            "$DS export s%d label --npy e_lab.npy && $DS export s%d half --npy e_h.npy && "
                            "$DS export s%d feature --key 3 --npy e_one.npy",
                            c, c, c, c, c),
                         0);
        ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                            "for a, b in [('img', 'e_img'), ('feat', 'e_feat'), ('lab', 'e_lab'), ('h', 'e_h')]:\n"
                            "    x, y = np.load(a + '.npy'), np.load(b + '.npy')\n"
                            "    assert x.dtype == y.dtype and x.shape == y.shape, (a, x.dtype, y.dtype, x.shape, y.shape)\n"
                            "    assert np.array_equal(x, y, equal_nan=True), a\n"
                            "one = np.load('e_one.npy'); assert one.shape == (64,)\n"
                            "assert np.array_equal(one, np.load('feat.npy')[3], equal_nan=True)\n"
                            "\""),
                         0);
    }
    // the records themselves, read through the library
    char path[300];
    snprintf(path, sizeof path, "%s/s2", tu_dir);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, TS_RDONLY), 0);
    ts_key k;
    ts_tensor t;
    ts_key_u64(&k, 19);
    ck_assert_int_eq(ts_get(s, "image", &k, &t), 0);
    ck_assert_int_eq(t.dtype, TS_U8);
    ck_assert_int_eq(t.rank, 3);
    ck_assert_int_eq(t.shape[2], 28);
    ts_tensor_free(&t);
    ck_assert_int_eq(ts_get(s, "label", &k, &t), 0);
    ck_assert_int_eq(t.rank, 0);
    ck_assert_int_eq(*(int32_t *)t.data, 9);
    ts_tensor_free(&t);
    ts_close(s);
    // with a dictionary trained on the first batch
    ck_assert_int_eq(sh("$DS import sd feature --npy feat.npy --dict --batch 10 && $DS info sd && $DS verify sd && "
                        "$DS export sd feature --npy d_feat.npy && $PY -c \"import numpy as np\n"
                        "assert np.array_equal(np.load('feat.npy'), np.load('d_feat.npy'), equal_nan=True)\""),
                     0);
    HAS("zstd+dict");
    // importing into an existing table needs --force
    ck_assert_int_eq(sh("$DS import s0 label --npy lab.npy"), 2);
    HAS("--force");
    ck_assert_int_eq(sh("$DS import s0 label --npy h.npy --force && $DS ls s0"), 0);
    HAS("label");
    ck_assert_int_eq(sh("$DS show s0 label 3 --json"), 0);
    HAS("\"dtype\":\"f16\"");
}
END_TEST

START_TEST(test_ls_info_show) {
    make_arrays();
    ck_assert_int_eq(sh("$DS import s feature --npy feat.npy --codec shuffle-zstd && $DS import s image --npy img.npy"), 0);
    ck_assert_int_eq(sh("$DS ls s"), 0);
    HAS("feature");
    HAS("30");
    ck_assert_int_eq(sh("$DS ls s --json"), 0);
    HAS("{\"name\":\"feature\",\"records\":30}");
    HAS("{\"name\":\"image\",\"records\":20}");
    ck_assert_int_eq(sh("$DS info s"), 0);
    HAS("f32 (64)");
    HAS("u8 (1, 28, 28)");
    HAS("ts.format: diffood-tensor-store 2");
    ck_assert_int_eq(sh("$DS info s --json"), 0);
    HAS("\"raw_bytes\":7680");
    HAS("\"shape\":[1,28,28]");
    // a table of mixed layouts
    ck_assert_int_eq(sh("$DS import t x --npy feat.npy && $DS export s image --key 0 --npy one.npy"), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/t", tu_dir);
    ts_store *s;
    ck_assert_int_eq(ts_open(&s, path, 0), 0);
    int64_t shape[2] = {2, 2};
    float v[4] = {1, 2, 3, 4};
    ts_tensor t;
    ck_assert_int_eq(ts_tensor_init(&t, TS_F32, 2, shape, v), 0);
    ts_key k;
    ts_key_u64(&k, 100);
    ck_assert_int_eq(ts_put(s, "x", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_key_str(&k, "conv_in.weight"), 0);
    ck_assert_int_eq(ts_put(s, "param", &k, &t, TS_CODEC_RAW), 0);
    ck_assert_int_eq(ts_meta_put(s, "stage", "ingest"), 0);
    ts_close(s);
    ck_assert_int_eq(sh("$DS info t"), 0);
    HAS("mixed");
    HAS("stage: ingest");
    ck_assert_int_eq(sh("$DS export t x --npy mixed.npy"), 2);
    HAS("mixes layouts");
    ck_assert_int_eq(sh("$DS show t param conv_in.weight --values"), 0);
    HAS("f32 (2, 2)");
    HAS("min 1  max 4  mean 2.5  NaN 0");
    HAS("1 2");
    ck_assert_int_eq(sh("$DS show s feature 3 --json --values 0"), 0);
    HAS("\"nan\":1");
    HAS("\"values\":[");
    ck_assert_int_eq(sh("$DS show t meta stage"), 0);
    HAS("ingest");
    // help and usage errors
    const char *cmds[] = {"ls", "info", "show", "export", "import", "verify", "diff", "merge"};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(sh("$DS %s --help", cmds[i]), 0);
        HAS("usage");
        ck_assert_int_eq(sh("$DS %s s --nonsense", cmds[i]), 2);
        HAS("nonsense");
    }
    ck_assert_int_eq(sh("$DS --help"), 0);
    ck_assert_int_eq(sh("$DS frobnicate s"), 2);
    ck_assert_int_eq(sh("$DS export s feature"), 2);
    HAS("--npy");
    ck_assert_int_eq(sh("$DS import s f2 --npy feat.npy --codec lz4"), 2);
    HAS("lz4");
}
END_TEST

START_TEST(test_verify_damage) {
    // records of random bytes, stored raw: a run of 64 of them identifies a record in data.mdb
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "a = np.random.default_rng(5).integers(0, 256, (12, 4000), dtype=np.uint8)\n"
                        "np.save('v.npy', a)\""),
                     0);
    ck_assert_int_eq(sh("$DS import s v --npy v.npy --codec raw && $DS verify s"), 0);
    HAS("OK");
    ck_assert_int_eq(sh("cp -r s copy && $DS diff s copy"), 0);
    HAS("SAME");
    // flip one byte in the payload of record 5 (every copy of its bytes in the file)
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "d = bytearray(open('s/data.mdb', 'rb').read())\n"
                        "pat = bytes(np.load('v.npy')[5][100:164])\n"
                        "i = d.find(pat); n = 0\n"
                        "while i >= 0:\n"
                        "    d[i + 30] ^= 0x40; n += 1; i = d.find(pat, i + 1)\n"
                        "assert n >= 1\n"
                        "open('s/data.mdb', 'wb').write(d)\""),
                     0);
    ck_assert_int_eq(sh("$DS verify s"), 1);
    HAS("BAD table v key 5");
    HAS("checksum");
    ck_assert(!strstr(out, "key 4:"));
    ck_assert_int_eq(sh("$DS verify s --json"), 1);
    HAS("\"bad\":1");
    HAS("\"key\":\"5\"");
    ck_assert_int_eq(sh("$DS show s v 5"), 2);
    HAS("key 5");
    HAS("corrupt");
    ck_assert_int_eq(sh("$DS show s v 4"), 0);
    ck_assert_int_eq(sh("$DS export s v --npy x.npy"), 2);
    HAS("key 5");
}
END_TEST

// Damage to LMDB's own structure (a branch page's child pointer) is reported, not a silent crash.
START_TEST(test_verify_btree_damage) {
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "np.save('b.npy', np.random.default_rng(2).integers(0, 9, (400, 100), dtype=np.uint8))\" && "
                        "$DS import s t --npy b.npy --codec raw --batch 100000 && $DS verify s"),
                     0);
    ck_assert_int_eq(sh("$PY -c \"import struct\n"
                        "d = bytearray(open('s/data.mdb', 'rb').read()); n = 0\n"
                        "for i in range(2, len(d) // 4096):\n"
                        "    o = i * 4096\n"
                        "    pgno, flags, lower = struct.unpack_from('<QxxHH', d, o)\n"
                        "    if pgno == i and flags & 1 and lower > 16:  # a branch page\n"
                        "        node = o + struct.unpack_from('<H', d, o + 16)[0]\n"
                        "        struct.pack_into('<H', d, node + 4, 0x7fff); n += 1  # child page far away\n"
                        "assert n >= 1, n\n"
                        "open('s/data.mdb', 'wb').write(d)\""),
                     0);
    int rc = sh("$DS verify s"); // an LMDB error on the page (1, listed) or a crash inside LMDB (2, named)
    ck_assert_msg((rc == 1 && strstr(out, "BAD table t")) || (rc == 2 && strstr(out, "data.mdb is damaged")),
                  "exit %d:\n%s", rc, out);
    HAS(" s");
}
END_TEST

// Random bit flips anywhere in data.mdb: verify always ends with 0 (the flips hit unused space:
// then every record reads back exactly), 1 (damage reported) or 2 (not openable), never a signal.
START_TEST(test_verify_fuzz) {
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "r = np.random.default_rng(4)\n"
                        "np.save('a.npy', r.integers(0, 4, (300, 60), dtype=np.uint8))\n"
                        "np.save('f.npy', np.maximum(r.standard_normal((50, 700)), 0).astype(np.float32))\" && "
                        "$DS import s a --npy a.npy --batch 50 && $DS import s f --npy f.npy --codec shuffle-zstd && "
                        "$DS import s f2 --npy f.npy --codec raw && $DS verify s"),
                     0);
    ck_assert_int_eq(sh("$PY -c \"import os, random, shutil, subprocess, numpy as np\n"
                        "random.seed(7); ds = os.environ['DS']; seen = {}\n"
                        "for it in range(120):\n"
                        "    shutil.rmtree('z', ignore_errors=True); shutil.copytree('s', 'z')\n"
                        "    d = bytearray(open('z/data.mdb', 'rb').read())\n"
                        "    for _ in range(random.choice([1, 1, 2, 8])):\n"
                        "        d[random.randrange(len(d))] ^= 1 << random.randrange(8)\n"
                        "    open('z/data.mdb', 'wb').write(d)\n"
                        "    rc = subprocess.run([ds, 'verify', 'z'], capture_output=True).returncode\n"
                        "    seen[rc] = seen.get(rc, 0) + 1\n"
                        "    assert rc in (0, 1, 2), (it, rc)\n"
                        "    if rc == 0:\n"
                        "        for t, src in [('a', 'a.npy'), ('f', 'f.npy'), ('f2', 'f.npy')]:\n"
                        "            subprocess.run([ds, 'export', 'z', t, '--npy', 'x.npy'], check=True, capture_output=True)\n"
                        "            assert np.array_equal(np.load('x.npy'), np.load(src)), (it, t)\n"
                        "print(seen)\n"
                        "assert seen.get(1, 0) > 30\""),
                     0);
    HAS("{");
}
END_TEST

START_TEST(test_diff) {
    make_arrays();
    ck_assert_int_eq(sh("$DS import a feature --npy feat.npy && $DS import b feature --npy feat.npy --codec raw"), 0);
    ck_assert_int_eq(sh("$DS diff a b"), 0); // codecs differ, values do not
    HAS("SAME");
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "f = np.load('feat.npy'); f[7, 2] += 0.001; np.save('feat2.npy', f[:29])\""),
                     0);
    ck_assert_int_eq(sh("$DS import c feature --npy feat2.npy && $DS import c extra --npy lab.npy"), 0);
    ck_assert_int_eq(sh("$DS diff a c"), 1);
    HAS("feature key 7");
    HAS("feature key 29: only in A");
    HAS("table extra: only in B");
    HAS("DIFFERENT");
    ck_assert_int_eq(sh("$DS diff a c --json"), 1);
    HAS("\"same\":false");
    HAS("\"differ\":1");
    ck_assert_int_eq(sh("$DS import d feature --npy feat2.npy"), 0);
    ck_assert_int_eq(sh("$DS diff a d --tol 0.01"), 1); // only the missing key 29 remains
    ck_assert(!strstr(out, "key 7"));
    ck_assert_int_eq(sh("$DS import e feature --npy feat.npy --codec shuffle-zstd"), 0);
    ck_assert_int_eq(sh("$DS diff a e --tol 0.5"), 0);
    ck_assert_int_eq(sh("$DS diff a nothere"), 2);
}
END_TEST

START_TEST(test_merge) {
    ck_assert_int_eq(sh("$PY -c \"import numpy as np\n"
                        "a = np.arange(60, dtype=np.float32).reshape(20, 3)\n"
                        "np.save('all.npy', a); np.save('head.npy', a[:12])\n"
                        "b = a.copy(); b[5, 1] = -1; np.save('bad.npy', b[:8])\""),
                     0);
    // shard 1 holds keys 0..11; shard 2 all 20 (overlap with equal content is fine)
    ck_assert_int_eq(sh("$DS import s1 f --npy head.npy && $DS import s2 f --npy all.npy --codec raw && "
                        "$DS import s2 g --npy head.npy && $DS import whole f --npy all.npy && "
                        "$DS import whole g --npy head.npy"),
                     0);
    ck_assert_int_eq(sh("$DS merge out s1 s2 --json"), 0);
    HAS("\"added\":32");
    HAS("\"present\":12");
    ck_assert_int_eq(sh("$DS diff out whole && $DS verify out"), 0);
    // a key with other content is a conflict and leaves the output as it was
    ck_assert_int_eq(sh("$DS import s3 f --npy bad.npy && $DS merge out s3"), 2);
    HAS("key 5");
    ck_assert_int_eq(sh("$DS diff out whole"), 0);
    ck_assert_int_eq(sh("$DS merge out out"), 2);
    ck_assert_int_eq(sh("$DS merge out2 s1 nothere"), 2);
    HAS("nothere");
    ck_assert_int_eq(sh("test -e out2"), 1); // nothing created when an input is missing
}
END_TEST

START_TEST(test_bad_inputs) {
    make_arrays();
    ck_assert_int_eq(sh("$DS import s feature --npy feat.npy --codec raw"), 0);
    ck_assert_int_eq(sh("$DS ls nothere"), 2);
    HAS("nothere");
    ck_assert_int_eq(sh("echo hi > plain && $DS ls plain"), 2);
    HAS("plain");
    ck_assert_int_eq(sh("mkdir -p junk && head -c 65536 /dev/urandom > junk/data.mdb && $DS info junk"), 2);
    HAS("junk");
    ck_assert_int_eq(sh("cp -r s tr && truncate -s 12288 tr/data.mdb && $DS verify tr"), 2);
    HAS("truncated");
    ck_assert_int_eq(sh("$DS show s nosuch 1"), 2);
    HAS("no table 'nosuch'");
    ck_assert_int_eq(sh("$DS show s feature 1000"), 2);
    HAS("has no key 1000");
    ck_assert_int_eq(sh("$DS export s nosuch --npy x.npy"), 2);
    ck_assert_int_eq(sh("$DS import s x --npy missing.npy"), 2);
    HAS("missing.npy");
    ck_assert_int_eq(sh("$DS import s x --npy plain"), 2);
    HAS("not an NPY file");
    ck_assert_int_eq(sh("$DS import plain x --npy feat.npy"), 2);
    // failed imports leave the store unchanged
    ck_assert_int_eq(sh("$DS ls s --json"), 0);
    HAS("\"tables\":[{\"name\":\"feature\",\"records\":30}]");
}
END_TEST

Suite *suite_dstore(void) {
    Suite *s = suite_create("dstore");
    TCase *tc = tcase_create("dstore");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_import_export_numpy);
    tcase_add_test(tc, test_ls_info_show);
    tcase_add_test(tc, test_verify_damage);
    tcase_add_test(tc, test_verify_btree_damage);
    tcase_add_test(tc, test_verify_fuzz);
    tcase_add_test(tc, test_diff);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    return s;
}
