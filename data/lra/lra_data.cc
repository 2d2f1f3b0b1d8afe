#include "data/lra/lra_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/file_io.h"
#include "core/status_macros.h"
#include "data/lra/png_io.h"

namespace loom::data::lra {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSpecials[] = {"<mask>", "<pad>", "<unk>", "<eos>"};
constexpr int32_t kNumSpecials = 4;

// Spec l_max per token task (specs/lra_spt.md §1.6).
constexpr int64_t kListOpsMaxLength = 2048;
constexpr int64_t kTextMaxLength = 4096;
constexpr int64_t kRetrievalMaxLength = 4000;

// CIFAR-10 binary layout.
constexpr int64_t kCifarPixels = 32 * 32;
constexpr int64_t kCifarRecordBytes = 1 + 3 * kCifarPixels;
constexpr int64_t kCifarVal = 5000;

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

std::string Where(const std::string& path, int64_t line) { return absl::StrCat(path, ":", line); }

// Calls `fn(line_no, line)` for every line of `path` (1-based, trailing '\r' removed) until it
// returns false or an error. The file is streamed, never held whole.
absl::Status ForEachLine(
    const std::string& path,
    const std::function<absl::StatusOr<bool>(int64_t, absl::string_view)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InternalError(absl::StrCat(path, ": cannot open for reading"));
  }
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    LOOM_ASSIGN_OR_RETURN(bool more, fn(line_no, line));
    if (!more) return absl::OkStatus();
  }
  if (in.bad()) return absl::InternalError(absl::StrCat(Where(path, line_no + 1), ": read error"));
  return absl::OkStatus();
}

// Names of the regular files in `dir` ending in `suffix`, sorted by name.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir,
                                                   const std::string& suffix) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  }
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    names.push_back(name);
  }
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status RequireDir(const std::string& dir, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory (", what, ")"));
  }
  return absl::OkStatus();
}

// Keeps at most `max_examples` (0: all).
void Cap(std::vector<Example>* v, int64_t max_examples) {
  if (max_examples > 0 && static_cast<int64_t>(v->size()) > max_examples) {
    v->resize(static_cast<size_t>(max_examples));
  }
}

bool Full(const std::vector<Example>& v, int64_t max_examples) {
  return max_examples > 0 && static_cast<int64_t>(v.size()) >= max_examples;
}

std::string Counts(const TaskData& d) {
  return absl::StrCat(d.train.size(), "/", d.val.size(), "/", d.test.size(), " train/val/test");
}

std::string CapNote(int64_t max_examples) {
  return max_examples > 0 ? absl::StrCat(" max_examples=", max_examples, " per split.") : "";
}

// ---- ListOps -----------------------------------------------------------------------------------

// S4/NFS tokenisation: '(' and ')' deleted, ']' -> 'X', split on whitespace. The views point
// into `*buf`.
void ListOpsTokens(absl::string_view source, std::string* buf,
                   std::vector<absl::string_view>* out) {
  buf->clear();
  for (char c : source) {
    if (c == '(' || c == ')') continue;
    buf->push_back(c == ']' ? 'X' : c);
  }
  out->clear();
  const std::string& s = *buf;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out->emplace_back(s.data() + i, j - i);
    i = j;
  }
}

