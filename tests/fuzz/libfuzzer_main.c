// libFuzzer's entry point for one target: `make fuzz` compiles this file once per target with
// -DFUZZ_ENTRY=fuzz_NAME and links it with tests/fuzz/fuzz_NAME.c.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (FUZZ_ENTRY(data, size) != 0) abort(); // an invariant of an accepted input broke
    return 0;
}
