// lra_gen: writes Long Range Arena data in the official release formats (specs/lra_spt.md §1),
// generated (ListOps, Pathfinder) or converted from data bundled on this machine.
//
//   lra_gen listops --out_dir=D [--train=96000 --val=2000 --test=2000 --seed=0]
//       D/basic_{train,val,test}.tsv ("Source<TAB>Target" header, CRLF lines), §2.1 rules.
//   lra_gen pathfinder --resolution=32|64|128|256 --out_dir=D/pathfinder32 --num_images=N
//       [--difficulty=14] [--images_per_dir=1000] [--seed=0] [--threads=0]
//       D/pathfinder32/curv_contour_length_14/imgs/<k>/sample_<i>.png + metadata/<k>.npy (text).
//       --difficulty is the contour length: 6 (curv_baseline), 9 or 14.
//   lra_gen imdb --input=/work/shared/data/imdb/reviews.json.gz --out_dir=D [--seed=0]
//       The gzipped JSON list of {"t": text, "s": 0|1} -> the aclImdb layout
//       D/{train,test}/{pos,neg}/<id>_<rating>.txt: each class is shuffled with --seed and split
//       in half, so train and test get 12,500 + 12,500 of the 50,000 reviews. The real star
//       ratings are not in the input: files say 10 for pos and 1 for neg.
//   lra_gen fashion --input_dir=/usr/share/datasets/fashion-mnist --out_dir=D
//       Fashion-MNIST (idx .gz) in the CIFAR-10 binary layout: D/data_batch_{1..5}.bin (the first
//       50,000 training images, 10,000 each), D/test_batch.bin (10,000), D/batches.meta.txt.
//       Record = label byte + 3 x 1024 bytes: the 28x28 image centred in 32x32 (2 px of zeros
//       around), the same in the R, G and B planes, so grayscale readers get it back exactly.
//       The last 10,000 training images do not fit the CIFAR layout and are not written.
//   lra_gen aan --corpus_dir=DIR --out_dir=D [--pairs=20000] [--seed=0]
//       A retrieval task in the AAN TSV format from the books in DIR/*.txt:
//       D/new_aan_pairs.{train,eval,test}.tsv, no header, "label<TAB>id1<TAB>id2<TAB>text1<TAB>
//       text2", tabs and newlines in texts turned into spaces, ids "P<5 digits>" numbered in a
//       seeded random order (they do not reveal the book). Books are cut at paragraph breaks
//       into passages of 2000-4000 bytes; each passage belongs to one split (80/10/10 of every
//       book's passages); a pair is label 1 when both passages come from the same book, 0 when
//       from two books. --pairs are split 80/10/10, half of each split positive, shuffled, seeded.
//
// Progress goes to stderr (a live line on a terminal, else a line every few seconds). Exit
// status: 0 ok, 1 the work failed (the message names the file), 2 usage error (names the flag).
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/status_macros.h"
#include "data/lra/listops_gen.h"
#include "data/lra/pathfinder_gen.h"

ABSL_FLAG(std::string, out_dir, "", "Output directory (created).");
ABSL_FLAG(uint64_t, seed, 0, "Random seed; the same seed gives byte-identical output.");
// listops
ABSL_FLAG(int64_t, train, 96000, "listops: training examples.");
ABSL_FLAG(int64_t, val, 2000, "listops: validation examples.");
ABSL_FLAG(int64_t, test, 2000, "listops: test examples.");
ABSL_FLAG(int, max_depth, 10, "listops: maximum tree depth.");
ABSL_FLAG(int, max_args, 10, "listops: maximum arguments per operator.");
ABSL_FLAG(int64_t, min_length, 500, "listops: keep trees longer than this (tokens, no parens).");
ABSL_FLAG(int64_t, max_length, 2000, "listops: keep trees shorter than this.");
// pathfinder
ABSL_FLAG(int, resolution, 32, "pathfinder: 32, 64, 128 or 256.");
ABSL_FLAG(int64_t, num_images, 0, "pathfinder: number of images (required).");
ABSL_FLAG(int, difficulty, 14, "pathfinder: contour length, 6 (curv_baseline), 9 or 14.");
ABSL_FLAG(int64_t, images_per_dir, 1000, "pathfinder: images per imgs/<k> and metadata/<k>.npy.");
ABSL_FLAG(int, threads, 0, "pathfinder: worker threads (0: all cores).");
// imdb / fashion / aan
ABSL_FLAG(std::string, input, "", "imdb: the gzipped JSON list of reviews.");
ABSL_FLAG(std::string, input_dir, "", "fashion: directory of the Fashion-MNIST idx .gz files.");
ABSL_FLAG(std::string, corpus_dir, "", "aan: directory of plain-text books (*.txt).");
ABSL_FLAG(int64_t, pairs, 20000, "aan: document pairs over the three splits (80/10/10).");
ABSL_FLAG(std::string, progress, "auto", "Progress on stderr: auto, tty, plain or none.");

