#include "data/lra/listops_gen.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"

namespace loom::data::lra {
namespace {

// Token kinds of a tree in prefix order: digits 0..9, operators, the closer.
enum : uint8_t { kMin = 10, kMax = 11, kMed = 12, kSm = 13, kClose = 14 };
constexpr const char* kOpNames[] = {"[MIN", "[MAX", "[MED", "[SM"};
constexpr double kValueP = 0.25;

// Uniform integer in [0, n) by rejection (no modulo bias, fully specified).
uint64_t UniformInt(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// Uniform double in [0, 1) with 53 random bits.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

struct Node {
  uint8_t kind;  // digit, operator or kClose
  uint8_t args;  // operators: number of children
};

class TreeGenerator {
 public:
  TreeGenerator(const ListOpsOptions& o, std::mt19937_64& rng) : o_(o), rng_(rng) {}

  // Generates one tree into `nodes` (prefix order, closers included). Returns false as soon as
  // the length reaches max_length: such a tree would be rejected anyway.
  bool Generate(std::vector<Node>* nodes, int64_t* length) {
    nodes->clear();
    *length = 0;
    return Gen(1, nodes, length);
  }

 private:
  bool Gen(int depth, std::vector<Node>* nodes, int64_t* length) {
    const double r = depth < o_.max_depth ? Uniform01(rng_) : 1.0;
    if (r > kValueP) {
      nodes->push_back({static_cast<uint8_t>(UniformInt(rng_, 10)), 0});
      *length += 1;
      return *length < o_.max_length;
    }
    *length += 2;
    if (*length >= o_.max_length) return false;
    const int k = 2 + static_cast<int>(UniformInt(rng_, o_.max_args - 1));
    const size_t op_at = nodes->size();
    nodes->push_back({0, static_cast<uint8_t>(k)});
    for (int i = 0; i < k; ++i) {
      if (!Gen(depth + 1, nodes, length)) return false;
    }
    // The reference picks the operator after generating the children.
    (*nodes)[op_at].kind = static_cast<uint8_t>(kMin + UniformInt(rng_, 4));
    nodes->push_back({kClose, 0});
    return true;
  }

  const ListOpsOptions& o_;
  std::mt19937_64& rng_;
};

int Apply(uint8_t op, std::vector<int>& args) {
  switch (op) {
    case kMin:
      return *std::min_element(args.begin(), args.end());
    case kMax:
      return *std::max_element(args.begin(), args.end());
    case kMed: {
      std::sort(args.begin(), args.end());
      const size_t n = args.size();
      // int(np.median): the mean of the middle pair, truncated (values are non-negative).
      return n % 2 == 1 ? args[n / 2] : (args[n / 2 - 1] + args[n / 2]) / 2;
    }
    default: {
      int sum = 0;
      for (int a : args) sum += a;
      return sum % 10;
    }
  }
}

// Serialises node `*pos` (advancing it) and returns its value.
int Serialise(const std::vector<Node>& nodes, size_t* pos, std::string* out) {
  const Node n = nodes[(*pos)++];
  if (n.kind < 10) {
    out->push_back(static_cast<char>('0' + n.kind));
    return n.kind;
  }
  for (int i = 0; i <= n.args; ++i) out->append("( ");
  out->append(kOpNames[n.kind - kMin]);
  std::vector<int> args;
  args.reserve(n.args);
  for (int i = 0; i < n.args; ++i) {
    out->push_back(' ');
    args.push_back(Serialise(nodes, pos, out));
    out->append(" )");
  }
  ++*pos;  // the closer
  out->append(" ] )");
  return Apply(n.kind, args);
}

// Two independent 64-bit hashes of the node kinds (the kinds alone determine the tree).
std::pair<uint64_t, uint64_t> TreeHash(const std::vector<Node>& nodes) {
  uint64_t a = 1469598103934665603ULL, b = 0x9E3779B97F4A7C15ULL;
  for (const Node& n : nodes) {
    a = (a ^ n.kind) * 1099511628211ULL;
    b = (b + n.kind + 1) * 0xD6E8FEB86659FD93ULL;
    b ^= b >> 32;
  }
  return {a, b};
}

absl::Status Validate(const ListOpsOptions& o) {
  if (o.num_train < 0 || o.num_val < 0 || o.num_test < 0) {
    return absl::InvalidArgumentError("ListOps split sizes must be >= 0");
  }
  if (o.max_depth < 1 || o.max_depth > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("ListOps max_depth=", o.max_depth, " must be in [1, 1000]"));
  }
  if (o.max_args < 2 || o.max_args > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("ListOps max_args=", o.max_args, " must be in [2, 255]"));
  }
  if (o.min_length < 0 || o.max_length <= o.min_length + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ListOps lengths: need 0 <= min_length and min_length + 1 < max_length (strict bounds), "
        "got min_length=", o.min_length, " max_length=", o.max_length));
  }
  if (o.task.empty() || o.task.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("ListOps task '", o.task, "' is not a name"));
  }
  return absl::OkStatus();
}

