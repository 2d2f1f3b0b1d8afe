#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {

// Objects at or above this size get a hash index; smaller ones are scanned.
constexpr size_t kIndexThreshold = 16;
constexpr int kMaxDepth = 1000;

const Json& NullJson() {
  static const Json* null = new Json();
  return *null;
}

const std::string& EmptyString() {
  static const std::string* s = new std::string();
  return *s;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence starting at p (p < end, *p >= 0x80),
// or 0 if it is invalid (overlong, surrogate, > U+10FFFF, truncated).
size_t ValidUtf8Length(const unsigned char* p, const unsigned char* end) {
  unsigned char c = p[0];
  size_t n;
  uint32_t min;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2; min = 0x80; cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3; min = 0x800; cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4; min = 0x10000; cp = c & 0x07;
  } else {
    return 0;
  }
  if (static_cast<size_t>(end - p) < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void AppendDouble(double v, std::string* out) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char buf[40];
  for (int prec : {15, 16, 17}) {
    int len = std::snprintf(buf, sizeof(buf), "%.*g", prec, v);
    double back = 0;
    std::from_chars(buf, buf + len, back);
    if (back == v || prec == 17) {
      out->append(buf, static_cast<size_t>(len));
      return;
    }
  }
}

void AppendQuoted(absl::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + start, s.size() - start);
  out->push_back('"');
}

}  // namespace

// Recursive-descent parser over the whole text; positions are byte offsets
// and are converted to line:column only when reporting an error.
class JsonParser {
 public:
  explicit JsonParser(absl::string_view text)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  absl::StatusOr<Json> ParseDocument() {
    Json value;
    SkipWs();
    if (!ParseValue(&value, 0)) return error_;
    SkipWs();
    if (p_ != end_) {
      Fail("unexpected trailing characters after the JSON value");
      return error_;
    }
    return value;
  }

 private:
  bool Fail(absl::string_view what) { return FailAt(p_, what); }