namespace loom {
namespace {

constexpr char kUsage[] =
    "lra_gen COMMAND [flags]: Long Range Arena data in the official release formats\n"
    "  lra_gen listops --out_dir=D [--train=96000 --val=2000 --test=2000 --seed=S]\n"
    "  lra_gen pathfinder --resolution=32|64|128|256 --out_dir=D/pathfinder32 --num_images=N\n"
    "          [--difficulty=14] [--images_per_dir=1000] [--seed=S] [--threads=0]\n"
    "  lra_gen imdb --input=reviews.json.gz --out_dir=D [--seed=S]\n"
    "  lra_gen fashion --input_dir=/usr/share/datasets/fashion-mnist --out_dir=D\n"
    "  lra_gen aan --corpus_dir=DIR --out_dir=D [--pairs=20000] [--seed=S]\n"
    "(see the top of tools/lra_gen.cc for the formats)";

// A usage error: exit status 2.
struct UsageError {
  std::string message;
};

// ---- Shared helpers ----------------------------------------------------------------------------

uint64_t UniformInt(std::mt19937_64& rng, uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

template <typename T>
void Shuffle(std::vector<T>* v, std::mt19937_64& rng) {
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[UniformInt(rng, i)]);
}

// Throttled progress on stderr.
class Progress {
 public:
  Progress(std::string what, int64_t total)
      : what_(std::move(what)), total_(total), reporter_(ModeFor(), total, stderr),
        last_(std::chrono::steady_clock::now()) {}
  void Update(int64_t done) {
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool tty = ModeFor() == ProgressReporter::Mode::kTty;
    if (done < total_ && since < (tty ? 0.2 : 5.0)) return;
    last_ = now;
    reporter_.Step(done, what_, /*print_plain=*/true);
  }
  void Finish() { reporter_.Finish(); }

