// libFuzzer target over the two readers that take checkpoint bytes from disk: the safetensors
// parser (with element decoding) and the manifest parser/validator. The first input byte picks
// the reader. Built with clang -fsanitize=fuzzer,address,undefined by the genrule in BUILD and run
// for a bounded time by checkpoint_fuzz_test.sh; any crash, leak or sanitizer report fails it.
//
//   bazel build //core:checkpoint_fuzzer && bazel-bin/core/checkpoint_fuzzer -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/checkpoint_manifest.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto m = loom::ParseCheckpointManifest(bytes, "fuzz");
    if (m.ok()) (void)m->ByteSizeLong();
  } else {
    auto f = loom::ParseSafetensors(bytes, "fuzz");
    if (f.ok()) {
      for (const auto& t : f->tensors) (void)loom::TensorAsDoubles(t);
    }
  }
  return 0;
}
