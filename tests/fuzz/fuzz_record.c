// Fuzz target: tensor store record values (common/store_record.c): the 72-byte header checks and
// the payload decoders (raw, zstd, shuffle-zstd, dictionary ids) as every read does them.
// Input: 1 byte of flags (bit 0: fix the header checksum so the fuzzer gets past it to the
// fields and payload), 1 byte of key length k (< 64), the key, then the record value.
// The header check is recomputed here as store_record.c computes it (XXH64 of bytes 0..67
// seeded with the XXH64 of the key, low 32 bits).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/store_internal.h"
#include "tests/fuzz/util.h"

int fuzz_record(const uint8_t *data, size_t size) {
    fuzz_init();
    static ts_store *s;
    if (!s) {
        char path[512];
        snprintf(path, sizeof path, "%s/record.store", fuzz_dir());
        if (ts_open(&s, path, TS_CREATE) < 0) abort();
    }
    if (size < 2) return 0;
    int fix = data[0] & 1;
    size_t k = data[1] % 64;
    if (size - 2 < k) return 0;
    const uint8_t *key = data + 2, *val = data + 2 + k;
    size_t vlen = size - 2 - k;
    uint8_t *v = malloc(vlen ? vlen : 1);
    if (!v) abort();
    memcpy(v, val, vlen);
    if (fix && vlen >= TS_REC_HEADER) {
        uint32_t c = (uint32_t)hash_xxh64(v, 68, hash_xxh64(key, k, 0x74737264u));
        for (int i = 0; i < 4; i++) v[68 + i] = (uint8_t)(c >> (8 * i));
    }
    MDB_val mk = {k, (void *)key}, mv = {vlen, v};
    ts_record_info info;
    char why[256];
    int bad = 0;
    if (ts__rec_parse(&mk, v, vlen, &info, why, sizeof why) == 0)
        bad = info.rank < 0 || info.rank > 4 || (uint64_t)info.stored_len > vlen;
    ts_tensor t;
    if (ts__rec_decode(s, "t", &mk, &mv, &t, NULL, 0) == 0) {
        bad |= t.nbytes != (size_t)info.raw_len;
        ts_tensor_free(&t);
    }
    uint8_t small[64];
    if (ts__rec_decode(s, "t", &mk, &mv, &t, small, sizeof small) == 0) bad |= t.nbytes > sizeof small;
    free(v);
    return bad;
}
