// hash: xxHash wrappers (XXH3-128 hex digests, XXH64 checksums); see hash.h.
#include "common/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/err.h"

struct hash_state {
    XXH3_state_t *st;
};

static char *hash_to_hex(XXH128_hash_t h, char hex[HASH_HEX_LEN + 1]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[c.digest[i] >> 4];
        hex[2 * i + 1] = digits[c.digest[i] & 15];
    }
    hex[HASH_HEX_LEN] = 0;
    return hex;
}

char *hash_bytes_hex(const void *p, size_t n, char hex[HASH_HEX_LEN + 1]) {
    static const char empty = 0;
    return hash_to_hex(XXH3_128bits(n ? p : &empty, n), hex);
}

char *hash_text_hex(const char *text, char hex[HASH_HEX_LEN + 1]) {
    return hash_bytes_hex(text, strlen(text), hex);
}

uint64_t hash_xxh64(const void *p, size_t n, uint64_t seed) {
    static const char empty = 0;
    return XXH64(n ? p : &empty, n, seed);
}

int hash_init(hash_state **out) {
    *out = NULL;
    hash_state *h = calloc(1, sizeof *h);
    if (!h) return err_set(ERR_NOMEM, "hash: out of memory");
    h->st = XXH3_createState();
    if (!h->st) {
        free(h);
        return err_set(ERR_NOMEM, "hash: out of memory");
    }
    XXH3_128bits_reset(h->st);
    *out = h;
    return 0;
}

void hash_update(hash_state *h, const void *p, size_t n) {
    if (n) XXH3_128bits_update(h->st, p, n);
}

void hash_update_text(hash_state *h, const char *text) {
    XXH3_128bits_update(h->st, text, strlen(text) + 1);
}

char *hash_final_hex(hash_state *h, char hex[HASH_HEX_LEN + 1]) {
    return hash_to_hex(XXH3_128bits_digest(h->st), hex);
}

void hash_free(hash_state *h) {
    if (!h) return;
    XXH3_freeState(h->st);
    free(h);
}

int hash_stream_hex(FILE *f, const char *path, uint64_t max_bytes, int (*poll)(void), char hex[HASH_HEX_LEN + 1]) {
    int rc = 0;
    hash_state *h = NULL;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    ERR_IF(!buf, ERR_NOMEM, "%s: out of memory", path);
    ERR_GOTO(rc, hash_init(&h));
    uint64_t total = 0;
    for (;;) {
        if (poll) ERR_GOTO(rc, poll());
        size_t got = fread(buf, 1, CHUNK, f);
        if (got == 0) break;
        hash_update(h, buf, got);
        total += got;
        ERR_GOTO_IF(rc, total > max_bytes, ERR_INPUT, "%s: grew past %llu bytes while being read", path,
                    (unsigned long long)max_bytes);
    }
    ERR_GOTO_IF(rc, ferror(f), ERR_IO, "%s: read error: %s", path, strerror(errno));
    hash_final_hex(h, hex);
fail:
    free(buf);
    hash_free(h);
    return rc;
}

int hash_file_hex(const char *path, char hex[HASH_HEX_LEN + 1]) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    int rc = hash_stream_hex(f, path, UINT64_MAX, NULL, hex);
    fclose(f);
    return rc;
}
