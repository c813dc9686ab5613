// Hardening of the stages' input (issue 12, items 5-7): no unbounded read (/dev/zero as a source
// or a config, a huge file stopped by SIGTERM while it is hashed), directories given as files
// (exit 2 "is a directory" naming them, in every reader), labels out of range (IDX, NPY, image
// lists), the resize bound, --threads on image lists, and messages that name a config key and
// where it came from. Each case was reproduced by hand before its fix (notes/input.md).
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/npy.h"
#include "common/store.h"
#include "tests/test_util.h"

#define FM "/usr/share/datasets/fashion-mnist/"
#define FM_IMG FM "t10k-images-idx3-ubyte.gz"
#define FM_LAB FM "t10k-labels-idx1-ubyte.gz"

static char errbuf[8192];

static int run_ingest(const char *const *args) { return tu_run_stderr("ingest", args, errbuf, sizeof errbuf); }

// Runs ingest expecting exit 2 and a message holding every one of the NULL-terminated words.
static void expect_2(const char *const *args, const char *const *words) {
    int rc = run_ingest(args);
    ck_assert_msg(rc == 2, "exit %d, expected 2 (%s)", rc, errbuf);
    for (int i = 0; words[i]; i++)
        ck_assert_msg(strstr(errbuf, words[i]) != NULL, "message lacks '%s': %s", words[i], errbuf);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

// Raw IDX files of n 2x2 images and n labels (label[i] = labels[i]).
static void write_idx(const char *img, const char *lab, int n, const uint8_t *labels) {
    unsigned char h[16];
    FILE *f = fopen(img, "wb");
    put_be32(h, 0x803), put_be32(h + 4, (uint32_t)n), put_be32(h + 8, 2), put_be32(h + 12, 2);
    fwrite(h, 1, 16, f);
    for (int i = 0; i < 4 * n; i++) fputc(i & 255, f);
    fclose(f);
    f = fopen(lab, "wb");
    put_be32(h, 0x801), put_be32(h + 4, (uint32_t)n);
    fwrite(h, 1, 8, f);
    fwrite(labels, 1, (size_t)n, f);
    fclose(f);
}

// --- unbounded input -------------------------------------------------------------------------

START_TEST(test_dev_zero) {
    const char *out = tu_path("z.store");
    double t0 = tu_now();
    // before: hashed /dev/zero forever, ignoring SIGTERM
    expect_2((const char *[]){"--format", "idx", "--images", "/dev/zero", "--labels", FM_LAB, "--out", out, NULL},
             (const char *[]){"/dev/zero", "not a regular file", NULL});
    expect_2((const char *[]){"--format", "npy", "--images", "/dev/zero", "--out", out, NULL},
             (const char *[]){"/dev/zero", "not a regular file", NULL});
    // before: read the config without limit (4 GB in 2 s)
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--out", out, "--config",
                              "/dev/zero", NULL},
             (const char *[]){"/dev/zero", "too large for a YAML config", NULL});
    ck_assert_msg(tu_now() - t0 < 20, "took %.1f s", tu_now() - t0);
    tu_assert_not_complete(out);
    // a config given through a pipe still works (read once, bounded)
    char cmd[2048], buf[4096];
    snprintf(cmd, sizeof cmd,
             "%s/ingest --format idx --images %s --labels %s --limit 10 --quiet --out %s --config <(printf "
             "'ingest:\\n  pad: 1\\n') && %s/dstore show %s meta shape",
             tu_bin(), FM_IMG, FM_LAB, out, tu_bin(), out);
    char full[2300];
    snprintf(full, sizeof full, "bash -c \"%s\"", cmd);
    ck_assert_msg(tu_capture(full, buf, sizeof buf) == 0, "%s", buf);
    ck_assert_msg(strstr(buf, "[1,30,30]"), "%s", buf);
}
END_TEST

// A large (sparse) regular file is hashed in 1 MiB steps that poll the interrupt flag: the first
// SIGTERM stops it (exit 3) at once. Before, hashing ran to the end of the file first.
START_TEST(test_sigterm_while_hashing) {
    const char *big = tu_path("big.idx"), *out = tu_path("s.store");
    int fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)12 << 30), 0); // 12 GiB of holes
    close(fd);
    const char *args[] = {"--format", "idx", "--images", big, "--labels", FM_LAB, "--out", out, NULL};
    pid_t pid = tu_start("ingest", args, NULL);
    usleep(400 * 1000);
    double t0 = tu_now();
    kill(pid, SIGTERM);
    int rc = tu_wait(pid);
    double waited = tu_now() - t0;
    tu_read_text(tu_path("stderr.txt"), errbuf, sizeof errbuf);
    ck_assert_msg(rc == 3, "exit %d, expected 3 (%s)", rc, errbuf);
    ck_assert_msg(strstr(errbuf, "interrupted by SIGTERM"), "%s", errbuf);
    ck_assert_msg(waited < 2.0, "took %.2f s to stop", waited);
    unlink(big);
}
END_TEST

