// npy: NumPy .npy header parsing/writing and whole-array load/save (see npy.h).
#include "common/npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/infile.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

int64_t npy_numel(const npy_header *h) {
    int64_t n = 1;
    for (int i = 0; i < h->rank; i++) n *= h->shape[i];
    return n;
}

// --- parsing the header dictionary (a Python literal) --------------------------------------------
typedef struct {
    const char *p, *end, *what, *start;
} npy_lex;

static void skip_ws(npy_lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static int expect(npy_lex *l, char c) {
    skip_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 0;
    }
    return err_set(ERR_INPUT, "%s: malformed NPY header: expected '%c' at offset %td", l->what, c,
                   l->p - l->start);
}

// A quoted string into buf (cap bytes).
static int parse_str(npy_lex *l, char *buf, size_t cap) {
    skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
        return err_set(ERR_INPUT, "%s: malformed NPY header: expected a quoted string", l->what);
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (n + 1 >= cap) return err_set(ERR_INPUT, "%s: malformed NPY header: string too long", l->what);
        buf[n++] = *l->p++;
    }
    if (l->p >= l->end) return err_set(ERR_INPUT, "%s: malformed NPY header: unterminated string", l->what);
    l->p++;
    buf[n] = 0;
    return 0;
}

static int parse_shape(npy_lex *l, npy_header *h) {
    ERR_TRY(expect(l, '('));
    h->rank = 0;
    for (;;) {
        skip_ws(l);
        if (l->p < l->end && *l->p == ')') {
            l->p++;
            return 0;
        }
        if (l->p >= l->end || *l->p < '0' || *l->p > '9')
            return err_set(ERR_INPUT, "%s: malformed NPY header: bad shape", l->what);
        int64_t v = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return err_set(ERR_INPUT, "%s: NPY shape dimension too large", l->what);
            v = v * 10 + (*l->p++ - '0');
        }
        if (l->p < l->end && *l->p == 'L') l->p++; // Python 2 longs
        if (h->rank >= NPY_MAX_RANK)
            return err_set(ERR_UNSUPPORTED, "%s: NPY arrays of rank > %d are not supported", l->what, NPY_MAX_RANK);
        h->shape[h->rank++] = v;
        skip_ws(l);
        if (l->p < l->end && *l->p == ',') l->p++;
        else if (!(l->p < l->end && *l->p == ')'))
            return err_set(ERR_INPUT, "%s: malformed NPY header: bad shape", l->what);
    }
}

int npy_parse_dict(const char *dict, size_t len, npy_header *h, const char *what) {
    npy_lex l = {dict, dict + len, what, dict};
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char descr[32] = "";
    memset(h->shape, 0, sizeof h->shape);
    h->rank = 0;
    ERR_TRY(expect(&l, '{'));
    for (;;) {
        skip_ws(&l);
        if (l.p < l.end && *l.p == '}') {
            l.p++;
            break;
        }
        char key[32];
        ERR_TRY(parse_str(&l, key, sizeof key));
        ERR_TRY(expect(&l, ':'));
        skip_ws(&l);
        if (!strcmp(key, "descr")) {
            if (l.p < l.end && *l.p == '[')
                return err_set(ERR_UNSUPPORTED, "%s: structured NPY dtypes are not supported", what);
            ERR_TRY(parse_str(&l, descr, sizeof descr));
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if ((size_t)(l.end - l.p) >= 4 && !strncmp(l.p, "True", 4)) fortran = 1, l.p += 4;
            else if ((size_t)(l.end - l.p) >= 5 && !strncmp(l.p, "False", 5)) fortran = 0, l.p += 5;
            else return err_set(ERR_INPUT, "%s: malformed NPY header: fortran_order is not True/False", what);
            have_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            ERR_TRY(parse_shape(&l, h));
            have_shape = 1;
        } else {
            return err_set(ERR_INPUT, "%s: malformed NPY header: unexpected key '%s'", what, key);
        }
        skip_ws(&l);
        if (l.p < l.end && *l.p == ',') l.p++;
        else if (!(l.p < l.end && *l.p == '}'))
            return err_set(ERR_INPUT, "%s: malformed NPY header: expected ',' or '}'", what);
    }
    skip_ws(&l);
    if (l.p != l.end) return err_set(ERR_INPUT, "%s: malformed NPY header: text after the dictionary", what);
    if (!have_descr || !have_fortran || !have_shape)
        return err_set(ERR_INPUT, "%s: malformed NPY header: needs descr, fortran_order and shape", what);
    if (fortran)
        return err_set(ERR_UNSUPPORTED, "%s: fortran_order arrays are not supported (save in C order)", what);
    int rc = ts_dtype_from_npy(descr, &h->dtype);
    if (rc < 0) return err_prefix(rc, "%s: ", what);
    uint64_t n = ts_dtype_size(h->dtype);
    for (int i = 0; i < h->rank; i++) {
        uint64_t d = (uint64_t)h->shape[i];
        if (d && n > (UINT64_C(1) << 62) / d) return err_set(ERR_INPUT, "%s: NPY shape too large", what);
        n *= d;
    }
    h->nbytes = (size_t)n;
    return 0;
}

