#include "core/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/status_macros.h"

namespace loom {
namespace {

// Same bound as the reference implementation; protects against allocating
// gigabytes for a corrupt length field.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; add byte swapping");

absl::Status Invalid(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("safetensors file '", source, "': ", what));
}

template <typename T>
void AppendValues(const T* v, size_t n, std::vector<double>* out) {
  for (size_t i = 0; i < n; ++i) out->push_back(static_cast<double>(v[i]));
}

double HalfToDouble(uint16_t h) {
  int sign = (h >> 15) & 1;
  int exp = (h >> 10) & 0x1F;
  int mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(static_cast<double>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<double>::quiet_NaN()
             : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(static_cast<double>(mant | 0x400), exp - 25);
  }
  return sign ? -v : v;
}

// Multiplies non-negative dims, failing on overflow.
bool CheckedNumElements(const std::vector<int64_t>& shape, int64_t* out) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

}  // namespace

int64_t SafetensorsTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int DtypeSize(absl::string_view dtype) {
  static const std::pair<const char*, int> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
  for (const auto& [name, size] : kSizes) {
    if (dtype == name) return size;
  }
  return 0;
}

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                 absl::string_view source) {
  if (bytes.size() < 8) {
    return Invalid(source, absl::StrCat("file is ", bytes.size(),
                                        " bytes, shorter than the 8-byte "
                                        "header length"));
  }
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderSize || header_len > bytes.size() - 8) {
    return Invalid(source,
                   absl::StrCat("header length ", header_len,
                                " exceeds the file size (", bytes.size(),
                                " bytes) or the ", kMaxHeaderSize,
                                "-byte limit; truncated or not safetensors?"));
  }
  absl::string_view header = bytes.substr(8, header_len);
  absl::string_view data = bytes.substr(8 + header_len);
  auto parsed = Json::Parse(header);
  if (!parsed.ok()) {
    return Invalid(source, absl::StrCat("bad JSON header: ",
                                        parsed.status().message()));
  }
  const Json& root = *parsed;
  if (!root.is_object()) return Invalid(source, "JSON header is not an object");

  SafetensorsFile file;
  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : root.object()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return Invalid(source, "__metadata__ is not an object");
      }
      for (const auto& [k, v] : entry.object()) {
        if (!v.is_string()) {
          return Invalid(source, absl::StrCat("__metadata__ value for '", k,
                                              "' is not a string"));
        }
        file.metadata[k] = v.as_string();
      }
      continue;
    }
    const std::string& tensor_name = name;  // (clang 14 cannot capture structured bindings)
    auto bad = [&](absl::string_view what) {
      return Invalid(source, absl::StrCat("tensor '", tensor_name, "': ", what));
    };
    if (!entry.is_object()) return bad("entry is not an object");
    const Json* dtype = entry.Find("dtype");
    const Json* shape = entry.Find("shape");
    const Json* offsets = entry.Find("data_offsets");
    if (!dtype || !dtype->is_string()) return bad("missing string 'dtype'");
    if (!shape || !shape->is_array()) return bad("missing array 'shape'");
    if (!offsets || !offsets->is_array() || offsets->size() != 2) {
      return bad("'data_offsets' must be [begin, end]");
    }
    SafetensorsTensor t;
    t.name = name;
    t.dtype = dtype->as_string();
    int esize = DtypeSize(t.dtype);
    if (esize == 0) return bad(absl::StrCat("unknown dtype '", t.dtype, "'"));
    for (const Json& d : shape->array()) {
      if (!d.is_int64() || d.as_int64() < 0) {
        return bad(absl::StrCat("shape ", shape->Dump(),
                                " has a non-integer or negative dimension"));
      }
      t.shape.push_back(d.as_int64());
    }
    for (const Json& o : offsets->array()) {
      if (!o.is_int64() || o.as_int64() < 0) {
        return bad(absl::StrCat("data_offsets ", offsets->Dump(),
                                " are not non-negative integers"));
      }
    }
    uint64_t begin = static_cast<uint64_t>((*offsets)[0].as_int64());
    uint64_t end = static_cast<uint64_t>((*offsets)[1].as_int64());
    if (begin > end || end > data.size()) {
      return bad(absl::StrCat("data_offsets [", begin, ", ", end,
                              "] out of range of the ", data.size(),
                              "-byte data section"));
    }
    int64_t n;
    if (!CheckedNumElements(t.shape, &n) ||
        n > std::numeric_limits<int64_t>::max() / esize) {
      return bad(absl::StrCat("shape ", ShapeString(t.shape), " overflows"));
    }
    if (static_cast<uint64_t>(n) * esize != end - begin) {
      return bad(absl::StrCat("shape ", ShapeString(t.shape), " of ", t.dtype,
                              " needs ", n * esize, " bytes but data_offsets [",
                              begin, ", ", end, "] hold ", end - begin));
    }
    t.data.assign(data.data() + begin, end - begin);
    spans.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (spans[i].begin < spans[i - 1].end &&
        spans[i].begin != spans[i].end) {
      return Invalid(source,
                     absl::StrCat("tensors '", file.tensors[spans[i - 1].index].name,
                                  "' and '", file.tensors[spans[i].index].name,
                                  "' overlap in the data section"));
    }
  }
  std::vector<SafetensorsTensor> ordered;
  ordered.reserve(spans.size());
  for (const Span& s : spans) ordered.push_back(std::move(file.tensors[s.index]));
  file.tensors = std::move(ordered);
  return file;
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  LOOM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  return ParseSafetensors(bytes, path);
}

absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<const SafetensorsTensor*> order;
  for (const auto& t : tensors) {
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write tensor '", t.name, "': ", what));
    };
    if (t.name.empty() || t.name == "__metadata__") return bad("reserved name");
    int esize = DtypeSize(t.dtype);
    if (esize == 0) return bad(absl::StrCat("unknown dtype '", t.dtype, "'"));
    int64_t n;
    if (!CheckedNumElements(t.shape, &n)) {
      return bad(absl::StrCat("invalid shape ", ShapeString(t.shape)));
    }
    if (static_cast<uint64_t>(n) * esize != t.data.size()) {
      return bad(absl::StrCat("shape ", ShapeString(t.shape), " of ", t.dtype,
                              " needs ", n * esize, " bytes, data has ",
                              t.data.size()));
    }
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) {
              int sa = DtypeSize(a->dtype), sb = DtypeSize(b->dtype);
              return sa != sb ? sa > sb : a->name < b->name;
            });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->name == order[i - 1]->name) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write duplicate tensor name '", order[i]->name,
                       "'"));
    }
  }
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (!first) header += ",";
      first = false;
      header += JsonQuote(k) + ":" + JsonQuote(v);
    }
    header += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const SafetensorsTensor* t : order) {
    if (!first) header += ",";
    first = false;
    absl::StrAppend(&header, JsonQuote(t->name), ":{\"dtype\":\"", t->dtype,
                    "\",\"shape\":", ShapeString(t->shape),
                    ",\"data_offsets\":[", offset, ",",
                    offset + t->data.size(), "]}");
    offset += t->data.size();
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + header.size() + offset);
  uint64_t len = header.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += header;
  for (const SafetensorsTensor* t : order) out += t->data;
  return out;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  auto bytes = SerializeSafetensors(tensors, metadata);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "writing safetensors file '", path, "': ", bytes.status().message()));
  }
  return WriteFileAtomically(path, *bytes);
}

absl::StatusOr<std::vector<double>> TensorAsDoubles(const SafetensorsTensor& t) {
  int esize = DtypeSize(t.dtype);
  if (esize == 0 || t.data.size() % esize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': dtype '", t.dtype,
                     "' unknown or data size ", t.data.size(),
                     " not a multiple of its element size"));
  }
  size_t n = t.data.size() / esize;
  std::vector<double> out;
  out.reserve(n);
  const char* p = t.data.data();
  // Copy into aligned storage before reinterpreting the bytes.
  auto as = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> tmp(n);
    if (n) std::memcpy(tmp.data(), p, n * sizeof(T));
    AppendValues(tmp.data(), n, &out);
  };
  const std::string& d = t.dtype;
  if (d == "F64") as(double{});
  else if (d == "F32") as(float{});
  else if (d == "I64") as(int64_t{});
  else if (d == "U64") as(uint64_t{});
  else if (d == "I32") as(int32_t{});
  else if (d == "U32") as(uint32_t{});
  else if (d == "I16") as(int16_t{});
  else if (d == "U16") as(uint16_t{});
  else if (d == "I8") as(int8_t{});
  else if (d == "U8" || d == "BOOL") as(uint8_t{});
  else if (d == "F16" || d == "BF16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if (d == "F16") {
        out.push_back(HalfToDouble(h));
      } else {
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        out.push_back(f);
      }
    }
  } else {
    return absl::UnimplementedError(absl::StrCat(
        "tensor '", t.name, "': cannot convert dtype '", d, "' to doubles"));
  }
  return out;
}

namespace {
template <typename T>
SafetensorsTensor MakeTensor(std::string name, const char* dtype,
                             std::vector<int64_t> shape, absl::Span<const T> v) {
  SafetensorsTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  return t;
}
}  // namespace

SafetensorsTensor MakeF64Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const double> values) {
  return MakeTensor(std::move(name), "F64", std::move(shape), values);
}
SafetensorsTensor MakeF32Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const float> values) {
  return MakeTensor(std::move(name), "F32", std::move(shape), values);
}
SafetensorsTensor MakeI64Tensor(std::string name, std::vector<int64_t> shape,
                                absl::Span<const int64_t> values) {
  return MakeTensor(std::move(name), "I64", std::move(shape), values);
}

}  // namespace loom
