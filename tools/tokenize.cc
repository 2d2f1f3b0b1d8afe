// tokenize: turns text files into token shards for training.
//
//   tokenize --tokenizer=gpt2 --input='corpus/*.txt' --out_dir=data/tok
//
// Every input file is one document, followed by the end-of-text token. Files
// are read in sorted path order, so the output is deterministic. The last
// --val_fraction of every document goes to DIR/val_000000.bin (so validation
// covers every document, not just the last one), the rest to
// DIR/train_NNNNNN.bin with at most --shard_tokens tokens each. DIR/tokenizer.txt
// names the tokenizer. See data/token_shard.h for the shard format.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "core/status_macros.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

ABSL_FLAG(std::string, tokenizer, "gpt2", "Tokenizer: gpt2 or byte.");
ABSL_FLAG(std::string, input, "",
          "Comma-separated text files or glob patterns; one file = one document.");
ABSL_FLAG(std::string, out_dir, "", "Directory for the shards (created).");
ABSL_FLAG(double, val_fraction, 0.01,
          "Fraction of every document (taken from its end) held out for validation.");
ABSL_FLAG(int64_t, shard_tokens, 100000000, "Maximum tokens per shard file.");
ABSL_FLAG(std::string, vocab_dir, "",
          "Tokenizer vocabulary directory (default: the bundled one).");

namespace loom {
namespace {

absl::StatusOr<std::vector<std::string>> ExpandInputs(const std::string& spec) {
  std::set<std::string> files;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::string pattern(part);
    if (!FileExists(pattern) &&
        pattern.find_first_of("*?[") == std::string::npos) {
      return absl::NotFoundError(
          absl::StrCat("input file '", pattern, "' does not exist"));
    }
    LOOM_ASSIGN_OR_RETURN(std::vector<std::string> matched,
                          data::ExpandShardPattern(pattern));
    files.insert(matched.begin(), matched.end());
  }
  if (files.empty()) {
    return absl::InvalidArgumentError("--input names no files");
  }
  return std::vector<std::string>(files.begin(), files.end());
}

absl::Status WriteShards(const std::string& dir, const std::string& split,
                         const std::vector<uint16_t>& tokens, int64_t begin,
                         int64_t end, int64_t shard_tokens, int32_t vocab_size,
                         std::vector<std::string>* written) {
  int index = 0;
  int64_t pos = begin;
  do {
    int64_t stop = std::min(end, pos + shard_tokens);
    std::string path = absl::StrFormat("%s/%s_%06d.bin", dir, split, index++);
    LOOM_RETURN_IF_ERROR(data::WriteTokenShard(
        path, absl::MakeConstSpan(tokens.data() + pos, stop - pos),
        vocab_size));
    absl::PrintF("  %-40s %12d tokens\n", path, stop - pos);
    written->push_back(path);
    pos = stop;
  } while (pos < end);
  return absl::OkStatus();
}

absl::Status Run(const char* argv0) {
  const std::string name = absl::GetFlag(FLAGS_tokenizer);
  const std::string input = absl::GetFlag(FLAGS_input);
  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  const double val_fraction = absl::GetFlag(FLAGS_val_fraction);
  const int64_t shard_tokens = absl::GetFlag(FLAGS_shard_tokens);
  if (input.empty()) return absl::InvalidArgumentError("--input is required");
  if (out_dir.empty()) return absl::InvalidArgumentError("--out_dir is required");
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--val_fraction=", val_fraction, " must be in [0, 1)"));
  }
  if (shard_tokens <= 0 || shard_tokens > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shard_tokens=", shard_tokens, " must be in [1, 2^31)"));
  }
  std::string vocab_dir = absl::GetFlag(FLAGS_vocab_dir);
  if (vocab_dir.empty()) vocab_dir = data::DefaultVocabDir(name, argv0);

  const auto start = std::chrono::steady_clock::now();
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<data::Tokenizer> tok,
                        data::MakeTokenizer(name, vocab_dir));
  if (tok->vocab_size() > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer '", name, "' has ", tok->vocab_size(),
        " tokens; shards store uint16 ids"));
  }
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandInputs(input));

  std::vector<uint16_t> train_tokens;
  std::vector<uint16_t> val_tokens;
  int64_t text_bytes = 0;
  for (const std::string& file : files) {
    LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(file));
    text_bytes += static_cast<int64_t>(text.size());
    std::vector<int32_t> ids = tok->Encode(text);
    ids.push_back(tok->eot_token());
    const int64_t n = static_cast<int64_t>(ids.size());
    const int64_t n_val = std::min<int64_t>(
        n, static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction)));
    for (int64_t i = 0; i < n; ++i) {
      (i < n - n_val ? train_tokens : val_tokens).push_back(static_cast<uint16_t>(ids[i]));
    }
  }
  if (text_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "empty corpus: the ", files.size(), " input file(s) hold no text"));
  }
  const double encode_s = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - start)
                              .count();

  const int64_t n_train = static_cast<int64_t>(train_tokens.size());
  const int64_t n_val = static_cast<int64_t>(val_tokens.size());
  const int64_t total = n_train + n_val;

  LOOM_RETURN_IF_ERROR(MakeDirs(out_dir));
  std::vector<std::string> written;
  absl::PrintF("tokenize: %d file(s), %d bytes -> %d tokens (%s, vocab %d)\n",
               files.size(), text_bytes, total, tok->name(), tok->vocab_size());
  LOOM_RETURN_IF_ERROR(WriteShards(out_dir, "train", train_tokens, 0, n_train,
                                   shard_tokens, tok->vocab_size(), &written));
  if (n_val > 0) {
    LOOM_RETURN_IF_ERROR(WriteShards(out_dir, "val", val_tokens, 0, n_val,
                                     shard_tokens, tok->vocab_size(), &written));
  }
  LOOM_RETURN_IF_ERROR(
      WriteFileAtomically(out_dir + "/tokenizer.txt", tok->name() + "\n"));

  // Shards left from an earlier, larger run would otherwise be picked up by
  // train_*.bin globs.
  for (const char* pattern : {"/train_*.bin", "/val_*.bin"}) {
    auto old = data::ExpandShardPattern(out_dir + pattern);
    if (!old.ok()) continue;
    for (const std::string& f : *old) {
      if (std::find(written.begin(), written.end(), f) == written.end()) {
        absl::PrintF("  removing stale %s\n", f);
        std::remove(f.c_str());
      }
    }
  }
  const double total_s = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  absl::PrintF(
      "tokenize: train %d tokens, val %d tokens, %d shard file(s) in %s\n"
      "tokenize: %.2f s total (encode %.2f s, %.1f MB/s, %.0f tokens/s)\n",
      n_train, n_val, written.size(), out_dir, total_s, encode_s,
      text_bytes / 1e6 / std::max(encode_s, 1e-9),
      total / std::max(encode_s, 1e-9));
  return absl::OkStatus();
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tokenize --tokenizer=gpt2|byte --input=FILE_OR_GLOB[,more] "
      "--out_dir=DIR [--val_fraction=0.01] [--shard_tokens=N] "
      "[--vocab_dir=DIR]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "tokenize: error: unexpected argument '%s'\n", rest[1]);
    return 2;
  }
  absl::Status st = loom::Run(argv[0]);
  if (!st.ok()) {
    std::fprintf(stderr, "tokenize: error: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
