// ListOps generator in the format of the Long Range Arena release (specs/lra_spt.md §2.1, after
// lra_benchmarks/data/listops.py), plus an independent evaluator of the serialised expressions.
//
//   ListOpsOptions opt;            // 96,000 / 2,000 / 2,000, depth 10, args 10, 500 < len < 2000
//   opt.seed = 7;
//   LOOM_RETURN_IF_ERROR(GenerateListOps(opt, "data/listops-1000"));
//   // -> basic_train.tsv, basic_val.tsv, basic_test.tsv (header "Source\tTarget", CRLF lines)
//   int v = EvaluateListOps("( ( ( [MAX 2 ) 9 ) ] )");   // 9
//
// Trees follow the reference exactly: a node at depth < max_depth is a leaf (uniform digit) with
// probability 0.75, otherwise an operator (MIN, MAX, MED, SM, uniform) over 2..max_args children;
// at max_depth it is always a leaf. A tree is kept when min_length < L < max_length, L = its token
// count without parentheses (digits 1, operator + ']' 2), and only if no identical tree was kept
// before. Kept trees go to train, then val, then test, in the order they were generated (the
// reference iterates a Python set, whose order is arbitrary). Random numbers come from
// std::mt19937_64(seed) through fully specified helpers, so a seed gives byte-identical files on
// every platform.
#ifndef LOOM_DATA_LRA_LISTOPS_GEN_H_
#define LOOM_DATA_LRA_LISTOPS_GEN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::data::lra {

struct ListOpsOptions {
  int64_t num_train = 96000;
  int64_t num_val = 2000;
  int64_t num_test = 2000;
  int max_depth = 10;
  int max_args = 10;
  int64_t min_length = 500;   // exclusive
  int64_t max_length = 2000;  // exclusive
  uint64_t seed = 0;
  std::string task = "basic";  // file prefix: <task>_train.tsv ...
};

struct ListOpsExample {
  std::string source;  // serialised expression, e.g. "( ( ( [MAX 2 ) 9 ) ] )"
  int target = 0;      // 0..9
  int64_t length = 0;  // tokens without parentheses
};

// Progress: (kept trees so far, trees wanted).
using ListOpsProgress = std::function<void(int64_t done, int64_t total)>;

// The num_train + num_val + num_test unique examples in split order (train, val, test).
absl::StatusOr<std::vector<ListOpsExample>> GenerateListOpsExamples(
    const ListOpsOptions& options, const ListOpsProgress& progress = nullptr);

// Writes out_dir/<task>_{train,val,test}.tsv (out_dir is created). Each file is written to a
// temporary name and renamed, so a failed run leaves no partial file under the final name.
absl::Status GenerateListOps(const ListOpsOptions& options, const std::string& out_dir,
                             const ListOpsProgress& progress = nullptr);

// Evaluates a serialised expression with a stack machine over its whitespace-separated tokens
// ('(' and ')' are ignored, "[MIN" "[MAX" "[MED" "[SM" open an operator, ']' closes it, digits are
// values). MED is int(np.median): the mean of the two middle values truncated for an even count.
// Returns the value 0..9, or -1 if the text is not one well-formed expression.
int EvaluateListOps(const std::string& source);

// Number of tokens other than '(' and ')' (the length the generator bounds).
int64_t ListOpsLength(const std::string& source);

}  // namespace loom::data::lra

#endif  // LOOM_DATA_LRA_LISTOPS_GEN_H_
