// bench-store: throughput of the tensor store against plain NPY files on realistic tables:
// 60000 uint8 1x28x28 images (real Fashion-MNIST when installed, else synthetic) and 60000
// float32 512-vectors shaped like ReLU features (non-negative, about half zeros). For each codec
// (and zstd, shuffle-zstd with a dictionary trained on the first batch) it writes the table in
// batches, reads it back in key order through a cursor and by random keys (ts_get_into), and
// writes/reads the same bytes as one NPY file. Prints MB/s (of raw bytes) and
// the compression ratio. Reads are from the page cache (the files were just written). "scan/cpu"
// divides by the process's CPU time instead of wall time (stable on a shared machine).
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cli.h"
#include "common/err.h"
#include "common/npy.h"
#include "common/store.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU seconds of this process (wall-clock rates suffer when the machine is shared).
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Reads n Fashion-MNIST images (IDX, gzip) into px; 1 when read, 0 when the file is absent.
static int load_fmnist(const char *path, uint8_t *px, int n) {
    gzFile g = gzopen(path, "rb");
    if (!g) return 0;
    unsigned char head[16];
    int ok = gzread(g, head, 16) == 16 && head[2] == 8 && head[3] == 3;
    long have = ok ? (long)head[4] << 24 | head[5] << 16 | head[6] << 8 | head[7] : 0;
    ok = ok && have >= n && gzread(g, px, (unsigned)(n * 784)) == n * 784;
    gzclose(g);
    return ok;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_normal(void) {
    double u1 = ((double)(rng_next() >> 11) + 1) / 9007199254740993.0, u2 = (double)(rng_next() >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

typedef struct {
    const char *name;
    ts_dtype dtype;
    int rank;
    int64_t shape[3];
    size_t rec_bytes;
    int n;
    void *data;
} table_spec;

typedef struct {
    double write_mbs, scan_mbs, get_mbs, scan_cpu_mbs, ratio;
    uint64_t file_bytes;
} result;

static int zstd_level = 3;

static int bench_store(const char *dir, const table_spec *t, ts_codec codec, int dict, int batch, result *r) {
    char path[4096];
    int rc = 0;
    ts_store *s = NULL;
    ts_cursor *c = NULL;
    void *buf = malloc(t->rec_bytes);
    ERR_IF(!buf, ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/%s-%s%s.store", dir, t->name, ts_codec_name(codec), dict ? "-dict" : "");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) {}
    double mb = (double)t->rec_bytes * t->n / 1e6;
    double t0 = now();
    ERR_GOTO(rc, ts_open(&s, path, TS_CREATE));
    ts_set_zstd_level(s, zstd_level);
    ERR_GOTO(rc, ts_begin_write(s));
    for (int i = 0; i < t->n; i++) {
        ts_tensor x;
        ERR_GOTO(rc, ts_tensor_init(&x, t->dtype, t->rank, t->shape, (char *)t->data + (size_t)i * t->rec_bytes));
        ts_key k;
        ts_key_u64(&k, (uint64_t)i);
        ERR_GOTO(rc, ts_put(s, t->name, &k, &x, codec));
        if ((i + 1) % batch == 0 || i + 1 == t->n) {
            ERR_GOTO(rc, ts_commit(s));
            if (dict && i + 1 == batch) ERR_GOTO(rc, ts_dict_train(s, t->name, 0, 0, NULL));
            if (i + 1 < t->n) ERR_GOTO(rc, ts_begin_write(s));
        }
    }
    ts_close(s);
    s = NULL;
    r->write_mbs = mb / (now() - t0);
    // scan in key order
    ERR_GOTO(rc, ts_open(&s, path, TS_RDONLY));
    t0 = now();
    double c0 = cpu_now();
    ERR_GOTO(rc, ts_cursor_open(s, t->name, &c));
    int got = 0;
    uint64_t check = 0;
    while ((rc = ts_cursor_next(c, NULL)) == 1) {
        ts_tensor x;
        ERR_GOTO(rc, ts_cursor_get(c, &x, buf, t->rec_bytes));
        ERR_GOTO_IF(rc, memcmp(buf, (char *)t->data + (size_t)got * t->rec_bytes, t->rec_bytes) != 0, ERR_INTERNAL,
                    "%s: record %d read back wrong", path, got);
        check += ((uint8_t *)buf)[0];
        got++;
    }
    ERR_GOTO(rc, rc);
    r->scan_mbs = mb / (now() - t0);
    r->scan_cpu_mbs = mb / (cpu_now() - c0);
    ts_cursor_close(c);
    c = NULL;
    ERR_GOTO_IF(rc, got != t->n, ERR_INTERNAL, "%s: %d records read, %d written", path, got, t->n);
    // random gets
    t0 = now();
    for (int i = 0; i < t->n; i++) {
        ts_key k;
        ts_key_u64(&k, rng_next() % (uint64_t)t->n);
        ts_tensor x;
        ERR_GOTO(rc, ts_get_into(s, t->name, &k, &x, buf, t->rec_bytes));
        check += ((uint8_t *)buf)[1];
    }
    r->get_mbs = mb / (now() - t0);
    ts_table_stat st;
    ERR_GOTO(rc, ts_stat(s, t->name, 1, &st));
    r->ratio = (double)st.raw_bytes / (double)st.stored_bytes;
    ts_env_info env;
    ERR_GOTO(rc, ts_env_stat(s, &env));
    r->file_bytes = env.file_bytes;
    if (check == 1) fprintf(stderr, " "); // keep the reads
fail:
    ts_cursor_close(c);
    ts_close(s);
    free(buf);
    if (system(cmd) != 0) {}
    return rc;
}

static int bench_npy(const char *dir, const table_spec *t, result *r) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, t->name);
    int64_t shape[4] = {t->n};
    for (int i = 0; i < t->rank; i++) shape[1 + i] = t->shape[i];
    double mb = (double)t->rec_bytes * t->n / 1e6;
    double t0 = now();
    ERR_TRY(npy_save(path, t->dtype, t->rank + 1, shape, t->data));
    r->write_mbs = mb / (now() - t0);
    t0 = now();
    double c0 = cpu_now();
    npy_header h;
    void *d;
    ERR_TRY(npy_load(path, &h, &d));
    r->scan_mbs = mb / (now() - t0);
    r->scan_cpu_mbs = mb / (cpu_now() - c0);
    int same = !memcmp(d, t->data, h.nbytes);
    free(d);
    r->get_mbs = 0;
    r->ratio = 1;
    r->file_bytes = h.nbytes + h.data_offset;
    unlink(path);
    ERR_IF(!same, ERR_INTERNAL, "%s: read back wrong", path);
    return 0;
}

int main(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"n", "N", 0, "records per table (default 60000)"},
        {"dir", "DIR", 0, "where to write the temporary stores and files (default /tmp)"},
        {"batch", "N", 0, "records per commit (default 1000)"},
        {"level", "N", 0, "zstd level (default 3)"},
        {"images", "FILE", 0, "IDX images (.gz) (default /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz)"},
        {0}};
    static const cli_spec spec = {"bench-store", "[--n N] [--dir DIR]",
                                  "Measures tensor store write/read throughput per codec against plain NPY files.",
                                  opts, 0, 0, 0};
    cli_args *a = NULL;
    int rc = cli_parse(&a, &spec, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, &spec);
        cli_args_free(a);
        return 0;
    }
    table_spec tabs[2] = {{"image", TS_U8, 3, {1, 28, 28}, 784, 0, NULL}, {"feature", TS_F32, 1, {512}, 2048, 0, NULL}};
    long n = 60000, batch = 1000;
    char tmpl[4200] = "";
    if (rc < 0) goto fail;
    ERR_GOTO(rc, cli_get_int(a, "n", 60000, &n));
    ERR_GOTO(rc, cli_get_int(a, "batch", 1000, &batch));
    long level;
    ERR_GOTO(rc, cli_get_int(a, "level", 3, &level));
    ERR_GOTO_IF(rc, level < 1 || level > 19, ERR_USAGE, "--level must be 1..19");
    zstd_level = (int)level;
    ERR_GOTO_IF(rc, n < 1 || n > 60000 || batch < 1, ERR_USAGE, "--n must be 1..60000 and --batch >= 1");
    const char *images = cli_get(a, "images");
    if (!images) images = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    snprintf(tmpl, sizeof tmpl, "%s/bench-store.XXXXXX", cli_get(a, "dir") ? cli_get(a, "dir") : "/tmp");
    ERR_GOTO_IF(rc, !mkdtemp(tmpl), ERR_IO, "%s: cannot create a directory", tmpl);
    for (int i = 0; i < 2; i++) {
        tabs[i].n = (int)n;
        tabs[i].data = malloc(tabs[i].rec_bytes * (size_t)n);
        ERR_GOTO_IF(rc, !tabs[i].data, ERR_NOMEM, "out of memory");
    }
    int real = load_fmnist(images, tabs[0].data, (int)n);
    if (!real) { // synthetic: a blob of texture on a black background
        uint8_t *p = tabs[0].data;
        for (long i = 0; i < n * 784; i++) {
            int x = (int)(i % 28), y = (int)(i / 28 % 28);
            int inside = (x - 14) * (x - 14) + (y - 14) * (y - 14) < 100;
            p[i] = inside ? (uint8_t)(128 + rng_next() % 128) : 0;
        }
    }
    float *f = tabs[1].data;
    for (long i = 0; i < n * 512; i++) {
        double v = rng_normal() * (1.0 + (double)(i % 512) / 256.0) - 0.1;
        f[i] = v > 0 ? (float)v : 0.0f;
    }
    printf("bench-store: %ld records per table, zstd level %d, images: %s; %s\n", n, zstd_level, real ? images : "synthetic",
           "MB/s of raw bytes (1 MB = 1e6 B); reads from the page cache");
    printf("%-8s %-23s %8s %8s %8s %9s %8s %12s\n", "table", "path", "write", "scan", "get", "scan/cpu", "ratio",
           "file bytes");
    for (int i = 0; i < 2; i++) {
        result r = {0};
        for (int c = 0; c < TS_CODEC_COUNT + 2; c++) {
            // the codecs, then zstd and shuffle-zstd with a dictionary trained on the first batch
            ts_codec codec = c < TS_CODEC_COUNT ? (ts_codec)c : (ts_codec)(c - TS_CODEC_COUNT + 1);
            int dict = c >= TS_CODEC_COUNT;
            ERR_GOTO(rc, bench_store(tmpl, &tabs[i], codec, dict, (int)batch, &r));
            char label[32];
            snprintf(label, sizeof label, "%s%s", ts_codec_name(codec), dict ? "+dict" : "");
            printf("%-8s store %-17s %8.1f %8.1f %8.1f %9.1f %7.2fx %12" PRIu64 "\n", tabs[i].name, label,
                   r.write_mbs, r.scan_mbs, r.get_mbs, r.scan_cpu_mbs, r.ratio, r.file_bytes);
            fflush(stdout);
        }
        ERR_GOTO(rc, bench_npy(tmpl, &tabs[i], &r));
        printf("%-8s %-23s %8.1f %8.1f %8s %9.1f %7.2fx %12" PRIu64 "\n", tabs[i].name, "npy file", r.write_mbs,
               r.scan_mbs, "-", r.scan_cpu_mbs, r.ratio, r.file_bytes);
    }
fail:
    for (int i = 0; i < 2; i++) free(tabs[i].data);
    if (tmpl[0] && strstr(tmpl, "bench-store.")) rmdir(tmpl);
    cli_args_free(a);
    return cli_fail(rc);
}
