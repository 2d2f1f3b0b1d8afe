// PNG curves of one or several runs from their metrics.jsonl, rendered by matplotlib in the
// pinned Python (plots are the one place Loom calls Python at run time; training never does).
//
//   LOOM_RETURN_IF_ERROR(PlotRunCurves({"runs/a", "runs/b"}, "curves.png"));
//
// Panels: train loss (per log interval) and validation loss against steps (or tokens); for LRA
// runs the validation and test accuracy as well. One colour per run, labelled by the run
// directory's name. `//tools:plot` is the CLI; `train` draws run_dir/curves.png at the end with
// logging.plot.
#ifndef LOOM_CORE_RUN_PLOT_H_
#define LOOM_CORE_RUN_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace loom {

struct PlotOptions {
  std::string x_axis = "step";      // "step" or "tokens"
  std::string python = "python3";
  std::string title;
};

// NotFound naming a run without metrics.jsonl; Internal with Python's output when plotting fails
// (e.g. matplotlib missing). The PNG is written atomically.
absl::Status PlotRunCurves(const std::vector<std::string>& run_dirs, const std::string& out_png,
                           const PlotOptions& options = {});

}  // namespace loom

#endif  // LOOM_CORE_RUN_PLOT_H_
