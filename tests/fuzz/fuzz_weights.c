// Fuzz target: checkpoint files as import-weights reads them (common/wio: the zip reader, the
// restricted unpickler and the torch.save layout of PyTorch checkpoints; safetensors), through
// wio_fuzz_one (parse, read every tensor, free). Every outcome, accepted or refused, is fine:
// nothing may crash, leak or hang.
#include "common/wio/wio.h"
#include "tests/fuzz/util.h"

int fuzz_weights(const uint8_t *data, size_t size) {
    fuzz_init();
    return wio_fuzz_one(data, size);
}