// Reads one basic_*.tsv; calls `fn(line_no, tokens, label)` per data row until `max_rows` rows
// (0: all).
absl::Status ReadListOpsFile(
    const std::string& path, int64_t max_rows,
    const std::function<void(const std::vector<absl::string_view>&, int32_t)>& fn) {
  std::string buf;
  std::vector<absl::string_view> tokens;
  int64_t rows = 0;
  bool saw_header = false;
  LOOM_RETURN_IF_ERROR(
      ForEachLine(path, [&](int64_t line_no, absl::string_view line) -> absl::StatusOr<bool> {
        if (line.empty()) return true;
        std::vector<absl::string_view> cols = absl::StrSplit(line, '\t');
        if (!saw_header) {
          saw_header = true;
          if (cols.size() != 2 || cols[0] != "Source" || cols[1] != "Target") {
            return absl::InvalidArgumentError(absl::StrCat(
                Where(path, line_no), ": expected the header 'Source<TAB>Target', found '",
                line.substr(0, 80), "'"));
          }
          return true;
        }
        if (cols.size() != 2) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(path, line_no), ": expected 2 TAB-separated columns (Source, Target), found ",
              cols.size()));
        }
        const absl::string_view target = absl::StripAsciiWhitespace(cols[1]);
        int label = -1;
        if (!absl::SimpleAtoi(target, &label) || label < 0 || label > 9) {
          return absl::InvalidArgumentError(absl::StrCat(Where(path, line_no), ": label '",
                                                         target.substr(0, 40),
                                                         "' is not an integer in 0..9"));
        }
        ListOpsTokens(cols[0], &buf, &tokens);
        fn(tokens, label);
        ++rows;
        return max_rows <= 0 || rows < max_rows;
      }));
  if (!saw_header) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty file (expected the header 'Source<TAB>Target')"));
  }
  return absl::OkStatus();
}

absl::Status LoadListOps(const LoadOptions& opt, TaskData* d) {
  const int64_t keep = d->max_length - 1;  // tokens before <eos>
  int64_t truncated = 0;

  // Train: provisional ids in order of first appearance, counted, then renumbered.
  absl::flat_hash_map<std::string, int32_t> provisional;
  std::vector<std::string> prov_symbols;
  std::vector<int64_t> prov_counts;
  const std::string train_path = Join(opt.data_dir, "basic_train.tsv");
  LOOM_RETURN_IF_ERROR(ReadListOpsFile(
      train_path, opt.max_examples, [&](const std::vector<absl::string_view>& toks, int32_t label) {
        Example ex;
        ex.label = label;
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(toks.size()), keep);
        if (n < static_cast<int64_t>(toks.size())) ++truncated;
        ex.tokens.reserve(static_cast<size_t>(n + 1));
        for (int64_t i = 0; i < n; ++i) {
          auto [it, inserted] = provisional.try_emplace(std::string(toks[i]),
                                                        static_cast<int32_t>(prov_symbols.size()));
          if (inserted) {
            prov_symbols.emplace_back(toks[i]);
            prov_counts.push_back(0);
          }
          ++prov_counts[it->second];
          ex.tokens.push_back(it->second);
        }
        d->train.push_back(std::move(ex));
      }));

  // Vocabulary: specials, then symbols by descending count, ties by symbol ascending (torchtext's
  // build_vocab_from_iterator). A symbol spelled like a special maps to that special.
  std::vector<int32_t> order(prov_symbols.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    if (prov_counts[a] != prov_counts[b]) return prov_counts[a] > prov_counts[b];
    return prov_symbols[a] < prov_symbols[b];
  });
  absl::flat_hash_map<std::string, int32_t> index;
  for (int32_t i = 0; i < kNumSpecials; ++i) {
    d->vocab.symbols.emplace_back(kSpecials[i]);
    index[kSpecials[i]] = i;
  }
  std::vector<int32_t> remap(prov_symbols.size());
  for (int32_t p : order) {
    auto [it, inserted] =
        index.try_emplace(prov_symbols[p], static_cast<int32_t>(d->vocab.symbols.size()));
    if (inserted) d->vocab.symbols.push_back(prov_symbols[p]);
    remap[p] = it->second;
  }
  for (Example& ex : d->train) {
    for (int32_t& t : ex.tokens) t = remap[t];
    ex.tokens.push_back(Vocab::kEos);
  }

  int64_t unknown = 0;
  for (auto [name, split] :
       {std::pair<const char*, std::vector<Example>*>{"basic_val.tsv", &d->val},
        {"basic_test.tsv", &d->test}}) {
    LOOM_RETURN_IF_ERROR(ReadListOpsFile(
        Join(opt.data_dir, name), opt.max_examples,
        [&](const std::vector<absl::string_view>& toks, int32_t label) {
          Example ex;
          ex.label = label;
          const int64_t n = std::min<int64_t>(static_cast<int64_t>(toks.size()), keep);
          if (n < static_cast<int64_t>(toks.size())) ++truncated;
          ex.tokens.reserve(static_cast<size_t>(n + 1));
          for (int64_t i = 0; i < n; ++i) {
            auto it = index.find(toks[i]);
            if (it == index.end()) ++unknown;
            ex.tokens.push_back(it == index.end() ? Vocab::kUnk : it->second);
          }
          ex.tokens.push_back(Vocab::kEos);
          split->push_back(std::move(ex));
        }));
  }
  d->notes = absl::StrCat(
      "listops: ", Counts(*d), " from basic_{train,val,test}.tsv. Vocabulary ", d->vocab.size(),
      " = 4 specials + ", d->vocab.size() - kNumSpecials,
      " symbols of the loaded train examples (descending count, ties by symbol). ", unknown,
      " val/test tokens unseen in train -> <unk>. ", truncated, " sequences truncated to ", keep,
      " tokens + <eos> (l_max ", d->max_length, ").", CapNote(opt.max_examples));
  return absl::OkStatus();
}