// A file over the format's bound is refused before it is read.
START_TEST(test_source_over_limit) {
    const char *img = tu_path("i.idx"), *lab = tu_path("l.idx"), *out = tu_path("o.store");
    uint8_t *labels = calloc(300000, 1);
    write_idx(img, lab, 300000, labels); // 16 + 1.2 MB, over the bound of 100 bytes + 1/256 + 1 MiB
    free(labels);
    const char *env[] = {"DIFFOOD_DS_MAX_BYTES=100", NULL};
    const char *args[] = {"--format", "idx", "--images", img, "--labels", lab, "--out", out, NULL};
    int rc = tu_run("ingest", args, env);
    tu_read_text(tu_path("stderr.txt"), errbuf, sizeof errbuf);
    ck_assert_msg(rc == 2 && strstr(errbuf, "i.idx") && strstr(errbuf, "more than a source file can need"), "exit %d: %s",
                  rc, errbuf);
}
END_TEST

// --- directories given as files --------------------------------------------------------------

START_TEST(test_directories) {
    const char *dir = tu_path("adir"), *out = tu_path("d.store");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    const char *isdir[] = {dir, "is a directory", NULL};
    expect_2((const char *[]){"--format", "idx", "--images", dir, "--labels", FM_LAB, "--out", out, NULL}, isdir);
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", dir, "--out", out, NULL}, isdir);
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--config", dir, "--out",
                              out, NULL},
             isdir);
    expect_2((const char *[]){"--format", "npy", "--images", dir, "--out", out, NULL}, isdir);
    expect_2((const char *[]){"--format", "cifar", "--path", dir, "--out", out, NULL}, isdir);
    expect_2((const char *[]){"--format", "imglist", "--list", dir, "--out", out, NULL}, isdir);
    // a directory inside an image list (named with the list's line)
    ck_assert_int_eq(mkdir(tu_path("root"), 0755), 0);
    ck_assert_int_eq(mkdir(tu_path("root/sub"), 0755), 0);
    const char *list = tu_put("list.txt", "sub 1\n");
    expect_2((const char *[]){"--format", "imglist", "--list", list, "--root", tu_path("root"), "--out", out, NULL},
             (const char *[]){"list.txt:1", "sub", "is a directory", NULL});
    // --root that is a file, mnist-json --path that is a file, a digits file that is a directory
    expect_2((const char *[]){"--format", "imglist", "--list", list, "--root", list, "--out", out, NULL},
             (const char *[]){"--root", "not a directory", NULL});
    expect_2((const char *[]){"--format", "mnist-json", "--path", list, "--out", out, NULL},
             (const char *[]){"list.txt", "not a directory", NULL});
    ck_assert_int_eq(mkdir(tu_path("digits"), 0755), 0);
    ck_assert_int_eq(mkdir(tu_path("digits/0.json"), 0755), 0);
    expect_2((const char *[]){"--format", "mnist-json", "--path", tu_path("digits"), "--out", out, NULL},
             (const char *[]){"0.json", "is a directory", NULL});
    tu_assert_not_complete(out);
    // dstore import --npy DIR (before: "not an NPY file (bad magic)")
    const char *imp[] = {"import", tu_path("i.store"), "t", "--npy", dir, NULL};
    int rc = tu_run_stderr("dstore", imp, errbuf, sizeof errbuf);
    ck_assert_msg(rc == 2 && strstr(errbuf, "is a directory") && strstr(errbuf, "adir"), "exit %d: %s", rc, errbuf);
    // dstore import from a pipe whose header announces 4 TB records (before: "out of memory", exit 1)
    const char *hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4000000000000), }";
    char npy[256];
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10); // version 1.0, header of 118 bytes
    snprintf(npy + 10, sizeof npy - 10, "%-117s\n", hdr);
    tu_write_file(tu_path("huge.npy"), npy, 10 + 118);
    char cmd[1024], buf[2048];
    snprintf(cmd, sizeof cmd, "bash -c '%s/dstore import %s t --npy <(cat %s)'", tu_bin(), tu_path("h.store"),
             tu_path("huge.npy"));
    rc = tu_capture(cmd, buf, sizeof buf);
    ck_assert_msg(rc == 2 && strstr(buf, "more than a pipe may hold"), "exit %d: %s", rc, buf);
}
END_TEST

// --- labels out of range ----------------------------------------------------------------------

