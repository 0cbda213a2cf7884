/* fuzz.h — the libFuzzer entry point every fuzz_<name>.c defines; replay_main.c calls it on each corpus
 * file when the target is built without libFuzzer. */
#ifndef TARN_FUZZ_H
#define TARN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