// Calls fn(index, example) for every kept tree in order.
absl::Status ForEachExample(const ListOpsOptions& o, const ListOpsProgress& progress,
                            const std::function<absl::Status(int64_t, ListOpsExample&)>& fn) {
  if (auto st = Validate(o); !st.ok()) return st;
  const int64_t total = o.num_train + o.num_val + o.num_test;
  std::mt19937_64 rng(o.seed);
  TreeGenerator gen(o, rng);
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> seen;
  seen.reserve(total);
  std::vector<Node> nodes;
  int64_t kept = 0;
  int64_t since_kept = 0;
  constexpr int64_t kMaxFruitless = 200000000;
  ListOpsExample ex;
  while (kept < total) {
    int64_t length = 0;
    const bool fits = gen.Generate(&nodes, &length);
    if (!fits || length <= o.min_length || !seen.insert(TreeHash(nodes)).second) {
      if (++since_kept > kMaxFruitless) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "ListOps: no new tree with ", o.min_length, " < length < ", o.max_length, " in ",
            kMaxFruitless, " attempts (", kept, " of ", total,
            " found); widen the length bounds or raise max_depth/max_args"));
      }
      continue;
    }
    since_kept = 0;
    ex.source.clear();
    size_t pos = 0;
    ex.target = Serialise(nodes, &pos, &ex.source);
    ex.length = length;
    if (auto st = fn(kept, ex); !st.ok()) return st;
    ++kept;
    if (progress && (kept % 1000 == 0 || kept == total)) progress(kept, total);
  }
  if (progress && total == 0) progress(0, 0);
  return absl::OkStatus();
}

class TsvWriter {
 public:
  ~TsvWriter() {
    if (f_ != nullptr) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  absl::Status Open(const std::string& path) {
    path_ = path;
    tmp_ = path + ".tmp";
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (f_ == nullptr) return absl::InternalError(absl::StrCat("cannot create ", tmp_));
    return Write("Source", "Target");
  }
  absl::Status Write(const std::string& a, const std::string& b) {
    // Python's csv.writer(delimiter='\t'): no field holds a tab, quote or newline, so none is
    // quoted; rows end with "\r\n".
    if (std::fwrite(a.data(), 1, a.size(), f_) != a.size() || std::fputc('\t', f_) == EOF ||
        std::fwrite(b.data(), 1, b.size(), f_) != b.size() || std::fputs("\r\n", f_) == EOF) {
      return absl::InternalError(absl::StrCat("write failed: ", tmp_));
    }
    return absl::OkStatus();
  }
  absl::Status Close() {
    const bool ok = std::fflush(f_) == 0 && std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok) return absl::InternalError(absl::StrCat("write failed: ", tmp_));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      std::remove(tmp_.c_str());
      return absl::InternalError(absl::StrCat("cannot rename ", tmp_, " to ", path_));
    }
    return absl::OkStatus();
  }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
};

}  // namespace