// ---- Byte-level text (IMDB, AAN) ---------------------------------------------------------------

std::vector<int32_t> ByteTokens(absl::string_view text, int64_t max_length, int64_t* truncated) {
  const int64_t keep = std::min<int64_t>(static_cast<int64_t>(text.size()), max_length - 1);
  if (keep < static_cast<int64_t>(text.size())) ++*truncated;
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(keep + 1));
  for (int64_t i = 0; i < keep; ++i) {
    out.push_back(static_cast<int32_t>(static_cast<unsigned char>(text[i])) + kNumSpecials);
  }
  out.push_back(Vocab::kEos);
  return out;
}

// aclImdb/<split>/{neg,pos}/*.txt, alternating neg, pos, ... (each class in sorted name order).
absl::Status LoadImdbSplit(const std::string& dir, int64_t max_examples, int64_t max_length,
                           std::vector<Example>* out, int64_t* truncated) {
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> neg, ListFiles(Join(dir, "neg"), ".txt"));
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> pos, ListFiles(Join(dir, "pos"), ".txt"));
  if (neg.empty() && pos.empty()) {
    return absl::NotFoundError(absl::StrCat(dir, ": no *.txt reviews under neg/ or pos/"));
  }
  std::vector<std::pair<std::string, int32_t>> files;
  for (size_t i = 0; i < std::max(neg.size(), pos.size()); ++i) {
    if (i < neg.size()) files.emplace_back(Join(Join(dir, "neg"), neg[i]), 0);
    if (i < pos.size()) files.emplace_back(Join(Join(dir, "pos"), pos[i]), 1);
  }
  for (const auto& [path, label] : files) {
    if (Full(*out, max_examples)) break;
    LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    Example ex;
    ex.label = label;
    ex.tokens = ByteTokens(text, max_length, truncated);
    out->push_back(std::move(ex));
  }
  return absl::OkStatus();
}

absl::Status LoadText(const LoadOptions& opt, TaskData* d) {
  d->vocab = ByteVocab();
  int64_t truncated = 0;
  LOOM_RETURN_IF_ERROR(LoadImdbSplit(Join(opt.data_dir, "train"), opt.max_examples, d->max_length,
                                     &d->train, &truncated));
  LOOM_RETURN_IF_ERROR(LoadImdbSplit(Join(opt.data_dir, "test"), opt.max_examples, d->max_length,
                                     &d->test, &truncated));
  d->val = d->test;
  d->notes = absl::StrCat(
      "text: ", Counts(*d),
      " from train/ and test/ {neg,pos}/*.txt (alternating neg, pos). IMDB "
      "has no validation split: val = test (as LRA and S4/NFS). Byte level: id = UTF-8 byte + 4. ",
      truncated, " reviews (counting val and test once) truncated to ", d->max_length - 1,
      " bytes + <eos> (l_max ", d->max_length, ").", CapNote(opt.max_examples));
  return absl::OkStatus();
}

