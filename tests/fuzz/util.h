// Shared helpers of the fuzz targets (tests/fuzz/fuzz_NAME.c, one per parser of outside bytes).
//
// A target is one function `int fuzz_NAME(const uint8_t *data, size_t size)` in its own file
// tests/fuzz/fuzz_NAME.c: it feeds the bytes to the parser through the same entry point a stage
// uses, must never crash, leak or hang, and returns 0 (non-zero: an invariant of an accepted
// input broke). Adding a target is that one file: `make fuzz` builds build/fuzz/fuzz-NAME
// (libFuzzer, ASan + UBSan) for every tests/fuzz/fuzz_*.c, and the unit suite `fuzz_regress`
// replays every file under tests/data/fuzz/NAME/ (seeds and every crash found) through
// fuzz_NAME without libFuzzer.
#ifndef DIFFOOD_FUZZ_UTIL_H
#define DIFFOOD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

// Once per process: small memory limits for the readers (DIFFOOD_DS_MAX_BYTES = 64 MiB), so a
// header that claims much is refused rather than allocated. Every target calls it first.
void fuzz_init(void);

// Bytes as a file: slot 0..7 is a memfd reused from call to call, rewritten with data[0..n);
// returns its path ("/proc/self/fd/N", a regular file). Aborts when no memfd can be made.
const char *fuzz_file(int slot, const void *data, size_t n);

// A fresh, empty, private directory for stores (made once per process, under $TMPDIR or /tmp;
// removed at exit).
const char *fuzz_dir(void);

// Splits data at a 2-byte little-endian length prefix: *a = the first part (at most what is
// there), *b = the rest.
void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb);

#endif