 private:
  static ProgressReporter::Mode ModeFor() {
    const std::string name = absl::GetFlag(FLAGS_progress);
    if (name == "auto") {
      return isatty(fileno(stderr)) ? ProgressReporter::Mode::kTty
                                    : ProgressReporter::Mode::kPlain;
    }
    return ProgressReporter::ModeFromName(name);
  }
  std::string what_;
  int64_t total_;
  ProgressReporter reporter_;
  std::chrono::steady_clock::time_point last_;
};

absl::StatusOr<std::string> ReadGzip(const std::string& path) {
  if (!FileExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::InternalError(absl::StrCat(path, ": cannot open"));
  gzbuffer(f, 1 << 20);
  std::string out;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      const std::string msg = gzerror(f, &err);
      gzclose(f);
      return absl::DataLossError(absl::StrCat(path, ": not a readable gzip file (", msg, ")"));
    }
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  gzclose(f);
  return out;
}

// Writes a file without fsync (tens of thousands of small files; rerun on failure).
absl::Status WritePlain(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot create ", path));
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) return absl::InternalError(absl::StrCat("write failed: ", path));
  return absl::OkStatus();
}

std::string RequireFlag(const std::string& value, const char* flag) {
  if (value.empty()) throw UsageError{absl::StrCat("--", flag, " is required")};
  return ResolveInvocationPath(value);
}

// ---- listops -----------------------------------------------------------------------------------

absl::Status RunListOps() {
  const std::string out_dir = RequireFlag(absl::GetFlag(FLAGS_out_dir), "out_dir");
  data::lra::ListOpsOptions o;
  o.num_train = absl::GetFlag(FLAGS_train);
  o.num_val = absl::GetFlag(FLAGS_val);
  o.num_test = absl::GetFlag(FLAGS_test);
  o.max_depth = absl::GetFlag(FLAGS_max_depth);
  o.max_args = absl::GetFlag(FLAGS_max_args);
  o.min_length = absl::GetFlag(FLAGS_min_length);
  o.max_length = absl::GetFlag(FLAGS_max_length);
  o.seed = absl::GetFlag(FLAGS_seed);
  if (o.num_train < 0 || o.num_val < 0 || o.num_test < 0) {
    throw UsageError{"--train, --val and --test must be >= 0"};
  }
  if (o.max_depth < 1 || o.max_depth > 1000) throw UsageError{"--max_depth must be in [1, 1000]"};
  if (o.max_args < 2 || o.max_args > 255) throw UsageError{"--max_args must be in [2, 255]"};
  if (o.min_length < 0 || o.max_length <= o.min_length + 1) {
    throw UsageError{"--min_length and --max_length: need 0 <= min_length < max_length - 1"};
  }
  const auto start = std::chrono::steady_clock::now();
  Progress progress("trees", o.num_train + o.num_val + o.num_test);
  LOOM_RETURN_IF_ERROR(data::lra::GenerateListOps(
      o, out_dir, [&](int64_t done, int64_t) { progress.Update(done); }));
  progress.Finish();
  absl::PrintF("lra_gen listops: %d/%d/%d trees (seed %d) -> %s/basic_{train,val,test}.tsv in %.1f s\n",
               o.num_train, o.num_val, o.num_test, o.seed, out_dir,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
}

// ---- pathfinder --------------------------------------------------------------------------------

absl::Status RunPathfinder() {
  const std::string out_dir = RequireFlag(absl::GetFlag(FLAGS_out_dir), "out_dir");
  data::lra::PathfinderOptions o;
  o.resolution = absl::GetFlag(FLAGS_resolution);
  o.contour_length = absl::GetFlag(FLAGS_difficulty);
  o.num_images = absl::GetFlag(FLAGS_num_images);
  o.images_per_dir = absl::GetFlag(FLAGS_images_per_dir);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.num_threads = absl::GetFlag(FLAGS_threads);
  if (o.resolution != 32 && o.resolution != 64 && o.resolution != 128 && o.resolution != 256) {
    throw UsageError{absl::StrCat("--resolution=", o.resolution, " must be 32, 64, 128 or 256")};
  }
  if (o.contour_length < 3 || o.contour_length > 30) {
    throw UsageError{absl::StrCat("--difficulty=", o.contour_length,
                                  " must be a contour length in [3, 30] (6, 9 or 14 in LRA)")};
  }
  if (o.num_images < 1) throw UsageError{"--num_images is required (>= 1)"};
  if (o.images_per_dir < 1) throw UsageError{"--images_per_dir must be >= 1"};
  if (o.num_threads < 0) throw UsageError{"--threads must be >= 0"};
  const auto start = std::chrono::steady_clock::now();
  Progress progress("images", o.num_images);
  LOOM_RETURN_IF_ERROR(data::lra::GeneratePathfinder(
      o, out_dir, [&](int64_t done, int64_t) { progress.Update(done); }));
  progress.Finish();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  absl::PrintF("lra_gen pathfinder: %d images %dx%d (seed %d) -> %s/%s in %.1f s (%.2f ms/image)\n",
               o.num_images, o.resolution, o.resolution, o.seed, out_dir,
               data::lra::PathfinderDifficultyName(o.contour_length), secs,
               1000 * secs / o.num_images);
  return absl::OkStatus();
}

// ---- imdb --------------------------------------------------------------------------------------

absl::Status RunImdb() {
  const std::string input = RequireFlag(absl::GetFlag(FLAGS_input), "input");
  const std::string out_dir = RequireFlag(absl::GetFlag(FLAGS_out_dir), "out_dir");
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  LOOM_ASSIGN_OR_RETURN(std::string text, ReadGzip(input));
  absl::StatusOr<Json> parsed = Json::Parse(text);
  if (!parsed.ok()) {
    return absl::DataLossError(absl::StrCat(input, ": not JSON: ", parsed.status().message()));
  }
  text.clear();
  text.shrink_to_fit();
  if (!parsed->is_array()) {
    return absl::DataLossError(absl::StrCat(input, ": expected a JSON list of reviews"));
  }
  const Json::ArrayType& reviews = parsed->array();
  std::vector<size_t> by_class[2];
  for (size_t i = 0; i < reviews.size(); ++i) {
    const Json& r = reviews[i];
    const Json* t = r.is_object() ? r.Find("t") : nullptr;
    const Json* s = r.is_object() ? r.Find("s") : nullptr;
    if (t == nullptr || !t->is_string() || s == nullptr || !s->is_int64() ||
        (s->as_int64() != 0 && s->as_int64() != 1)) {
      return absl::DataLossError(absl::StrCat(
          input, ": review ", i, " is not {\"t\": text, \"s\": 0 or 1}"));
    }
    by_class[s->as_int64()].push_back(i);
  }
  if (by_class[0].size() < 2 || by_class[1].size() < 2) {
    return absl::DataLossError(absl::StrCat(input, ": needs at least 2 reviews of each class (",
                                            by_class[0].size(), " neg, ", by_class[1].size(),
                                            " pos)"));
  }
  // Each class: shuffled with the seed, first half -> train, the rest -> test.
  std::mt19937_64 rng(seed);
  for (auto& v : by_class) Shuffle(&v, rng);
  const char* kClass[2] = {"neg", "pos"};
  const int kRating[2] = {1, 10};
  int64_t counts[2][2] = {};
  Progress progress("reviews", static_cast<int64_t>(reviews.size()));
  int64_t done = 0;
  for (int split = 0; split < 2; ++split) {
    for (int c = 0; c < 2; ++c) {
      const std::string dir =
          absl::StrCat(out_dir, "/", split == 0 ? "train" : "test", "/", kClass[c]);
      LOOM_RETURN_IF_ERROR(MakeDirs(dir));
      // Files of an earlier run (other ids or ratings) would be read with these.
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".txt") {
          std::filesystem::remove(e.path(), ec);
        }
      }
      const size_t half = by_class[c].size() / 2;
      const size_t begin = split == 0 ? 0 : half, end = split == 0 ? half : by_class[c].size();
      for (size_t k = begin; k < end; ++k) {
        const int64_t id = static_cast<int64_t>(k - begin);
        LOOM_RETURN_IF_ERROR(WritePlain(absl::StrCat(dir, "/", id, "_", kRating[c], ".txt"),
                                        reviews[by_class[c][k]].Find("t")->as_string()));
        ++counts[split][c];
        progress.Update(++done);
      }
    }
  }
  progress.Finish();
  absl::PrintF(
      "lra_gen imdb: %d reviews -> %s/train (%d neg, %d pos), %s/test (%d neg, %d pos); split "
      "seed %d; ratings in file names are 10 (pos) / 1 (neg), the real ones are unknown\n",
      reviews.size(), out_dir, counts[0][0], counts[0][1], out_dir, counts[1][0], counts[1][1],
      seed);
  return absl::OkStatus();
}