absl::Status ReadAanFile(const std::string& path, int64_t max_examples, int64_t max_length,
                         std::vector<Example>* out, int64_t* truncated) {
  return ForEachLine(path, [&](int64_t line_no, absl::string_view line) -> absl::StatusOr<bool> {
    if (line.empty()) return true;
    std::vector<absl::string_view> cols = absl::StrSplit(line, '\t');
    if (cols.size() != 5) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, line_no),
                       ": expected 5 TAB-separated columns (label id1 id2 text1 text2), "
                       "found ",
                       cols.size()));
    }
    const absl::string_view field = absl::StripAsciiWhitespace(cols[0]);
    double value = 0;
    if (!absl::SimpleAtod(field, &value) || !std::isfinite(value) || value <= -1.0 ||
        value >= 2.0 || (static_cast<int32_t>(value) != 0 && static_cast<int32_t>(value) != 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, line_no), ": label '", field.substr(0, 40), "' is not 0 or 1"));
    }
    Example ex;
    ex.label = static_cast<int32_t>(value);  // truncation, as Python's int(float(x))
    ex.tokens = ByteTokens(cols[3], max_length, truncated);
    ex.tokens2 = ByteTokens(cols[4], max_length, truncated);
    out->push_back(std::move(ex));
    return !Full(*out, max_examples);
  });
}

absl::Status LoadRetrieval(const LoadOptions& opt, TaskData* d) {
  d->vocab = ByteVocab();
  int64_t truncated = 0;
  LOOM_RETURN_IF_ERROR(ReadAanFile(Join(opt.data_dir, "new_aan_pairs.train.tsv"), opt.max_examples,
                                   d->max_length, &d->train, &truncated));
  LOOM_RETURN_IF_ERROR(ReadAanFile(Join(opt.data_dir, "new_aan_pairs.eval.tsv"), opt.max_examples,
                                   d->max_length, &d->val, &truncated));
  LOOM_RETURN_IF_ERROR(ReadAanFile(Join(opt.data_dir, "new_aan_pairs.test.tsv"), opt.max_examples,
                                   d->max_length, &d->test, &truncated));
  d->notes = absl::StrCat("retrieval: ", Counts(*d),
                          " from new_aan_pairs.{train,eval,test}.tsv (eval -> val). Byte "
                          "level: id = byte + 4. ",
                          truncated, " documents truncated to ", d->max_length - 1,
                          " bytes + <eos> (l_max ", d->max_length, ").", CapNote(opt.max_examples));
  return absl::OkStatus();
}

// ---- Image (CIFAR-10 binary) -------------------------------------------------------------------

absl::Status ReadCifarFile(const std::string& path, std::vector<Example>* out) {
  LOOM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size == 0) return absl::DataLossError(absl::StrCat(path, ": empty file (no records)"));
  const int64_t records = size / kCifarRecordBytes;
  if (size % kCifarRecordBytes != 0) {
    return absl::DataLossError(absl::StrCat(
        path, ": record ", records, " (0-based) is ", size % kCifarRecordBytes, " bytes, expected ",
        kCifarRecordBytes, " (1 label + 3072 pixel bytes); the file size ", size,
        " is not a multiple of ", kCifarRecordBytes, " (truncated or not CIFAR-10 binary?)"));
  }
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  for (int64_t r = 0; r < records; ++r) {
    const unsigned char* rec = data + r * kCifarRecordBytes;
    if (rec[0] > 9) {
      return absl::DataLossError(absl::StrCat(path, ": record ", r, " (0-based) has label ",
                                              static_cast<int>(rec[0]), ", expected 0..9"));
    }
    Example ex;
    ex.label = rec[0];
    ex.tokens.resize(kCifarPixels);
    const unsigned char* red = rec + 1;
    const unsigned char* green = red + kCifarPixels;
    const unsigned char* blue = green + kCifarPixels;
    for (int64_t p = 0; p < kCifarPixels; ++p) {
      // Pillow's convert('L'): ITU-R 601-2 luma in 16-bit fixed point, rounded.
      ex.tokens[p] = static_cast<int32_t>((uint32_t{red[p]} * 19595 + uint32_t{green[p]} * 38470 +
                                           uint32_t{blue[p]} * 7471 + 32768) >>
                                          16);
    }
    out->push_back(std::move(ex));
  }
  return absl::OkStatus();
}