// --- reading -----------------------------------------------------------------------------------
int npy_read_header(FILE *f, const char *path, npy_header *h) {
    unsigned char pre[12];
    memset(h, 0, sizeof *h);
    size_t got = fread(pre, 1, 10, f);
    if (got < 10 || memcmp(pre, npy_magic, 6))
        return err_set(ERR_INPUT, "%s: not an NPY file (bad magic)", path);
    int major = pre[6];
    size_t hlen, pos;
    if (major == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        pos = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) return err_set(ERR_INPUT, "%s: truncated NPY header", path);
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pos = 12;
    } else {
        return err_set(ERR_UNSUPPORTED, "%s: NPY format version %d.%d is not supported", path, major, pre[7]);
    }
    if (hlen > (64u << 20)) return err_set(ERR_INPUT, "%s: NPY header length %zu is absurd", path, hlen);
    char *text = malloc(hlen + 1);
    if (!text) return err_set(ERR_NOMEM, "%s: out of memory", path);
    if (fread(text, 1, hlen, f) != hlen) {
        free(text);
        return err_set(ERR_INPUT, "%s: truncated NPY header", path);
    }
    text[hlen] = 0;
    int rc = npy_parse_dict(text, hlen, h, path);
    free(text);
    if (rc < 0) return rc;
    h->version = major;
    h->data_offset = pos + hlen;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        uint64_t need = (uint64_t)h->data_offset + h->nbytes;
        if ((uint64_t)st.st_size < need)
            return err_set(ERR_INPUT, "%s: truncated NPY file (%lld bytes, header says %" PRIu64 ")", path,
                           (long long)st.st_size, need);
    }
    return 0;
}

int npy_load(const char *path, npy_header *h, void **data) {
    int rc = 0;
    *data = NULL;
    FILE *f = NULL;
    ERR_TRY(infile_fopen_stream(path, &f, NULL)); // a directory is "is a directory"; a pipe is fine
    ERR_GOTO(rc, npy_read_header(f, path, h));
    void *p = malloc(h->nbytes ? h->nbytes : 1);
    ERR_GOTO_IF(rc, !p, ERR_NOMEM, "%s: out of memory for %zu bytes", path, h->nbytes);
    if (fread(p, 1, h->nbytes, f) != h->nbytes) {
        free(p);
        ERR_GOTO_IF(rc, 1, ERR_INPUT, "%s: truncated NPY data", path);
    }
    *data = p;
fail:
    fclose(f);
    return rc;
}

// --- writing -----------------------------------------------------------------------------------
int npy_write_header(FILE *f, const char *path, ts_dtype dtype, int rank, const int64_t *shape, npy_header *out) {
    const char *descr = ts_dtype_npy_descr(dtype);
    ERR_IF(!descr, ERR_USAGE, "%s: invalid dtype %d", path, (int)dtype);
    ERR_IF(rank < 0 || rank > NPY_MAX_RANK, ERR_USAGE, "%s: rank %d outside 0..%d", path, rank, NPY_MAX_RANK);
    char dict[512];
    size_t o = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    uint64_t n = ts_dtype_size(dtype);
    for (int i = 0; i < rank; i++) {
        ERR_IF(shape[i] < 0, ERR_USAGE, "%s: negative dimension", path);
        o += (size_t)snprintf(dict + o, sizeof dict - o, "%s%" PRId64, i ? ", " : "", shape[i]);
        n *= (uint64_t)shape[i];
    }
    o += (size_t)snprintf(dict + o, sizeof dict - o, "%s), }", rank == 1 ? "," : "");
    // total = magic(6) + version(2) + length(2 or 4) + dict + padding + '\n', a multiple of 64
    int version = 1;
    size_t pre = 10;
    size_t total = (pre + o + 1 + 63) / 64 * 64;
    if (total - pre > 65535) {
        version = 2;
        pre = 12;
        total = (pre + o + 1 + 63) / 64 * 64;
    }
    size_t hlen = total - pre;
    unsigned char head[12];
    memcpy(head, npy_magic, 6);
    head[6] = (unsigned char)version;
    head[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) head[8 + i] = (unsigned char)(hlen >> (8 * i));
    int ok = fwrite(head, 1, pre, f) == pre && fwrite(dict, 1, o, f) == o;
    for (size_t i = o; ok && i + 1 < hlen; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ERR_IF(!ok, ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (out) {
        memset(out, 0, sizeof *out);
        out->dtype = dtype;
        out->rank = rank;
        for (int i = 0; i < rank; i++) out->shape[i] = shape[i];
        out->version = version;
        out->data_offset = total;
        out->nbytes = (size_t)n;
    }
    return 0;
}

int npy_save(const char *path, ts_dtype dtype, int rank, const int64_t *shape, const void *data) {
    int rc = 0;
    size_t pl = strlen(path) + 32;
    char *tmp = malloc(pl);
    if (!tmp) return err_set(ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, pl, "%s.tmp%ld", path, (long)getpid());
    npy_header h;
    FILE *f = fopen(tmp, "wb");
    ERR_GOTO_IF(rc, !f, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    ERR_GOTO(rc, npy_write_header(f, path, dtype, rank, shape, &h));
    ERR_GOTO_IF(rc, h.nbytes && fwrite(data, 1, h.nbytes, f) != h.nbytes, ERR_IO, "%s: write error: %s", path,
                strerror(errno));
    int crc = fclose(f);
    f = NULL;
    ERR_GOTO_IF(rc, crc != 0, ERR_IO, "%s: write error: %s", path, strerror(errno));
    ERR_GOTO_IF(rc, rename(tmp, path) != 0, ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    free(tmp);
    return 0;
fail:
    if (f) fclose(f);
    unlink(tmp);
    free(tmp);
    return rc;
}