// ---- fashion -----------------------------------------------------------------------------------

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

struct IdxImages {
  int64_t n = 0;
  std::string pixels;  // n * 28 * 28
  std::string labels;  // n
};

absl::StatusOr<IdxImages> ReadFashionSplit(const std::string& dir, const std::string& prefix) {
  const std::string ipath = absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz");
  const std::string lpath = absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz");
  LOOM_ASSIGN_OR_RETURN(std::string img, ReadGzip(ipath));
  LOOM_ASSIGN_OR_RETURN(std::string lab, ReadGzip(lpath));
  if (img.size() < 16 || BigEndian32(img, 0) != 0x803) {
    return absl::DataLossError(absl::StrCat(ipath, ": not an idx3 image file (magic 0x803)"));
  }
  if (lab.size() < 8 || BigEndian32(lab, 0) != 0x801) {
    return absl::DataLossError(absl::StrCat(lpath, ": not an idx1 label file (magic 0x801)"));
  }
  IdxImages out;
  out.n = BigEndian32(img, 4);
  const uint32_t rows = BigEndian32(img, 8), cols = BigEndian32(img, 12);
  if (rows != 28 || cols != 28) {
    return absl::DataLossError(
        absl::StrCat(ipath, ": images are ", rows, "x", cols, ", expected 28x28"));
  }
  if (img.size() != 16 + static_cast<size_t>(out.n) * 784) {
    return absl::DataLossError(absl::StrCat(ipath, ": ", img.size(), " bytes for ", out.n,
                                            " images (expected ", 16 + out.n * 784, ")"));
  }
  if (BigEndian32(lab, 4) != out.n || lab.size() != 8 + static_cast<size_t>(out.n)) {
    return absl::DataLossError(absl::StrCat(lpath, ": label count does not match the ", out.n,
                                            " images of ", ipath));
  }
  out.pixels = img.substr(16);
  out.labels = lab.substr(8);
  for (size_t i = 0; i < out.labels.size(); ++i) {
    if (static_cast<uint8_t>(out.labels[i]) > 9) {
      return absl::DataLossError(absl::StrCat(lpath, ": label ", i, " is ",
                                              static_cast<int>(static_cast<uint8_t>(out.labels[i])),
                                              ", expected 0..9"));
    }
  }
  return out;
}

