#include "tools/parity_cases.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "core/status_macros.h"
#include "data/tokenizer.h"

namespace loom {
namespace parity {
namespace {

bool IsCaseFile(const std::string& path) {
  return absl::EndsWith(path, ".json") || absl::EndsWith(path, ".safetensors");
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::Status ListRecursive(const std::string& dir,
                           std::vector<std::string>* out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open case directory '",
                                            dir, "'"));
  }
  std::vector<std::string> entries;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    entries.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end());
  for (const std::string& e : entries) {
    if (IsDirectory(e)) {
      LOOM_RETURN_IF_ERROR(ListRecursive(e, out));
    } else if (IsCaseFile(e)) {
      out->push_back(e);
    }
  }
  return absl::OkStatus();
}

CaseResult Fail(const std::string& file, int index, std::string description,
                std::string detail) {
  CaseResult r;
  r.pass = false;
  r.file = file;
  r.index = index;
  r.description = std::move(description);
  r.detail = std::move(detail);
  return r;
}

// Checks {"tokenizer", "cases": [{"text", "ids"}]} against `tokenizer_name`.
std::vector<CaseResult> CheckTokenizerCases(const std::string& tokenizer_name,
                                            const CaseFile& file,
                                            const ParityOptions& options) {
  std::vector<CaseResult> results;
  auto tok = data::MakeTokenizer(tokenizer_name, options.gpt2_vocab_dir);
  const Json& cases = (*file.json)["cases"];
  if (!tok.ok()) {
    // Every case fails, so the count reflects the file's size.
    for (size_t i = 0; i < std::max<size_t>(cases.size(), 1); ++i) {
      results.push_back(Fail(file.path, static_cast<int>(i), "",
                             std::string(tok.status().message())));
    }
    return results;
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const Json& c = cases[i];
    const int index = static_cast<int>(i);
    if (!c["text"].is_string() || !c["ids"].is_array()) {
      results.push_back(Fail(file.path, index, "",
                             "case needs a string \"text\" and an array \"ids\""));
      continue;
    }
    const std::string& text = c["text"].as_string();
    std::string desc = ShortDescription(text);
    std::vector<int64_t> want;
    bool ids_ok = true;
    for (const Json& id : c["ids"].array()) {
      if (!id.is_int64()) ids_ok = false;
      want.push_back(id.as_int64());
    }
    if (!ids_ok) {
      results.push_back(Fail(file.path, index, desc, "\"ids\" must be integers"));
      continue;
    }
    std::vector<int32_t> got = (*tok)->Encode(text);
    size_t mismatch = 0;
    while (mismatch < got.size() && mismatch < want.size() &&
           got[mismatch] == want[mismatch]) {
      ++mismatch;
    }
    if (mismatch == got.size() && mismatch == want.size()) {
      auto back = (*tok)->Decode(got);
      if (!back.ok() || *back != text) {
        results.push_back(Fail(file.path, index, desc,
                               "ids match but decode does not round-trip"));
        continue;
      }
      CaseResult r;
      r.pass = true;
      r.file = file.path;
      r.index = index;
      r.description = desc;
      r.detail = absl::StrCat("max_err=0 (", got.size(), " tokens)");
      results.push_back(std::move(r));
      continue;
    }
    std::string g = mismatch < got.size() ? absl::StrCat(got[mismatch]) : "end";
    std::string w =
        mismatch < want.size() ? absl::StrCat(want[mismatch]) : "end";
    results.push_back(Fail(
        file.path, index, desc,
        absl::StrCat("first mismatch at token ", mismatch, ": got ", g,
                     ", want ", w, " (", got.size(), " vs ", want.size(),
                     " tokens)")));
  }
  return results;
}

}  // namespace

void CheckerRegistry::Register(const std::string& kind, CaseChecker checker) {
  checkers_[kind] = std::move(checker);
}

const CaseChecker* CheckerRegistry::Find(const std::string& kind) const {
  auto it = checkers_.find(kind);
  return it == checkers_.end() ? nullptr : &it->second;
}