START_TEST(test_labels_out_of_range) {
    const char *img = tu_path("i.idx"), *lab = tu_path("l.idx"), *out = tu_path("o.store");
    uint8_t labels[5] = {0, 1, 2, 200, 4};
    write_idx(img, lab, 5, labels);
    const char *args[] = {"--format", "idx", "--images", img, "--labels", lab, "--out", out, NULL};
    expect_2(args, (const char *[]){"l.idx", "label 200 at index 3", "0..9", NULL}); // before: stored
    tu_assert_not_complete(out);
    const char *more[] = {"--format", "idx", "--images", img, "--labels", lab, "--num-classes", "201", "--out", out,
                          "--quiet", NULL};
    ck_assert_msg(run_ingest(more) == 0, "%s", errbuf);
    const char *fewer[] = {"--format", "idx", "--images", img, "--labels", lab, "--num-classes", "3", "--out",
                           tu_path("o3.store"), NULL};
    expect_2(fewer, (const char *[]){"l.idx", "label 200 at index 3", "0..2", NULL});
    // NPY labels: -1 is OOD, 70000 is beyond any class count (before: stored, left out of class_counts)
    uint8_t px[3 * 4] = {0};
    npy_save(tu_path("x.npy"), TS_U8, 3, (int64_t[]){3, 2, 2}, px);
    npy_save(tu_path("y.npy"), TS_I64, 1, (int64_t[]){3}, (int64_t[]){-1, 5, 70000});
    expect_2((const char *[]){"--format", "npy", "--images", tu_path("x.npy"), "--labels", tu_path("y.npy"), "--out",
                              tu_path("n.store"), NULL},
             (const char *[]){"y.npy", "label 70000 at index 2", NULL});
    npy_save(tu_path("y.npy"), TS_I64, 1, (int64_t[]){3}, (int64_t[]){-1, 5, 7});
    expect_2((const char *[]){"--format", "npy", "--images", tu_path("x.npy"), "--labels", tu_path("y.npy"),
                              "--num-classes", "6", "--out", tu_path("n.store"), NULL},
             (const char *[]){"y.npy", "label 7 at index 2", "0..5", NULL});
    // image lists: list:line of the label
    const char *list = tu_put("l.txt", "a.png 1\nb.png 9\n");
    expect_2((const char *[]){"--format", "imglist", "--list", list, "--num-classes", "5", "--out", tu_path("m.store"),
                              NULL},
             (const char *[]){"l.txt:2", "label 9", NULL});
    // --num-classes with a format whose classes are fixed
    expect_2((const char *[]){"--format", "cifar", "--path", img, "--num-classes", "5", "--out", out, NULL},
             (const char *[]){"--num-classes", NULL});
}
END_TEST

// An image of an absurd aspect ratio is refused before its resize allocates (before: "resize:
// cannot allocate 3 x 4096 x -2147483648", exit 1, from an int overflow).
START_TEST(test_resize_bound) {
    uint8_t *px = calloc(1000000, 1);
    tu_write_png(tu_path("w.png"), px, 1, 1000000, PNG_FORMAT_GRAY, NULL, 0);
    free(px);
    const char *list = tu_put("l.txt", "w.png 0\n");
    expect_2((const char *[]){"--format", "imglist", "--list", list, "--root", tu_dir, "--size", "4096", "--out",
                              tu_path("w.store"), NULL},
             (const char *[]){"l.txt:1", "w.png", "1 x 1000000", "over the limit", NULL});
}
END_TEST

// Image lists decode on --threads threads: the same records as one thread, and the first bad
// image in list order is the one named, whatever the threads.
START_TEST(test_threads_imglist) {
    char list[8192] = "", name[64];
    size_t at = 0;
    for (int i = 0; i < 150; i++) {
        int h = 9 + i % 7, w = 11 + i % 5;
        uint8_t px[16 * 16 * 3];
        for (int k = 0; k < h * w * 3; k++) px[k] = (uint8_t)(k * 7 + i * 13);
        snprintf(name, sizeof name, "i%03d.png", i);
        tu_write_png(tu_path(name), px, h, w, PNG_FORMAT_RGB, NULL, 0);
        at += (size_t)snprintf(list + at, sizeof list - at, "%s %d\n", name, i % 10);
    }
    const char *l = tu_put("l.txt", list);
    const char *a1[] = {"--format", "imglist", "--list", l, "--root", tu_dir, "--size", "8", "--threads", "1",
                        "--name", "x", "--quiet", "--out", tu_path("t1.store"), NULL};
    ck_assert_msg(run_ingest(a1) == 0, "%s", errbuf);
    const char *a3[] = {"--format", "imglist", "--list", l, "--root", tu_dir, "--size", "8", "--threads", "3",
                        "--name", "x", "--quiet", "--batch", "70", "--out", tu_path("t3.store"), NULL};
    ck_assert_msg(run_ingest(a3) == 0, "%s", errbuf);
    char cmd[1024], buf[4096];
    snprintf(cmd, sizeof cmd, "%s/dstore diff %s %s", tu_bin(), tu_path("t1.store"), tu_path("t3.store"));
    ck_assert_msg(tu_capture(cmd, buf, sizeof buf) == 0, "%s", buf);
    // two bad images in one chunk: line 71 is named, not line 75, whichever thread fails first
    tu_put("i070.png", "not an image");
    tu_put("i074.png", "\x89PNG\r\n\x1a\n truncated");
    const char *a4[] = {"--format", "imglist", "--list", l, "--root", tu_dir, "--size", "8", "--threads", "4",
                        "--out", tu_path("t4.store"), NULL};
    for (int rep = 0; rep < 3; rep++) {
        expect_2(a4, (const char *[]){"l.txt:71", "i070.png", NULL});
        ck_assert_msg(!strstr(errbuf, "i074"), "%s", errbuf);
    }
}
END_TEST

