// wio_zip: the central directory of a zip file held in memory (wio.h): what torch.save writes
// (stored entries, zip64 records when large). Every number read is checked against the buffer.
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wio/wio.h"

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// The end of central directory record: its offset in *eocd, or ERR_CORRUPT.
static int zip_find_eocd(const uint8_t *buf, size_t n, const char *what, size_t *eocd) {
    ERR_IF(n < 22, ERR_CORRUPT, "%s: not a zip file (%zu bytes)", what, n);
    size_t lo = n - 22 > 65535 ? n - 22 - 65535 : 0;
    for (size_t p = n - 22 + 1; p-- > lo;) {
        if (rd32(buf + p) == 0x06054b50 && p + 22 + rd16(buf + p + 20) <= n) {
            *eocd = p;
            return 0;
        }
    }
    return err_set(ERR_CORRUPT, "%s: no zip end-of-central-directory record (truncated file?)", what);
}

// Applies the zip64 extra field of a central directory entry to the 0xffffffff fields.
static int zip_extra64(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *off,
                       const char *what, const char *name) {
    size_t p = 0;
    while (p + 4 <= xlen) {
        uint32_t id = rd16(x + p), len = rd16(x + p + 2);
        ERR_IF(p + 4 + len > xlen, ERR_CORRUPT, "%s: entry %s: extra field runs past its end", what, name);
        if (id == 1) {
            const uint8_t *q = x + p + 4, *end = q + len;
            uint64_t *f[3] = {usize, csize, off};
            for (int i = 0; i < 3; i++) {
                if (*f[i] != 0xffffffffu) continue;
                ERR_IF(q + 8 > end, ERR_CORRUPT, "%s: entry %s: zip64 extra field too short", what, name);
                *f[i] = rd64(q);
                q += 8;
            }
            return 0;
        }
        p += 4 + len;
    }
    return 0;
}

static int zip_cmp(const void *a, const void *b) {
    return strcmp(((const wio_zip_entry *)a)->name, ((const wio_zip_entry *)b)->name);
}

int wio_zip_open(wio_zip *z, const uint8_t *buf, size_t n, const char *what) {
    memset(z, 0, sizeof *z);
    size_t e = 0;
    ERR_TRY(zip_find_eocd(buf, n, what, &e));
    uint64_t count = rd16(buf + e + 10), cd_size = rd32(buf + e + 12), cd_off = rd32(buf + e + 16);
    // zip64: a locator just before the record points to the zip64 end of central directory
    if (e >= 20 && rd32(buf + e - 20) == 0x07064b50) {
        uint64_t z64 = rd64(buf + e - 20 + 8);
        ERR_IF(z64 > n || n - z64 < 56 || rd32(buf + z64) != 0x06064b50, ERR_CORRUPT,
               "%s: bad zip64 end-of-central-directory record", what);
        count = rd64(buf + z64 + 32);
        cd_size = rd64(buf + z64 + 40);
        cd_off = rd64(buf + z64 + 48);
    }
    ERR_IF(cd_off > n || cd_size > n - cd_off, ERR_CORRUPT,
           "%s: zip central directory (offset %llu, %llu bytes) lies outside the file (%zu bytes)", what,
           (unsigned long long)cd_off, (unsigned long long)cd_size, n);
    ERR_IF(count > cd_size / 46, ERR_CORRUPT, "%s: zip directory claims %llu entries in %llu bytes", what,
           (unsigned long long)count, (unsigned long long)cd_size);
    z->e = calloc(count ? count : 1, sizeof *z->e);
    ERR_IF(!z->e, ERR_NOMEM, "out of memory for %llu zip entries", (unsigned long long)count);
    const uint8_t *p = buf + cd_off, *end = buf + cd_off + cd_size;
    int rc = 0;
    for (uint64_t i = 0; i < count; i++) {
        ERR_GOTO_IF(rc, end - p < 46 || rd32(p) != 0x02014b50, ERR_CORRUPT, "%s: zip directory entry %llu is damaged",
                    what, (unsigned long long)i);
        uint32_t method = rd16(p + 10), nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), loff = rd32(p + 42);
        ERR_GOTO_IF(rc, (size_t)(end - p) < 46 + (size_t)nl + xl + cl, ERR_CORRUPT,
                    "%s: zip directory entry %llu runs past the directory", what, (unsigned long long)i);
        wio_zip_entry *ze = &z->e[z->n];
        ze->name = malloc((size_t)nl + 1);
        ERR_GOTO_IF(rc, !ze->name, ERR_NOMEM, "out of memory");
        memcpy(ze->name, p + 46, nl);
        ze->name[nl] = '\0';
        z->n++;
        ERR_GOTO_IF(rc, strlen(ze->name) != nl, ERR_CORRUPT, "%s: zip entry name with a NUL byte", what);
        ERR_GOTO(rc, zip_extra64(p + 46 + nl, xl, &usize, &csize, &loff, what, ze->name));
        ERR_GOTO_IF(rc, loff > n || n - loff < 30 || rd32(buf + loff) != 0x04034b50, ERR_CORRUPT,
                    "%s: entry %s: local header at %llu is missing", what, ze->name, (unsigned long long)loff);
        uint64_t data = loff + 30 + rd16(buf + loff + 26) + rd16(buf + loff + 28);
        ERR_GOTO_IF(rc, data > n || csize > n - data, ERR_CORRUPT,
                    "%s: entry %s: %llu bytes at %llu run past the end of the file (%zu bytes)", what, ze->name,
                    (unsigned long long)csize, (unsigned long long)data, n);
        ERR_GOTO_IF(rc, method == 0 && csize != usize, ERR_CORRUPT, "%s: stored entry %s with sizes %llu != %llu",
                    what, ze->name, (unsigned long long)csize, (unsigned long long)usize);
        ze->offset = (size_t)data;
        ze->size = (size_t)csize;
        ze->method = (int)method;
        p += 46 + (size_t)nl + xl + cl;
    }
    qsort(z->e, (size_t)z->n, sizeof *z->e, zip_cmp);
    return 0;
fail:
    wio_zip_close(z);
    return rc;
}

void wio_zip_close(wio_zip *z) {
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    memset(z, 0, sizeof *z);
}

const wio_zip_entry *wio_zip_find(const wio_zip *z, const char *name) {
    wio_zip_entry key = {(char *)name, 0, 0, 0};
    return z->n ? bsearch(&key, z->e, (size_t)z->n, sizeof *z->e, zip_cmp) : NULL;
}