CheckerRegistry DefaultCheckerRegistry() {
  CheckerRegistry r;
  for (const char* name : {"gpt2", "byte"}) {
    std::string tokenizer = name;
    r.Register(absl::StrCat("tokenizer:", name),
               [tokenizer](const CaseFile& f, const ParityOptions& o) {
                 return CheckTokenizerCases(tokenizer, f, o);
               });
  }
  return r;
}

absl::StatusOr<std::vector<std::string>> CollectCaseFiles(
    const std::string& spec) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::string path(part);
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (IsDirectory(path)) {
      std::vector<std::string> found;
      LOOM_RETURN_IF_ERROR(ListRecursive(path, &found));
      if (found.empty()) {
        return absl::NotFoundError(absl::StrCat(
            "no case files (*.json, *.safetensors) under '", path, "'"));
      }
      out.insert(out.end(), found.begin(), found.end());
    } else if (FileExists(path)) {
      out.push_back(path);
    } else {
      return absl::NotFoundError(
          absl::StrCat("case path '", path, "' does not exist"));
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("no case paths given");
  return out;
}

absl::StatusOr<CaseFile> LoadCaseFile(const std::string& path) {
  CaseFile f;
  f.path = path;
  if (absl::EndsWith(path, ".safetensors")) {
    LOOM_ASSIGN_OR_RETURN(SafetensorsFile st, ReadSafetensors(path));
    auto layer = st.metadata.find("layer");
    if (layer == st.metadata.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "case file '", path, "' has no 'layer' in __metadata__"));
    }
    f.kind = absl::StrCat("layer:", layer->second);
    f.safetensors = std::move(st);
    return f;
  }
  LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  auto json = Json::Parse(text);
  if (!json.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("case file '", path, "': ", json.status().message()));
  }
  const Json* tokenizer = json->Find("tokenizer");
  const Json* cases = json->Find("cases");
  if (tokenizer == nullptr || !tokenizer->is_string() || cases == nullptr ||
      !cases->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "case file '", path,
        "' is not a tokenizer case file (needs \"tokenizer\" and \"cases\")"));
  }
  const std::string& name = tokenizer->as_string();
  if (absl::StartsWith(name, "gpt2")) {
    f.kind = "tokenizer:gpt2";
  } else if (absl::StartsWith(name, "byte")) {
    f.kind = "tokenizer:byte";
  } else {
    f.kind = absl::StrCat("tokenizer:", name);
  }
  f.json = *std::move(json);
  return f;
}

std::vector<CaseResult> RunCaseFile(const std::string& path,
                                    const CheckerRegistry& registry,
                                    const ParityOptions& options) {
  auto file = LoadCaseFile(path);
  if (!file.ok()) {
    return {Fail(path, -1, "", std::string(file.status().message()))};
  }
  const CaseChecker* checker = registry.Find(file->kind);
  if (checker == nullptr) {
    std::string type = file->kind;
    if (absl::StartsWith(type, "layer:")) type = type.substr(6);
    std::string desc;
    if (file->safetensors) {
      auto it = file->safetensors->metadata.find("description");
      if (it != file->safetensors->metadata.end()) {
        desc = ShortDescription(it->second);
      }
    }
    return {Fail(path, -1, desc,
                 absl::StrCat("unsupported case type '", type,
                              "' (not implemented yet)"))};
  }
  std::vector<CaseResult> results = (*checker)(*file, options);
  if (results.empty()) {
    results.push_back(Fail(path, -1, "", "case file holds no cases"));
  }
  return results;
}

std::string FormatCaseResult(const CaseResult& r) {
  std::string where = r.file;
  if (r.index >= 0) absl::StrAppend(&where, "#", r.index);
  std::string line = absl::StrCat(r.pass ? "PASS" : "FAIL", "  ", where);
  if (!r.description.empty()) absl::StrAppend(&line, "  ", r.description);
  absl::StrAppend(&line, "  ", r.detail);
  return line;
}

std::string ShortDescription(absl::string_view text, int max_chars) {
  size_t i = 0;
  int chars = 0;
  while (i < text.size() && chars < max_chars) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    i = std::min(text.size(), i + n);
    ++chars;
  }
  std::string out = JsonQuote(text.substr(0, i));
  if (i < text.size()) out += "...";
  return out;
}

}  // namespace parity
}  // namespace loom