// CIFAR-10 binary records for images [begin, end).
std::string CifarRecords(const IdxImages& d, int64_t begin, int64_t end) {
  std::string out;
  out.reserve(static_cast<size_t>(end - begin) * 3073);
  std::string plane(1024, '\0');
  for (int64_t i = begin; i < end; ++i) {
    out.push_back(d.labels[i]);
    std::fill(plane.begin(), plane.end(), '\0');
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) plane[(y + 2) * 32 + (x + 2)] = d.pixels[i * 784 + y * 28 + x];
    }
    for (int c = 0; c < 3; ++c) out += plane;
  }
  return out;
}

absl::Status RunFashion() {
  const std::string in = RequireFlag(absl::GetFlag(FLAGS_input_dir), "input_dir");
  const std::string out_dir = RequireFlag(absl::GetFlag(FLAGS_out_dir), "out_dir");
  LOOM_ASSIGN_OR_RETURN(IdxImages train, ReadFashionSplit(in, "train"));
  LOOM_ASSIGN_OR_RETURN(IdxImages test, ReadFashionSplit(in, "t10k"));
  if (train.n < 50000) {
    return absl::DataLossError(absl::StrCat(in, ": ", train.n,
                                            " training images; the CIFAR layout needs 50,000"));
  }
  LOOM_RETURN_IF_ERROR(MakeDirs(out_dir));
  for (int b = 0; b < 5; ++b) {
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(out_dir, "/data_batch_", b + 1, ".bin"),
                                             CifarRecords(train, b * 10000, (b + 1) * 10000)));
  }
  LOOM_RETURN_IF_ERROR(
      WriteFileAtomically(out_dir + "/test_batch.bin", CifarRecords(test, 0, test.n)));
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(
      out_dir + "/batches.meta.txt",
      "T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n"));
  absl::PrintF(
      "lra_gen fashion: %s -> %s/data_batch_{1..5}.bin (50000 of %d train images), "
      "test_batch.bin (%d); 28x28 centred in 32x32, gray in R=G=B\n",
      in, out_dir, train.n, test.n);
  return absl::OkStatus();
}

// ---- aan ---------------------------------------------------------------------------------------

struct Passage {
  int book;
  int index;  // within the book
  std::string text;
};

// Cuts a book at paragraph breaks (blank lines) into passages of kMin..kMax bytes. A paragraph
// longer than what fits is cut at a space. The tail shorter than kMin is dropped.
std::vector<std::string> CutPassages(const std::string& raw) {
  constexpr size_t kMin = 2000, kMax = 4000;
  std::string text;
  text.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r') text.push_back(c);
  }
  std::vector<std::string> paragraphs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string p = text.substr(pos, end - pos);
    const size_t a = p.find_first_not_of(" \n\t"), b = p.find_last_not_of(" \n\t");
    if (a != std::string::npos) paragraphs.push_back(p.substr(a, b - a + 1));
    pos = end + 2;
  }
  std::vector<std::string> out;
  std::string cur;
  for (std::string para : paragraphs) {
    while (!para.empty()) {
      const size_t sep = cur.empty() ? 0 : 2;
      if (cur.size() + sep + para.size() <= kMax) {
        if (sep) cur += "\n\n";
        cur += para;
        para.clear();
      } else if (cur.size() >= kMin) {
        out.push_back(std::move(cur));
        cur.clear();
      } else {
        // Fill the passage to about 3000 bytes from this paragraph, cut at a space (never inside
        // a UTF-8 sequence).
        const size_t room = (kMin + kMax) / 2 - cur.size() - sep;  // >= 998: cur < kMin
        size_t cut = para.rfind(' ', room);
        if (cut == std::string::npos || cut == 0) {
          cut = room;
          while (cut > 0 && (static_cast<uint8_t>(para[cut]) & 0xC0) == 0x80) --cut;
          if (cut == 0) cut = room;
        }
        if (sep) cur += "\n\n";
        cur += para.substr(0, cut);
        const size_t rest = para.find_first_not_of(' ', cut);
        para = rest == std::string::npos ? "" : para.substr(rest);
        if (cur.size() >= kMin) {
          out.push_back(std::move(cur));
          cur.clear();
        }
      }
    }
    if (cur.size() >= kMin) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  return out;
}