absl::Status LoadImage(const LoadOptions& opt, TaskData* d) {
  std::vector<Example> all;
  for (int b = 1; b <= 5; ++b) {
    LOOM_RETURN_IF_ERROR(
        ReadCifarFile(Join(opt.data_dir, absl::StrCat("data_batch_", b, ".bin")), &all));
  }
  LOOM_RETURN_IF_ERROR(ReadCifarFile(Join(opt.data_dir, "test_batch.bin"), &d->test));
  const int64_t n = static_cast<int64_t>(all.size());
  const int64_t n_val = std::min<int64_t>(kCifarVal, n / 10);
  const std::vector<int64_t> perm = SeededPermutation(n, opt.split_seed);
  d->train.reserve(static_cast<size_t>(n - n_val));
  d->val.reserve(static_cast<size_t>(n_val));
  for (int64_t i = 0; i < n; ++i) {
    (i < n - n_val ? d->train : d->val).push_back(std::move(all[perm[i]]));
  }
  Cap(&d->train, opt.max_examples);
  Cap(&d->val, opt.max_examples);
  Cap(&d->test, opt.max_examples);
  d->notes = absl::StrCat(
      "image: ", Counts(*d), ". train/val = SeededPermutation(", n, ", seed ", opt.split_seed,
      ") of data_batch_{1..5}.bin: first ", n - n_val, " train, last ", n_val,
      " val (min(5000, n/10)); test = test_batch.bin. Grayscale by Pillow's integer rule, raster "
      "order, pixel values as ids.",
      CapNote(opt.max_examples));
  return absl::OkStatus();
}

// ---- Pathfinder --------------------------------------------------------------------------------

struct PathfinderEntry {
  std::string png;
  int32_t label = 0;
  std::string meta;  // metadata file and line, for errors
  int64_t line = 0;
};

// metadata/*.npy in the order of their integer stems (as S4), or by name if a stem is not an
// integer.
absl::StatusOr<std::vector<std::string>> MetadataFiles(const std::string& meta_dir) {
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(meta_dir, ".npy"));
  if (names.empty())
    return absl::NotFoundError(absl::StrCat(meta_dir, ": no *.npy metadata files"));
  std::vector<std::pair<int64_t, std::string>> numbered;
  for (const std::string& name : names) {
    int64_t k = 0;
    if (!absl::SimpleAtoi(absl::string_view(name).substr(0, name.size() - 4), &k)) return names;
    numbered.emplace_back(k, name);
  }
  std::sort(numbered.begin(), numbered.end());
  for (size_t i = 0; i < numbered.size(); ++i) names[i] = numbered[i].second;
  return names;
}

