// Writes TensorBoard event files with known contents, for tests/tensorboard_test.sh, which
// reads them back with the real `tensorboard` Python package:
//   tensorboard_demo --out_dir=DIR
// First file ("the run"): train/loss = 2 / (s + 1) and train/lr = 1e-3 * s for s = 0..9,
// histogram weights/fc1 at step 5 of v_i = (i - 500) / 100, i = 0..999 (as float).
// Second file ("the resumed run", a second writer in the same directory): train/loss for
// s = 10..14, histogram weights/fc1 at step 12 of v_i = i * i / 1000, i = 0..99.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "core/status_macros.h"
#include "core/tensorboard.h"

ABSL_FLAG(std::string, out_dir, "", "Directory for the event files (created).");

namespace {

absl::Status Run(const std::string& dir) {
  {
    LOOM_ASSIGN_OR_RETURN(auto tb, loom::TensorBoardWriter::Open(dir));
    for (int64_t s = 0; s < 10; ++s) {
      LOOM_RETURN_IF_ERROR(tb->AddScalar("train/loss", 2.0 / (s + 1), s));
      LOOM_RETURN_IF_ERROR(tb->AddScalar("train/lr", 1e-3 * s, s));
      if (s == 5) {
        std::vector<float> v;
        for (int i = 0; i < 1000; ++i) v.push_back(static_cast<float>((i - 500) / 100.0));
        LOOM_RETURN_IF_ERROR(tb->AddHistogram("weights/fc1", v, s));
      }
    }
    LOOM_RETURN_IF_ERROR(tb->Close());
    std::cout << tb->path() << "\n";
  }
  LOOM_ASSIGN_OR_RETURN(auto tb, loom::TensorBoardWriter::Open(dir));
  for (int64_t s = 10; s < 15; ++s) {
    LOOM_RETURN_IF_ERROR(tb->AddScalar("train/loss", 2.0 / (s + 1), s));
    if (s == 12) {
      std::vector<float> v;
      for (int i = 0; i < 100; ++i) v.push_back(static_cast<float>(i * i / 1000.0));
      LOOM_RETURN_IF_ERROR(tb->AddHistogram("weights/fc1", v, s));
    }
  }
  LOOM_RETURN_IF_ERROR(tb->Flush());  // the destructor closes it
  std::cout << tb->path() << "\n";
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_out_dir);
  if (dir.empty()) {
    std::cerr << "tensorboard_demo: error: --out_dir is required\n";
    return 2;
  }
  absl::Status st = Run(dir);
  if (!st.ok()) {
    std::cerr << "tensorboard_demo: error: " << st.message() << "\n";
    return 1;
  }
  return 0;
}
