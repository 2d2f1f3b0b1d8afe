// A small JSON value type with an RFC 8259 parser and a compact writer.
//
// Used for tokenizer vocabularies (encoder.json), metrics.jsonl lines and
// safetensors headers. Objects keep their keys in insertion order so output
// is stable and matches what was read.
//
//   LOOM_ASSIGN_OR_RETURN(Json j, Json::Parse(text));
//   if (const Json* lr = j.Find("lr"); lr && lr->is_number()) use(lr->as_double());
//   for (const auto& [key, value] : j.object()) ...
//
//   Json line = Json::MakeObject();
//   line["step"] = 10;           // non-const operator[] inserts
//   line["loss"] = 2.5;
//   AppendLine(path, line.Dump());  // {"step":10,"loss":2.5}
//
// Numbers are doubles; a literal written as an integer (no fraction or
// exponent) that fits in int64 is also kept exactly (is_int64()).
#ifndef LOOM_CORE_JSON_H_
#define LOOM_CORE_JSON_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using ArrayType = std::vector<Json>;
  using ObjectType = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  Json(std::nullptr_t) {}  // NOLINT
  Json(bool b) : type_(Type::kBool), bool_(b) {}  // NOLINT
  Json(int v) : Json(static_cast<long long>(v)) {}  // NOLINT
  Json(long v) : Json(static_cast<long long>(v)) {}  // NOLINT
  Json(long long v);  // NOLINT
  Json(unsigned v) : Json(static_cast<long long>(v)) {}  // NOLINT
  Json(unsigned long v) : Json(static_cast<unsigned long long>(v)) {}  // NOLINT
  Json(unsigned long long v);  // NOLINT
  Json(double v) : type_(Type::kNumber), num_(v) {}  // NOLINT
  Json(float v) : Json(static_cast<double>(v)) {}  // NOLINT
  Json(const char* s) : type_(Type::kString), str_(s) {}  // NOLINT
  Json(std::string s) : type_(Type::kString), str_(std::move(s)) {}  // NOLINT
  Json(absl::string_view s) : type_(Type::kString), str_(s) {}  // NOLINT
  Json(ArrayType a) : type_(Type::kArray), arr_(std::move(a)) {}  // NOLINT

  static Json MakeArray() { return Json(ArrayType()); }
  static Json MakeObject();

  // Parses one JSON text (surrounding whitespace allowed). Errors report
  // "line L, column C" (1-based, columns in bytes) and what was expected.
  static absl::StatusOr<Json> Parse(absl::string_view text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  // True for numbers written as integer literals that fit in int64, and for
  // values constructed from integers.
  bool is_int64() const { return type_ == Type::kNumber && is_int_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors return a zero value (false, 0, "", empty) on a type mismatch;
  // check the type first when the input is untrusted.
  bool as_bool() const { return type_ == Type::kBool && bool_; }
  double as_double() const { return type_ == Type::kNumber ? num_ : 0.0; }
  // Exact for is_int64(); otherwise the double truncated toward zero
  // (saturating).
  int64_t as_int64() const;
  const std::string& as_string() const;
  const ArrayType& array() const;
  const ObjectType& object() const;
  ArrayType& mutable_array();
  ObjectType& mutable_object();

  // Number of array elements or object members; 0 otherwise.
  size_t size() const;

  // Object lookup: the member's value or nullptr (also for non-objects).
  const Json* Find(absl::string_view key) const;
  Json* Find(absl::string_view key);
  bool contains(absl::string_view key) const { return Find(key) != nullptr; }
  // Const lookup returns a shared null value when `key` is absent.
  const Json& operator[](absl::string_view key) const;
  // Inserts a null member if absent; turns a null value into an object.
  Json& operator[](absl::string_view key);
  // Sets `key` (replacing an existing value in place, keeping its position).
  void Set(absl::string_view key, Json value);
  // Array element; a shared null value when out of range or not an array.
  const Json& operator[](size_t i) const;
  // Mutable array element; requires is_array() and i < size().
  Json& operator[](size_t i);
  // Appends to an array; turns a null value into an array.
  void push_back(Json value);

  // Compact JSON text. Doubles use the shortest of %.15g/%.16g/%.17g that
  // round-trips; non-finite doubles are written as null.
  std::string Dump() const;
  void DumpTo(std::string* out) const;

  friend bool operator==(const Json& a, const Json& b);
  friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }

 private:
  friend class JsonParser;
  void RebuildIndex();

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;
  double num_ = 0.0;
  int64_t int_ = 0;
  std::string str_;
  ArrayType arr_;
  ObjectType obj_;
  // Key -> position in obj_, kept only for large objects where a linear scan
  // would be slow (e.g. a 50k-entry vocabulary).
  std::unique_ptr<absl::flat_hash_map<std::string, size_t>> index_;

 public:
  Json(const Json& other);
  Json& operator=(const Json& other);
  Json(Json&&) noexcept = default;
  Json& operator=(Json&&) noexcept = default;
  ~Json() = default;
};

// `s` as a JSON string literal, with quotes; control characters, '"' and
// '\\' escaped, other bytes (UTF-8) passed through.
std::string JsonQuote(absl::string_view s);

}  // namespace loom

#endif  // LOOM_CORE_JSON_H_