  bool FailAt(const char* at, absl::string_view what) {
    int line = 1;
    int col = 1;
    for (const char* q = begin_; q < at && q < end_; ++q) {
      if (*q == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string found;
    if (at >= end_) {
      found = "end of input";
    } else {
      unsigned char c = static_cast<unsigned char>(*at);
      found = (c >= 0x20 && c < 0x7F) ? absl::StrCat("'", std::string(1, *at), "'")
                                      : absl::StrCat("byte 0x", absl::Hex(c));
    }
    error_ = absl::InvalidArgumentError(absl::StrCat(
        "JSON parse error at line ", line, ", column ", col, ": ", what,
        " (found ", found, ")"));
    return false;
  }

  void SkipWs() {
    while (p_ < end_ &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  bool Literal(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return Fail(absl::StrCat("invalid literal (expected '", word, "')"));
    }
    p_ += word.size();
    return true;
  }

  bool ParseValue(Json* out, int depth) {
    if (p_ >= end_) return Fail("expected a value");
    switch (*p_) {
      case '{':
        return ParseObject(out, depth);
      case '[':
        return ParseArray(out, depth);
      case '"':
        out->type_ = Json::Type::kString;
        return ParseString(&out->str_);
      case 't':
        if (!Literal("true")) return false;
        *out = Json(true);
        return true;
      case 'f':
        if (!Literal("false")) return false;
        *out = Json(false);
        return true;
      case 'n':
        if (!Literal("null")) return false;
        *out = Json();
        return true;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return ParseNumber(out);
        return Fail("expected a value");
    }
  }

  bool ParseObject(Json* out, int depth) {
    if (depth >= kMaxDepth) return Fail("nesting too deep");
    ++p_;  // '{'
    out->type_ = Json::Type::kObject;
    SkipWs();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      SkipWs();
      if (p_ >= end_ || *p_ != '"') return Fail("expected a string key");
      std::string key;
      if (!ParseString(&key)) return false;
      SkipWs();
      if (p_ >= end_ || *p_ != ':') return Fail("expected ':' after key");
      ++p_;
      SkipWs();
      Json value;
      if (!ParseValue(&value, depth + 1)) return false;
      out->obj_.emplace_back(std::move(key), std::move(value));
      SkipWs();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == '}') {
        ++p_;
        break;
      }
      return Fail("expected ',' or '}' in object");
    }
    // Duplicate keys: the last value wins at the first key's position (as in
    // JavaScript), so lookups and iteration agree.
    out->RebuildIndex();
    return true;
  }

  bool ParseArray(Json* out, int depth) {
    if (depth >= kMaxDepth) return Fail("nesting too deep");
    ++p_;  // '['
    out->type_ = Json::Type::kArray;
    SkipWs();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      SkipWs();
      out->arr_.emplace_back();
      if (!ParseValue(&out->arr_.back(), depth + 1)) return false;
      SkipWs();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == ']') {
        ++p_;
        return true;
      }
      return Fail("expected ',' or ']' in array");
    }
  }

  bool Hex4(const char* q, uint32_t* v) {
    if (end_ - q < 4) return false;
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
      char c = q[i];
      r <<= 4;
      if (c >= '0' && c <= '9') r |= c - '0';
      else if (c >= 'a' && c <= 'f') r |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') r |= c - 'A' + 10;
      else return false;
    }
    *v = r;
    return true;
  }

  bool ParseString(std::string* out) {
    ++p_;  // opening quote
    out->clear();
    while (true) {
      const char* run = p_;
      while (p_ < end_) {
        unsigned char c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      out->append(run, static_cast<size_t>(p_ - run));
      if (p_ >= end_) return Fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return Fail("unescaped control character in string");
      if (c >= 0x80) {
        size_t n = ValidUtf8Length(reinterpret_cast<const unsigned char*>(p_),
                                   reinterpret_cast<const unsigned char*>(end_));
        if (n == 0) return Fail("invalid UTF-8 in string");
        out->append(p_, n);
        p_ += n;
        continue;
      }
      // Backslash escape.
      const char* esc = p_;
      ++p_;
      if (p_ >= end_) return Fail("unterminated string");
      char e = *p_++;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(p_, &cp)) return FailAt(esc, "invalid \\u escape");
          p_ += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u' &&
                Hex4(p_ + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
              p_ += 6;
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              return FailAt(esc, "unpaired high surrogate in \\u escape");
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return FailAt(esc, "unpaired low surrogate in \\u escape");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return FailAt(esc, "invalid escape in string");
      }
    }
  }

  bool ParseNumber(Json* out) {
    const char* start = p_;
    const char* q = p_;
    if (*q == '-') ++q;
    if (q >= end_) return FailAt(q, "invalid number");
    if (*q == '0') {
      ++q;
    } else if (*q >= '1' && *q <= '9') {
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    } else {
      return FailAt(q, "invalid number");
    }
    bool integral = true;
    if (q < end_ && *q == '.') {
      integral = false;
      ++q;
      if (q >= end_ || *q < '0' || *q > '9') {
        return FailAt(q, "expected digit after '.' in number");
      }
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    }
    if (q < end_ && (*q == 'e' || *q == 'E')) {
      integral = false;
      ++q;
      if (q < end_ && (*q == '+' || *q == '-')) ++q;
      if (q >= end_ || *q < '0' || *q > '9') {
        return FailAt(q, "expected digit in number exponent");
      }
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    }
    out->type_ = Json::Type::kNumber;
    if (integral) {
      int64_t iv = 0;
      auto r = std::from_chars(start, q, iv);
      if (r.ec == std::errc() && r.ptr == q) {
        out->is_int_ = true;
        out->int_ = iv;
        out->num_ = static_cast<double>(iv);
        p_ = q;
        return true;
      }
    }
    double dv = 0;
    auto r = std::from_chars(start, q, dv);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow becomes +-inf and underflow 0, as in JavaScript.
      dv = std::strtod(std::string(start, q).c_str(), nullptr);
    } else if (r.ec != std::errc() || r.ptr != q) {
      return FailAt(start, "invalid number");
    }
    out->num_ = dv;
    p_ = q;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  absl::Status error_;
};

Json::Json(long long v)
    : type_(Type::kNumber), is_int_(true), num_(static_cast<double>(v)), int_(v) {}

Json::Json(unsigned long long v) : type_(Type::kNumber) {
  if (v <= static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
    is_int_ = true;
    int_ = static_cast<int64_t>(v);
  }
  num_ = static_cast<double>(v);
}

Json::Json(const Json& other)
    : type_(other.type_),
      bool_(other.bool_),
      is_int_(other.is_int_),
      num_(other.num_),
      int_(other.int_),
      str_(other.str_),
      arr_(other.arr_),
      obj_(other.obj_) {
  if (other.index_) {
    index_ = std::make_unique<absl::flat_hash_map<std::string, size_t>>(
        *other.index_);
  }
}

