// Reading and writing safetensors files (https://github.com/huggingface/safetensors)
// without LibTorch: Loom's checkpoint format and the golden-case format.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON mapping
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (plus
// an optional "__metadata__" string->string map), then the raw little-endian
// row-major tensor bytes; offsets are relative to the end of the header.
//
//   LOOM_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors(path));
//   const SafetensorsTensor* w = f.Find("param.weight");
//   LOOM_ASSIGN_OR_RETURN(std::vector<double> v, TensorAsDoubles(*w));
//
//   LOOM_RETURN_IF_ERROR(WriteSafetensors(path, tensors, {{"step", "10"}}));
//
// The reader refuses anything inconsistent (header length vs file size,
// offsets out of range or overlapping, byte size vs dtype and shape), with a
// message naming the file and the tensor.
#ifndef LOOM_CORE_SAFETENSORS_H_
#define LOOM_CORE_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace loom {

struct SafetensorsTensor {
  std::string name;
  // "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
  // "I32", "U32", "F32", "I64", "U64", "F64".
  std::string dtype;
  std::vector<int64_t> shape;
  // Raw little-endian bytes, prod(shape) * DtypeSize(dtype) of them.
  std::string data;

  int64_t num_elements() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  // In file (data offset) order.
  std::vector<SafetensorsTensor> tensors;

  // The tensor called `name`, or nullptr.
  const SafetensorsTensor* Find(absl::string_view name) const;
};

// Bytes per element of a safetensors dtype, or 0 if the dtype is unknown.
int DtypeSize(absl::string_view dtype);

// Parses a whole safetensors file held in memory; `source` names it in
// error messages.
absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                 absl::string_view source);

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

// Serializes like the reference implementation: tensors laid out by
// decreasing dtype size then name (so every tensor is aligned), header JSON
// padded with spaces to a multiple of 8 bytes, "__metadata__" first and
// omitted when empty. Tensor names must be unique and non-empty.
absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata);

// SerializeSafetensors, then WriteFileAtomically.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata);

// Element values as doubles, for F64, F32, F16, BF16 and all integer and BOOL
// dtypes (64-bit integers beyond 2^53 lose precision).
absl::StatusOr<std::vector<double>> TensorAsDoubles(const SafetensorsTensor& t);

// Builds tensors from host values (little-endian encoding handled here).
SafetensorsTensor MakeF64Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const double> values);
SafetensorsTensor MakeF32Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const float> values);
SafetensorsTensor MakeI64Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const int64_t> values);

}  // namespace loom

#endif  // LOOM_CORE_SAFETENSORS_H_
