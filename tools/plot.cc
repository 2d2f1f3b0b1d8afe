// plot: PNG loss (and LRA accuracy) curves of one or several runs from their metrics.jsonl.
//
//   plot runs/tiny runs/tiny_lowrank_sgt --out=curves.png [--x=tokens] [--title=...]
//
// Exit codes: 0 written, 1 plotting failed (the message says why), 2 usage.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/run_plot.h"

ABSL_FLAG(std::string, out, "", "Output PNG (required).");
ABSL_FLAG(std::string, x, "step", "x axis: step or tokens.");
ABSL_FLAG(std::string, title, "", "Figure title (default: the run names).");
ABSL_FLAG(std::string, python, "python3", "Python with matplotlib.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("plot RUN_DIR [RUN_DIR...] --out=FILE.png [--x=step|tokens]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> runs(rest.begin() + 1, rest.end());
  const std::string out = absl::GetFlag(FLAGS_out);
  if (runs.empty() || out.empty()) {
    std::fprintf(stderr, "plot: usage: plot RUN_DIR [RUN_DIR...] --out=FILE.png [--x=step|tokens]\n");
    return 2;
  }
  loom::PlotOptions o;
  o.x_axis = absl::GetFlag(FLAGS_x);
  o.title = absl::GetFlag(FLAGS_title);
  o.python = absl::GetFlag(FLAGS_python);
  const absl::Status s = loom::PlotRunCurves(runs, out, o);
  if (!s.ok()) {
    std::fprintf(stderr, "plot: error: %s\n", std::string(s.message()).c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("wrote %s (%zu runs)\n", out.c_str(), runs.size());
  return 0;
}
