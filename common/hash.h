// hash: content hashes for store keys, source-file fingerprints and record checksums (xxHash,
// Debian's libxxhash). XXH3-128 gives the 32-character lowercase hex digests used in meta and
// in cache keys; XXH64 is the record checksum of the tensor store.
#ifndef DIFFOOD_HASH_H
#define DIFFOOD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HASH_HEX_LEN 32 // hex digits of an XXH3-128 digest (a buffer needs HASH_HEX_LEN + 1)

// XXH3-128 of n bytes as 32 lowercase hex digits + NUL into hex. Returns hex. (p may be NULL when
// n == 0.)
char *hash_bytes_hex(const void *p, size_t n, char hex[HASH_HEX_LEN + 1]);
// XXH3-128 of a NUL-terminated text (without its NUL) as hex. Returns hex.
char *hash_text_hex(const char *text, char hex[HASH_HEX_LEN + 1]);
// XXH3-128 of a whole file, streamed, as hex. ERR_NOTFOUND (missing), ERR_IO (read error); the
// message names the file.
int hash_file_hex(const char *path, char hex[HASH_HEX_LEN + 1]);
// XXH3-128 of what is left of the open stream f (named `path` in messages), read in 1 MiB pieces:
// ERR_INPUT once more than max_bytes came, poll()'s error when it returns one before a piece
// (NULL: none; interruption checks), ERR_IO on a read error. f stays open.
int hash_stream_hex(FILE *f, const char *path, uint64_t max_bytes, int (*poll)(void), char hex[HASH_HEX_LEN + 1]);
// XXH64 of n bytes with `seed` (record checksums).
uint64_t hash_xxh64(const void *p, size_t n, uint64_t seed);

// Streaming XXH3-128: hash_init, any number of hash_update, hash_final_hex. The state is opaque
// heap memory owned by the caller: release with hash_free (NULL-safe).
typedef struct hash_state hash_state;
// *out = new state. ERR_NOMEM.
int hash_init(hash_state **out);
void hash_update(hash_state *h, const void *p, size_t n);
// Adds text plus a NUL separator, so that ("ab","c") and ("a","bc") hash differently.
void hash_update_text(hash_state *h, const char *text);
// The digest of everything added so far (the state stays usable). Returns hex.
char *hash_final_hex(hash_state *h, char hex[HASH_HEX_LEN + 1]);
void hash_free(hash_state *h);

#endif