std::string TsvField(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

absl::Status RunAan() {
  const std::string corpus = RequireFlag(absl::GetFlag(FLAGS_corpus_dir), "corpus_dir");
  const std::string out_dir = RequireFlag(absl::GetFlag(FLAGS_out_dir), "out_dir");
  const int64_t pairs = absl::GetFlag(FLAGS_pairs);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (pairs < 3) throw UsageError{absl::StrCat("--pairs=", pairs, " must be >= 3")};
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(corpus, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path().string());
  }
  if (ec) return absl::NotFoundError(absl::StrCat(corpus, ": cannot list (", ec.message(), ")"));
  std::sort(files.begin(), files.end());
  if (files.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(corpus, ": needs at least two *.txt books, found ", files.size()));
  }
  std::vector<std::string> names;
  std::vector<Passage> passages;
  for (size_t b = 0; b < files.size(); ++b) {
    LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(files[b]));
    names.push_back(std::filesystem::path(files[b]).stem().string());
    std::vector<std::string> cut = CutPassages(text);
    for (size_t i = 0; i < cut.size(); ++i) {
      passages.push_back({static_cast<int>(b), static_cast<int>(i), std::move(cut[i])});
    }
  }
  // Every book's passages: shuffled, 80% train, 10% eval, 10% test.
  std::mt19937_64 rng(seed);
  const int num_books = static_cast<int>(files.size());
  std::vector<std::vector<int>> split_pass(3);                   // passage ids per split
  std::vector<std::vector<std::vector<int>>> by_book(3, std::vector<std::vector<int>>(num_books));
  {
    std::vector<std::vector<int>> per_book(num_books);
    for (size_t i = 0; i < passages.size(); ++i) per_book[passages[i].book].push_back(static_cast<int>(i));
    for (int b = 0; b < num_books; ++b) {
      std::vector<int>& v = per_book[b];
      Shuffle(&v, rng);
      const size_t n = v.size();
      const size_t n_eval = n / 10, n_test = n / 10, n_train = n - n_eval - n_test;
      for (size_t k = 0; k < n; ++k) {
        const int s = k < n_train ? 0 : (k < n_train + n_eval ? 1 : 2);
        split_pass[s].push_back(v[k]);
        by_book[s][b].push_back(v[k]);
      }
    }
  }
  // Opaque document ids (a seeded numbering), so ids say nothing about the book.
  std::vector<int> passage_id(passages.size());
  for (size_t i = 0; i < passages.size(); ++i) passage_id[i] = static_cast<int>(i);
  Shuffle(&passage_id, rng);
  const int64_t n_eval = pairs / 10, n_test = pairs / 10, n_train = pairs - n_eval - n_test;
  const int64_t split_pairs[3] = {n_train, n_eval, n_test};
  const char* split_names[3] = {"train", "eval", "test"};
  Progress progress("pairs", pairs);
  int64_t done = 0;
  std::string summary;
  for (int s = 0; s < 3; ++s) {
    // Positive first passages: those whose book has another passage in this split.
    std::vector<int> pos_first;
    std::set<int> books_here;
    for (int p : split_pass[s]) {
      books_here.insert(passages[p].book);
      if (by_book[s][passages[p].book].size() >= 2) pos_first.push_back(p);
    }
    if (pos_first.empty() || books_here.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          corpus, ": too little text for the ", split_names[s], " split (", split_pass[s].size(),
          " passages of 2000-4000 bytes in ", books_here.size(),
          " books); add books or make them longer"));
    }
    const int64_t n = split_pairs[s], n_pos = n / 2;
    std::vector<int> labels(n);
    for (int64_t i = 0; i < n; ++i) labels[i] = i < n_pos ? 1 : 0;
    Shuffle(&labels, rng);
    std::set<std::pair<int, int>> used;
    std::string tsv;
    for (int64_t i = 0; i < n; ++i) {
      int a = 0, b = 0;
      for (int attempt = 0; attempt < 100; ++attempt) {
        if (labels[i] == 1) {
          a = pos_first[UniformInt(rng, pos_first.size())];
          const std::vector<int>& same = by_book[s][passages[a].book];
          do {
            b = same[UniformInt(rng, same.size())];
          } while (b == a);
        } else {
          do {
            a = split_pass[s][UniformInt(rng, split_pass[s].size())];
            b = split_pass[s][UniformInt(rng, split_pass[s].size())];
          } while (passages[a].book == passages[b].book);
        }
        if (used.insert({std::min(a, b), std::max(a, b)}).second) break;
      }
      auto id = [&](int p) { return absl::StrFormat("P%05d", passage_id[p]); };
      absl::StrAppend(&tsv, labels[i], "\t", id(a), "\t", id(b), "\t", TsvField(passages[a].text),
                      "\t", TsvField(passages[b].text), "\n");
      progress.Update(++done);
    }
    LOOM_RETURN_IF_ERROR(MakeDirs(out_dir));
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(
        absl::StrCat(out_dir, "/new_aan_pairs.", split_names[s], ".tsv"), tsv));
    absl::StrAppend(&summary, s ? ", " : "", split_names[s], " ", n, " (", split_pass[s].size(),
                    " passages)");
  }
  progress.Finish();
  absl::PrintF("lra_gen aan: %d books, %d passages -> %s/new_aan_pairs.{train,eval,test}.tsv: %s; "
               "half of each split label 1 (same book); seed %d\n",
               num_books, passages.size(), out_dir, summary, seed);
  return absl::OkStatus();
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(loom::kUsage);
  // absl exits with 1 on an unknown flag; here that is a usage error (2).
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    a = a.substr(a[1] == '-' ? 2 : 1);
    a = a.substr(0, a.find('='));
    static const std::set<std::string> kBuiltin = {
        "help",    "helpfull",        "helpshort", "helppackage", "helpon",     "helpmatch",
        "version", "only_check_args", "flagfile",  "fromenv",     "tryfromenv", "undefok"};
    if (kBuiltin.count(a) == 0 && absl::FindCommandLineFlag(a) == nullptr &&
        !(absl::StartsWith(a, "no") && absl::FindCommandLineFlag(a.substr(2)) != nullptr)) {
      std::fprintf(stderr, "lra_gen: error: unknown flag --%s\n%s\n", a.c_str(), loom::kUsage);
      return 2;
    }
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() < 2) {
    std::fprintf(stderr, "lra_gen: error: no command given\n%s\n", loom::kUsage);
    return 2;
  }
  if (rest.size() > 2) {
    std::fprintf(stderr, "lra_gen: error: unexpected argument '%s'\n", rest[2]);
    return 2;
  }
  const std::string command = rest[1];
  absl::Status st;
  try {
    if (command == "listops") {
      st = loom::RunListOps();
    } else if (command == "pathfinder") {
      st = loom::RunPathfinder();
    } else if (command == "imdb") {
      st = loom::RunImdb();
    } else if (command == "fashion") {
      st = loom::RunFashion();
    } else if (command == "aan") {
      st = loom::RunAan();
    } else {
      std::fprintf(stderr, "lra_gen: error: unknown command '%s'\n%s\n", command.c_str(),
                   loom::kUsage);
      return 2;
    }
  } catch (const loom::UsageError& e) {
    std::fprintf(stderr, "lra_gen %s: error: %s\n", command.c_str(), e.message.c_str());
    return 2;
  }
  if (!st.ok()) {
    std::fprintf(stderr, "lra_gen %s: error: %s\n", command.c_str(), st.ToString().c_str());
    return 1;
  }
  return 0;
}