Json& Json::operator=(const Json& other) {
  if (this != &other) {
    Json copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Json Json::MakeObject() {
  Json j;
  j.type_ = Type::kObject;
  return j;
}

absl::StatusOr<Json> Json::Parse(absl::string_view text) {
  JsonParser parser(text);
  return parser.ParseDocument();
}

void Json::RebuildIndex() {
  index_.reset();
  if (obj_.size() < kIndexThreshold) {
    // Small objects: resolve duplicates by scanning.
    for (size_t i = 1; i < obj_.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (obj_[j].first == obj_[i].first) {
          obj_[j].second = std::move(obj_[i].second);
          obj_.erase(obj_.begin() + static_cast<ptrdiff_t>(i));
          --i;
          break;
        }
      }
    }
    return;
  }
  auto index = std::make_unique<absl::flat_hash_map<std::string, size_t>>();
  index->reserve(obj_.size());
  size_t w = 0;
  for (size_t i = 0; i < obj_.size(); ++i) {
    auto [it, inserted] = index->try_emplace(obj_[i].first, w);
    if (inserted) {
      if (w != i) obj_[w] = std::move(obj_[i]);
      ++w;
    } else {
      obj_[it->second].second = std::move(obj_[i].second);
    }
  }
  obj_.resize(w);
  index_ = std::move(index);
}

int64_t Json::as_int64() const {
  if (type_ != Type::kNumber) return 0;
  if (is_int_) return int_;
  if (std::isnan(num_)) return 0;
  if (num_ >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (num_ <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(num_);
}

const std::string& Json::as_string() const {
  return type_ == Type::kString ? str_ : EmptyString();
}

const Json::ArrayType& Json::array() const {
  static const ArrayType* empty = new ArrayType();
  return type_ == Type::kArray ? arr_ : *empty;
}

const Json::ObjectType& Json::object() const {
  static const ObjectType* empty = new ObjectType();
  return type_ == Type::kObject ? obj_ : *empty;
}

Json::ArrayType& Json::mutable_array() {
  if (type_ == Type::kNull) type_ = Type::kArray;
  return arr_;
}

Json::ObjectType& Json::mutable_object() {
  if (type_ == Type::kNull) type_ = Type::kObject;
  // The caller may edit keys; drop the index and rely on scans until the
  // next insertion through Set/operator[] rebuilds it.
  index_.reset();
  return obj_;
}

size_t Json::size() const {
  if (type_ == Type::kArray) return arr_.size();
  if (type_ == Type::kObject) return obj_.size();
  return 0;
}

const Json* Json::Find(absl::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  if (index_) {
    auto it = index_->find(key);
    return it == index_->end() ? nullptr : &obj_[it->second].second;
  }
  for (const auto& kv : obj_) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

Json* Json::Find(absl::string_view key) {
  return const_cast<Json*>(static_cast<const Json*>(this)->Find(key));
}

const Json& Json::operator[](absl::string_view key) const {
  const Json* j = Find(key);
  return j ? *j : NullJson();
}

Json& Json::operator[](absl::string_view key) {
  if (type_ == Type::kNull) type_ = Type::kObject;
  if (Json* j = Find(key)) return *j;
  obj_.emplace_back(std::string(key), Json());
  if (index_) {
    index_->emplace(std::string(key), obj_.size() - 1);
  } else if (obj_.size() >= kIndexThreshold) {
    RebuildIndex();
  }
  return obj_.back().second;
}

void Json::Set(absl::string_view key, Json value) {
  (*this)[key] = std::move(value);
}

const Json& Json::operator[](size_t i) const {
  if (type_ != Type::kArray || i >= arr_.size()) return NullJson();
  return arr_[i];
}

Json& Json::operator[](size_t i) {
  if (type_ != Type::kArray || i >= arr_.size()) std::abort();
  return arr_[i];
}

void Json::push_back(Json value) {
  if (type_ == Type::kNull) type_ = Type::kArray;
  arr_.push_back(std::move(value));
}

std::string Json::Dump() const {
  std::string out;
  DumpTo(&out);
  return out;
}

void Json::DumpTo(std::string* out) const {
  switch (type_) {
    case Type::kNull:
      out->append("null");
      break;
    case Type::kBool:
      out->append(bool_ ? "true" : "false");
      break;
    case Type::kNumber:
      if (is_int_) {
        absl::StrAppend(out, int_);
      } else {
        AppendDouble(num_, out);
      }
      break;
    case Type::kString:
      AppendQuoted(str_, out);
      break;
    case Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const Json& v : arr_) {
        if (!first) out->push_back(',');
        first = false;
        v.DumpTo(out);
      }
      out->push_back(']');
      break;
    }
    case Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& kv : obj_) {
        if (!first) out->push_back(',');
        first = false;
        AppendQuoted(kv.first, out);
        out->push_back(':');
        kv.second.DumpTo(out);
      }
      out->push_back('}');
      break;
    }
  }
}

bool operator==(const Json& a, const Json& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Json::Type::kNull:
      return true;
    case Json::Type::kBool:
      return a.bool_ == b.bool_;
    case Json::Type::kNumber:
      if (a.is_int_ && b.is_int_) return a.int_ == b.int_;
      return a.num_ == b.num_;
    case Json::Type::kString:
      return a.str_ == b.str_;
    case Json::Type::kArray:
      return a.arr_ == b.arr_;
    case Json::Type::kObject:
      return a.obj_ == b.obj_;
  }
  return false;
}

std::string JsonQuote(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  AppendQuoted(s, &out);
  return out;
}

}  // namespace loom