absl::Status LoadPathfinder(const LoadOptions& opt, int64_t resolution, TaskData* d) {
  const std::string& difficulty = opt.pathfinder_difficulty;
  if (difficulty != "curv_baseline" && difficulty != "curv_contour_length_9" &&
      difficulty != "curv_contour_length_14") {
    return absl::InvalidArgumentError(absl::StrCat(
        "pathfinder difficulty \"", difficulty,
        "\" is not one of the release's curv_baseline, curv_contour_length_9, "
        "curv_contour_length_14"));
  }
  const std::string root = Join(opt.data_dir, difficulty);
  LOOM_RETURN_IF_ERROR(RequireDir(root, absl::StrCat("data_dir should be the pathfinder",
                                                     resolution, "/ directory of the release")));
  const std::string meta_dir = Join(root, "metadata");
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> meta_files, MetadataFiles(meta_dir));

  std::vector<PathfinderEntry> entries;
  std::vector<std::string> empty;
  for (const std::string& name : meta_files) {
    const std::string meta = Join(meta_dir, name);
    LOOM_RETURN_IF_ERROR(
        ForEachLine(meta, [&](int64_t line_no, absl::string_view line) -> absl::StatusOr<bool> {
          if (absl::StripAsciiWhitespace(line).empty()) return true;
          std::vector<absl::string_view> f =
              absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
          if (f.size() < 4) {
            return absl::InvalidArgumentError(
                absl::StrCat(Where(meta, line_no),
                             ": expected at least 4 space-separated fields "
                             "('imgs/<k> sample_<i>.png <index> <label> ...'), found ",
                             f.size()));
          }
          int label = -1;
          if (!absl::SimpleAtoi(f[3], &label) || (label != 0 && label != 1)) {
            return absl::InvalidArgumentError(absl::StrCat(Where(meta, line_no),
                                                           ": label (field 4) '",
                                                           f[3].substr(0, 40), "' is not 0 or 1"));
          }
          PathfinderEntry e;
          e.png = Join(Join(root, std::string(f[0])), std::string(f[1]));
          e.label = label;
          e.meta = meta;
          e.line = line_no;
          std::error_code ec;
          const uintmax_t size = fs::file_size(e.png, ec);
          if (ec) {
            return absl::NotFoundError(
                absl::StrCat(Where(meta, line_no), ": image '", e.png, "': ", ec.message()));
          }
          if (size == 0) {
            empty.push_back(e.png);
          } else {
            entries.push_back(std::move(e));
          }
          return true;
        }));
  }

  const int64_t n = static_cast<int64_t>(entries.size());
  const int64_t n_val = n / 10, n_test = n / 10, n_train = n - n_val - n_test;
  const std::vector<int64_t> perm = SeededPermutation(n, opt.split_seed);
  const int64_t pixels = resolution * resolution;
  struct Part {
    std::vector<Example>* out;
    int64_t begin, end;
  };
  for (const Part& part : {Part{&d->train, 0, n_train}, Part{&d->val, n_train, n_train + n_val},
                           Part{&d->test, n_train + n_val, n}}) {
    int64_t end = part.end;
    if (opt.max_examples > 0) end = std::min(end, part.begin + opt.max_examples);
    part.out->reserve(static_cast<size_t>(end - part.begin));
    for (int64_t i = part.begin; i < end; ++i) {
      const PathfinderEntry& e = entries[perm[i]];
      absl::StatusOr<GrayImage> img = ReadGrayPng(e.png);
      if (!img.ok()) {
        return absl::Status(img.status().code(),
                            absl::StrCat(Where(e.meta, e.line), ": ", img.status().message()));
      }
      if (img->height != resolution || img->width != resolution) {
        return absl::DataLossError(absl::StrCat(Where(e.meta, e.line), ": image '", e.png, "' is ",
                                                img->height, " x ", img->width, ", expected ",
                                                resolution, " x ", resolution));
      }
      Example ex;
      ex.label = e.label;
      ex.tokens.assign(img->pixels.begin(), img->pixels.begin() + pixels);
      part.out->push_back(std::move(ex));
    }
  }

  std::string empty_note;
  if (!empty.empty()) {
    std::vector<std::string> shown(empty.begin(),
                                   empty.begin() + std::min<size_t>(empty.size(), 5));
    empty_note = absl::StrCat(" Skipped ", empty.size(),
                              " empty PNG file(s) before splitting: ", absl::StrJoin(shown, ", "),
                              empty.size() > 5 ? ", ..." : "", ".");
  } else {
    empty_note = " No empty PNG files.";
  }
  d->notes = absl::StrCat(
      d->task, ": ", Counts(*d), " from ", difficulty, "/ (", meta_files.size(),
      " metadata files, ", n, " usable images). Splits: SeededPermutation(", n, ", seed ",
      opt.split_seed, "): first ", n_train, " train, next ", n_val, " val, last ", n_test,
      " test (80/10/10).", empty_note, " ", resolution, "x", resolution,
      " raster order, pixel values as ids.", CapNote(opt.max_examples));
  return absl::OkStatus();
}

}  // namespace