absl::StatusOr<std::vector<ListOpsExample>> GenerateListOpsExamples(
    const ListOpsOptions& options, const ListOpsProgress& progress) {
  std::vector<ListOpsExample> out;
  absl::Status st = ForEachExample(options, progress, [&](int64_t, ListOpsExample& ex) {
    out.push_back(std::move(ex));
    ex = ListOpsExample();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::Status GenerateListOps(const ListOpsOptions& options, const std::string& out_dir,
                             const ListOpsProgress& progress) {
  if (auto st = Validate(options); !st.ok()) return st;
  if (auto st = MakeDirs(out_dir); !st.ok()) return st;
  TsvWriter files[3];
  const char* names[3] = {"train", "val", "test"};
  for (int i = 0; i < 3; ++i) {
    if (auto st = files[i].Open(absl::StrCat(out_dir, "/", options.task, "_", names[i], ".tsv"));
        !st.ok()) {
      return st;
    }
  }
  const int64_t end_train = options.num_train, end_val = options.num_train + options.num_val;
  absl::Status st = ForEachExample(options, progress, [&](int64_t i, ListOpsExample& ex) {
    const int split = i < end_train ? 0 : (i < end_val ? 1 : 2);
    return files[split].Write(ex.source, std::to_string(ex.target));
  });
  if (!st.ok()) return st;
  for (TsvWriter& f : files) {
    if (auto s = f.Close(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

int EvaluateListOps(const std::string& source) {
  struct Frame {
    char op;  // 'n' min, 'x' max, 'd' median, 's' sum mod 10
    std::vector<int> args;
  };
  std::vector<Frame> stack;
  int result = -1;
  int64_t open_parens = 0;
  for (absl::string_view tok : absl::StrSplit(source, absl::ByAnyChar(" \t\r\n"),
                                              absl::SkipEmpty())) {
    if (tok == "(") {
      ++open_parens;
      continue;
    }
    if (tok == ")") {
      if (--open_parens < 0) return -1;
      continue;
    }
    if (tok == "[MIN" || tok == "[MAX" || tok == "[MED" || tok == "[SM") {
      if (result >= 0) return -1;
      stack.push_back({tok == "[MIN" ? 'n' : tok == "[MAX" ? 'x' : tok == "[MED" ? 'd' : 's', {}});
      continue;
    }
    int value;
    if (tok == "]") {
      if (stack.empty() || stack.back().args.empty()) return -1;
      Frame f = std::move(stack.back());
      stack.pop_back();
      std::vector<int>& a = f.args;
      std::sort(a.begin(), a.end());
      switch (f.op) {
        case 'n':
          value = a.front();
          break;
        case 'x':
          value = a.back();
          break;
        case 'd': {
          const size_t m = a.size() / 2;
          const double med = a.size() % 2 == 1 ? a[m] : 0.5 * (a[m - 1] + a[m]);
          value = static_cast<int>(med);
          break;
        }
        default: {
          long sum = 0;
          for (int v : a) sum += v;
          value = static_cast<int>(sum % 10);
        }
      }
    } else if (tok.size() == 1 && tok[0] >= '0' && tok[0] <= '9') {
      value = tok[0] - '0';
    } else {
      return -1;
    }
    if (stack.empty()) {
      if (result >= 0) return -1;  // two top-level expressions
      result = value;
    } else {
      stack.back().args.push_back(value);
    }
  }
  return stack.empty() && open_parens == 0 ? result : -1;
}

int64_t ListOpsLength(const std::string& source) {
  int64_t n = 0;
  for (absl::string_view tok : absl::StrSplit(source, absl::ByAnyChar(" \t\r\n"),
                                              absl::SkipEmpty())) {
    if (tok != "(" && tok != ")") ++n;
  }
  return n;
}

}  // namespace loom::data::lra