// --- messages -----------------------------------------------------------------------------------

START_TEST(test_messages) {
    const char *out = tu_path("m.store");
    // a config value is named as the config key, with where it came from
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--set", "ingest.pad=-5",
                              "--out", out, NULL},
             (const char *[]){"config key ingest.pad", "--set ingest.pad=-5", "0..1024", NULL});
    ck_assert_msg(!strstr(errbuf, "--pad "), "%s", errbuf);
    const char *yml = tu_put("c.yml", "ingest:\n  channels: 2\n");
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--config", yml, "--out",
                              out, NULL},
             (const char *[]){"config key ingest.channels", "c.yml:2", NULL});
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--set",
                              "ingest.classes=3-x", "--out", out, NULL},
             (const char *[]){"config key ingest.classes", "--set ingest.classes=3-x", NULL});
    // the option itself is still named as the option
    expect_2((const char *[]){"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--pad", "-5", "--out", out,
                              NULL},
             (const char *[]){"--pad must be 0..1024", NULL});
    // --size 0 is refused as its message says (before: accepted)
    const char *list = tu_put("l.txt", "a.png 1\n");
    expect_2((const char *[]){"--format", "imglist", "--list", list, "--size", "0", "--out", out, NULL},
             (const char *[]){"--size must be 1..65536, not 0", NULL});
    tu_assert_not_complete(out);
    // --threads and --device are taken, as by every stage; the output is the same
    const char *a1[] = {"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--limit", "50", "--quiet",
                        "--threads", "1", "--device", "cpu", "--name", "x", "--out", tu_path("t1.store"), NULL};
    ck_assert_msg(run_ingest(a1) == 0, "%s", errbuf);
    const char *a2[] = {"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--limit", "50", "--quiet",
                        "--name", "x", "--out", tu_path("t2.store"), NULL};
    ck_assert_msg(run_ingest(a2) == 0, "%s", errbuf);
    char cmd[1024], buf[4096];
    snprintf(cmd, sizeof cmd, "%s/dstore diff %s %s", tu_bin(), tu_path("t1.store"), tu_path("t2.store"));
    ck_assert_msg(tu_capture(cmd, buf, sizeof buf) == 0, "%s", buf);
}
END_TEST

// A training rate beyond the range names the range, not only "> 0" (before: "must be > 0, not 1e+30").
START_TEST(test_train_range_message) {
    const char *data = tu_path("d.store");
    const char *a[] = {"--format", "idx", "--images", FM_IMG, "--labels", FM_LAB, "--limit", "20", "--pad", "2",
                       "--quiet", "--out", data, NULL};
    ck_assert_msg(run_ingest(a) == 0, "%s", errbuf);
    const char *t[] = {"--model", "classifier", "--data", data, "--out", tu_path("c.store"), "--config", "tiny",
                       "--set", "train_classifier.lr=1e30", NULL};
    int rc = tu_run_stderr("train", t, errbuf, sizeof errbuf);
    ck_assert_msg(rc == 2 && strstr(errbuf, "train_classifier.lr") && strstr(errbuf, "1e+18") &&
                      strstr(errbuf, "not 1e+30") && strstr(errbuf, "--set train_classifier.lr=1e30"),
                  "exit %d: %s", rc, errbuf);
}
END_TEST

Suite *suite_input_hard(void) {
    Suite *s = suite_create("input_hard");
    TCase *tc = tcase_create("input");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dev_zero);
    tcase_add_test(tc, test_sigterm_while_hashing);
    tcase_add_test(tc, test_source_over_limit);
    tcase_add_test(tc, test_directories);
    tcase_add_test(tc, test_labels_out_of_range);
    tcase_add_test(tc, test_resize_bound);
    tcase_add_test(tc, test_threads_imglist);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_train_range_message);
    suite_add_tcase(s, tc);
    return s;
}
