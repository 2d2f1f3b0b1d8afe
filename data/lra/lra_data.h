// Readers for the Long Range Arena (LRA) tasks in their official release formats
// (specs/lra_spt.md §1). Each task becomes train / val / test lists of token-id sequences.
//
//   LoadOptions opt;
//   opt.task = "listops";
//   opt.data_dir = "/data/lra_release/lra_release/listops-1000";
//   LOOM_ASSIGN_OR_RETURN(TaskData data, LoadTask(opt));
//   for (const Example& ex : data.train) use(ex.tokens, ex.label);
//   LOG(INFO) << data.notes;   // how each split was made, what was dropped
//
// Tasks and the directory `data_dir` points at:
//   listops        listops-1000/basic_{train,val,test}.tsv (header Source<TAB>Target, CRLF ok).
//                  Tokens as S4/NFS: drop '(' ')', ']' -> 'X', split on whitespace. Vocabulary from
//                  train: specials, then symbols by descending count, ties by symbol ascending.
//                  Unseen symbols -> <unk>. At most l_max - 1 tokens, then <eos>. l_max 2048.
//   text           aclImdb/ with {train,test}/{pos,neg}/<id>_<rating>.txt. Byte level: id = byte +
//   4
//                  (vocab = 4 specials + 256 bytes named "b:0x41"), at most l_max - 1 bytes, then
//                  <eos>; l_max 4096. pos = 1, neg = 0. Examples alternate neg, pos, neg, ... each
//                  class in sorted file-name order. IMDB has no validation split: val = test.
//   retrieval      tsv_data/new_aan_pairs.{train,eval,test}.tsv (eval -> val); no header, 5 TAB
//                  separated columns label id1 id2 text1 text2 (quotes are ordinary bytes); label
//                  parsed as a float, then truncated to int, must be 0 or 1. Both documents byte
//                  level as text, each at most l_max - 1 bytes then <eos>; l_max 4000.
//   image          cifar-10-batches-bin/ with data_batch_{1..5}.bin and test_batch.bin (records of
//                  1 label byte + 3072 bytes R, G, B planes). Grayscale with Pillow's rule
//                  L = (19595 R + 38470 G + 7471 B + 32768) >> 16, raster order; l_max 1024.
//                  val = a seeded random min(5000, n/10) of train.
//   pathfinder32 / pathfinder64 / pathx (= pathfinder128) / pathfinder256
//                  pathfinderR/; only curv_contour_length_14/ is read: every metadata/*.npy (plain
//                  text, one line per image "imgs/<k> sample_<i>.png <index> <label> ...") and the
//                  PNGs it names. Empty PNG files are skipped (the release has one) and counted in
//                  `notes`. Splits: seeded random 80/10/10 of all examples. l_max R*R.
// Pixel tasks store the raw 8-bit value 0..255 as the token id, have no <eos> and an empty vocab.
//
// Seeded splits (image val, pathfinder) are SeededPermutation(n, split_seed) below: the first
// part of the permutation is train, then val, then test (as torch's random_split), sizes
// val = test = floor(n/10) for pathfinder. The permutation is fully specified, so it is the same
// with every compiler and standard library.
//
// Errors are absl::Status naming the file and the 1-based line (or the record index for CIFAR,
// the metadata line for a PNG) and what is wrong, e.g.
//   ".../basic_val.tsv:3: label '12' is not an integer in 0..9".
// Directory listings are sorted, so results never depend on readdir order.
#ifndef LOOM_DATA_LRA_LRA_DATA_H_
#define LOOM_DATA_LRA_LRA_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace loom::data::lra {

// One example: token ids (pixel tasks: the raw pixel value 0..255), the label, and for Retrieval
// the second document.
struct Example {
  std::vector<int32_t> tokens;
  std::vector<int32_t> tokens2;
  int32_t label = 0;
};

// Special ids, NFS convention: <mask>=0, <pad>=1, <unk>=2, <eos>=3; then symbols.
struct Vocab {
  std::vector<std::string> symbols;             // id -> symbol (specials first)
  int32_t Id(const std::string& symbol) const;  // <unk> id when absent; linear in size()
  int32_t size() const;
  static constexpr int32_t kMask = 0, kPad = 1, kUnk = 2, kEos = 3;
};

struct TaskData {
  // listops | text | retrieval | image | pathfinder32 | pathfinder64 | pathx (=pathfinder128) |
  // pathfinder256
  std::string task;
  std::vector<Example> train, val, test;
  Vocab vocab;               // token tasks; empty for pixel tasks
  bool pixel_input = false;  // image / pathfinder: tokens are pixel values 0..255
  int32_t num_classes = 0;
  int64_t max_length = 0;  // l_max used (incl. <eos> for token tasks)
  std::string notes;       // human-readable: how each split was made, what was dropped
};

struct LoadOptions {
  std::string task;          // as TaskData::task; "pathfinder128" is accepted for "pathx"
  std::string data_dir;      // the task's directory (see the table above)
  int64_t max_length = 0;    // 0: the spec's l_max. Token tasks: >= 2. Pixel tasks: 0 or R*R.
  uint64_t split_seed = 42;  // for the splits that are carved (image val, pathfinder 80/10/10)
  int64_t max_examples = 0;  // 0: all; else keep at most this many per split (the first ones of
                             // each split, after any carving; files are read only as needed)
  // Pathfinder: the difficulty directory under data_dir (curv_baseline, curv_contour_length_9,
  // curv_contour_length_14; the LRA task is the last).
  std::string pathfinder_difficulty = "curv_contour_length_14";
};

absl::StatusOr<TaskData> LoadTask(const LoadOptions& options);

// The vocabularies (also usable without loading data).
Vocab ByteVocab();  // text / retrieval: 4 specials + "b:0x00".."b:0xFF" (id = byte + 4)

// 0..n-1 shuffled by Fisher-Yates driven by std::mt19937_64(seed): for i = n-1 down to 1,
// j = rng() % (i + 1), swap(p[i], p[j]).
std::vector<int64_t> SeededPermutation(int64_t n, uint64_t seed);

}  // namespace loom::data::lra

#endif  // LOOM_DATA_LRA_LRA_DATA_H_
