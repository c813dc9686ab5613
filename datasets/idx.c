// idx: MNIST/Fashion-MNIST IDX reader (gzip or raw) with header checks before allocation.
#include "datasets/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/err.h"
#include "common/infile.h"

#define IDX_MAX_RATIO 1032u // deflate's largest expansion of compressed to raw bytes

typedef struct {
    const char *path;
    gzFile gz;
    int gzip;          // 1 when the file is gzip-compressed
    uint64_t fsize;    // bytes on disk
    uint32_t isize;    // gzip trailer: raw length mod 2^32
} idx_file;

static int idx_open(idx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd;
    ERR_TRY(infile_open(path, &fd, &f->fsize));
    unsigned char head[2] = {0, 0}, tail[4] = {0, 0, 0, 0};
    if (pread(fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b) {
        f->gzip = 1;
        if (f->fsize < 18 || pread(fd, tail, 4, (off_t)(f->fsize - 4)) != 4) {
            close(fd);
            return err_set(ERR_CORRUPT, "%s: truncated gzip file (%llu bytes)", path, (unsigned long long)f->fsize);
        }
        f->isize = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    }
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return err_set(ERR_NOMEM, "%s: cannot start zlib", path);
    }
    gzbuffer(f->gz, 1 << 17);
    return 0;
}

static void idx_close(idx_file *f) {
    if (f->gz) gzclose_r(f->gz);
    f->gz = NULL;
}

// Reads exactly n bytes; a short read is a truncated/corrupt stream.
static int idx_read_exact(idx_file *f, void *dst, uint64_t n, const char *what) {
    unsigned char *p = dst;
    while (n > 0) {
        ERR_TRY(ds_poll());
        unsigned chunk = n > (1u << 24) ? (1u << 24) : (unsigned)n;
        int got = gzread(f->gz, p, chunk);
        if (got <= 0 || (unsigned)got < chunk) {
            int zerr = Z_OK;
            const char *msg = gzerror(f->gz, &zerr);
            if (got < 0 || zerr != Z_OK)
                return err_set(ERR_CORRUPT, "%s: corrupt or truncated %s while reading %s: %s", f->path,
                               f->gzip ? "gzip stream" : "file", what, msg && *msg ? msg : "read error");
            return err_set(ERR_CORRUPT, "%s: truncated: the file ends inside the %s", f->path, what);
        }
        p += got;
        n -= (uint64_t)got;
    }
    return 0;
}

static uint32_t idx_be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

// Reads the header of an IDX file with `ndims` dimensions of type ubyte (code 0x08) and
// checks the announced payload against the file.
static int idx_header(idx_file *f, int ndims, uint32_t *dims) {
    unsigned char b[4 * 4];
    ERR_TRY(idx_read_exact(f, b, 4 + 4 * (uint64_t)ndims, "header"));
    uint32_t magic = idx_be32(b), want = 0x0800u | (uint32_t)ndims;
    ERR_IF(magic != want, ERR_INPUT, "%s: wrong IDX magic 0x%08x (expected 0x%08x: %s)", f->path, magic, want,
           ndims == 3 ? "idx3-ubyte images" : "idx1-ubyte labels");
    uint64_t payload = 1;
    for (int i = 0; i < ndims; i++) {
        dims[i] = idx_be32(b + 4 + 4 * i);
        ERR_IF(dims[i] == 0, ERR_INPUT, "%s: dimension %d is 0 in the header", f->path, i);
        payload *= dims[i]; // < 2^40 * 2^32: cannot wrap
        ERR_IF(payload > ((uint64_t)1 << 40), ERR_INPUT, "%s: header dimensions announce more than 2^40 bytes",
               f->path);
    }
    uint64_t total = payload + 4 + 4 * (uint64_t)ndims;
    if (!f->gzip) {
        ERR_IF(total != f->fsize, ERR_INPUT,
               "%s: header announces %llu bytes of data (file of %llu bytes) but the file has %llu bytes", f->path,
               (unsigned long long)payload, (unsigned long long)total, (unsigned long long)f->fsize);
    } else {
        ERR_IF(total / IDX_MAX_RATIO > f->fsize, ERR_INPUT,
               "%s: header announces %llu bytes of data, more than a %llu-byte gzip file can hold", f->path,
               (unsigned long long)payload, (unsigned long long)f->fsize);
        ERR_IF((uint32_t)total != f->isize, ERR_INPUT,
               "%s: header announces %llu bytes in all but the gzip trailer says %u (mod 2^32): truncated or "
               "mismatched file",
               f->path, (unsigned long long)total, f->isize);
    }
    return 0;
}

static int idx_expect_end(idx_file *f) {
    unsigned char extra;
    int got = gzread(f->gz, &extra, 1);
    ERR_IF(got > 0, ERR_INPUT, "%s: data continues after the bytes the header announces", f->path);
    int zerr = Z_OK;
    const char *msg = gzerror(f->gz, &zerr);
    ERR_IF(got < 0 || zerr != Z_OK, ERR_CORRUPT, "%s: corrupt end of gzip stream: %s", f->path, msg);
    return 0;
}

int idx_read(ds_images *out, const char *images_path, const char *labels_path) {
    int rc = 0;
    idx_file fi, fl;
    memset(out, 0, sizeof *out);
    memset(&fl, 0, sizeof fl);
    uint32_t di[3] = {0, 0, 0}, dl[1] = {0};
    unsigned char *lab = NULL;
    ERR_GOTO(rc, idx_open(&fi, images_path));
    ERR_GOTO(rc, idx_open(&fl, labels_path));
    ERR_GOTO(rc, idx_header(&fi, 3, di));
    ERR_GOTO(rc, idx_header(&fl, 1, dl));
    ERR_GOTO_IF(rc, di[0] != dl[0], ERR_INPUT, "%s: %u images but %s has %u labels", images_path, di[0], labels_path,
                dl[0]);
    ERR_GOTO(rc, ds_images_alloc(out, images_path, di[0], 1, (int)di[1], (int)di[2]));
    ERR_GOTO(rc, idx_read_exact(&fi, out->pixels, (uint64_t)di[0] * di[1] * di[2], "image data"));
    ERR_GOTO(rc, idx_expect_end(&fi));
    lab = malloc(dl[0]);
    ERR_GOTO_IF(rc, !lab, ERR_NOMEM, "%s: cannot allocate %u labels", labels_path, dl[0]);
    ERR_GOTO(rc, idx_read_exact(&fl, lab, dl[0], "labels"));
    ERR_GOTO(rc, idx_expect_end(&fl));
    for (uint32_t i = 0; i < dl[0]; i++) out->labels[i] = lab[i];
fail:
    free(lab);
    idx_close(&fi);
    idx_close(&fl);
    if (rc < 0) ds_images_free(out);
    return rc;
}