int32_t Vocab::Id(const std::string& symbol) const {
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (symbols[i] == symbol) return static_cast<int32_t>(i);
  }
  return kUnk;
}

int32_t Vocab::size() const { return static_cast<int32_t>(symbols.size()); }

Vocab ByteVocab() {
  Vocab v;
  for (const char* s : kSpecials) v.symbols.emplace_back(s);
  for (int b = 0; b < 256; ++b) v.symbols.push_back(absl::StrFormat("b:0x%02X", b));
  return v;
}

std::vector<int64_t> SeededPermutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(p.begin(), p.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

absl::StatusOr<TaskData> LoadTask(const LoadOptions& options) {
  TaskData d;
  d.task = options.task == "pathfinder128" ? "pathx" : options.task;
  int64_t resolution = 0;  // pixel tasks
  int64_t default_length = 0;
  if (d.task == "listops") {
    default_length = kListOpsMaxLength;
    d.num_classes = 10;
  } else if (d.task == "text") {
    default_length = kTextMaxLength;
    d.num_classes = 2;
  } else if (d.task == "retrieval") {
    default_length = kRetrievalMaxLength;
    d.num_classes = 2;
  } else if (d.task == "image") {
    resolution = 32;
    d.num_classes = 10;
  } else if (d.task == "pathfinder32" || d.task == "pathfinder64" || d.task == "pathx" ||
             d.task == "pathfinder256") {
    resolution = d.task == "pathfinder32"   ? 32
                 : d.task == "pathfinder64" ? 64
                 : d.task == "pathx"        ? 128
                                            : 256;
    d.num_classes = 2;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("LRA task '", options.task,
                     "' is unknown; expected one of listops, text, retrieval, "
                     "image, pathfinder32, pathfinder64, pathx (= pathfinder128), pathfinder256"));
  }
  d.pixel_input = resolution > 0;
  if (d.pixel_input) default_length = resolution * resolution;

  if (options.max_length < 0 ||
      (d.pixel_input && options.max_length != 0 && options.max_length != default_length) ||
      (!d.pixel_input && options.max_length == 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LRA task '", d.task, "': max_length ", options.max_length, " is invalid; ",
        d.pixel_input ? absl::StrCat("pixel tasks use the whole image: 0 or ", default_length)
                      : "use 0 (the spec's l_max) or at least 2 (one token + <eos>)"));
  }
  d.max_length = options.max_length == 0 ? default_length : options.max_length;
  if (options.max_examples < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LRA task '", d.task, "': max_examples ", options.max_examples, " < 0"));
  }
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("LRA task '", d.task, "': data_dir is empty"));
  }
  LOOM_RETURN_IF_ERROR(RequireDir(options.data_dir, absl::StrCat("data_dir of LRA task ", d.task)));

  if (d.task == "listops") {
    LOOM_RETURN_IF_ERROR(LoadListOps(options, &d));
  } else if (d.task == "text") {
    LOOM_RETURN_IF_ERROR(LoadText(options, &d));
  } else if (d.task == "retrieval") {
    LOOM_RETURN_IF_ERROR(LoadRetrieval(options, &d));
  } else if (d.task == "image") {
    LOOM_RETURN_IF_ERROR(LoadImage(options, &d));
  } else {
    LOOM_RETURN_IF_ERROR(LoadPathfinder(options, resolution, &d));
  }
  return d;
}

}  // namespace loom::data::lra
