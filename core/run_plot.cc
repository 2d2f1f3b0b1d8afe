#include "core/run_plot.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "core/status_macros.h"
#include "core/subprocess.h"

namespace loom {
namespace {

constexpr char kScript[] = R"PY(
import json, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, x_axis, title = sys.argv[1], sys.argv[2], sys.argv[3]
runs = sys.argv[4:]
data = []
for run in runs:
    recs = []
    for line in open(os.path.join(run, "metrics.jsonl")):
        line = line.strip()
        if line:
            recs.append(json.loads(line))
    data.append((os.path.basename(os.path.normpath(run)), recs))
accuracy = any("val_accuracy" in r for _, rs in data for r in rs)
fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(12 if accuracy else 7, 4.5),
                         constrained_layout=True, squeeze=False)
ax = axes[0][0]
for i, (name, recs) in enumerate(data):
    c = f"C{i % 10}"
    tr = [(r[x_axis], r["loss"]) for r in recs if "loss" in r and r.get(x_axis) is not None]
    ev = [(r[x_axis], r["val_loss"]) for r in recs if "val_loss" in r and r["val_loss"] is not None]
    if tr:
        ax.plot([p[0] for p in tr], [p[1] for p in tr], color=c, lw=1, label=f"{name} train")
    if ev:
        ax.plot([p[0] for p in ev], [p[1] for p in ev], color=c, lw=2, ls="--", marker="o", ms=3,
                label=f"{name} val")
ax.set_xlabel(x_axis); ax.set_ylabel("loss"); ax.grid(alpha=0.3)
ax.legend(fontsize=8)
if accuracy:
    ax = axes[0][1]
    for i, (name, recs) in enumerate(data):
        c = f"C{i % 10}"
        ev = [r for r in recs if "val_accuracy" in r]
        ax.plot([r[x_axis] for r in ev], [r["val_accuracy"] for r in ev], color=c, marker="o",
                ms=3, label=f"{name} val")
        ax.plot([r[x_axis] for r in ev], [r["test_accuracy"] for r in ev], color=c, ls=":",
                label=f"{name} test")
    ax.set_xlabel(x_axis); ax.set_ylabel("accuracy"); ax.grid(alpha=0.3); ax.legend(fontsize=8)
fig.suptitle(title or ", ".join(n for n, _ in data))
tmp = out + ".tmp.png"
fig.savefig(tmp, dpi=110)
os.replace(tmp, out)
print(f"wrote {out}")
)PY";

}  // namespace

absl::Status PlotRunCurves(const std::vector<std::string>& run_dirs, const std::string& out_png,
                           const PlotOptions& options) {
  if (run_dirs.empty()) return absl::InvalidArgumentError("plot: no run directories given");
  if (options.x_axis != "step" && options.x_axis != "tokens") {
    return absl::InvalidArgumentError(
        absl::StrCat("plot: x axis \"", options.x_axis, "\" is not step or tokens"));
  }
  for (const std::string& run : run_dirs) {
    if (!FileExists(run + "/metrics.jsonl")) {
      return absl::NotFoundError(absl::StrCat("plot: ", run, " has no metrics.jsonl"));
    }
  }
  char tmpl[] = "/tmp/loom_plot_XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return absl::InternalError("plot: cannot create a temporary script file");
  close(fd);
  const std::string script = std::string(tmpl) + ".py", log = std::string(tmpl) + ".log";
  std::remove(tmpl);
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(script, kScript));
  std::vector<std::string> argv = {options.python, script, out_png, options.x_axis,
                                   options.title};
  argv.insert(argv.end(), run_dirs.begin(), run_dirs.end());
  const int rc = RunCommand(argv, log, /*append=*/false);
  if (rc < 0) return absl::InternalError(absl::StrCat("plot: could not run ", options.python));
  absl::StatusOr<std::string> output = ReadFileToString(log);
  std::remove(script.c_str());
  std::remove(log.c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("plot: ", options.python, " failed (exit ", rc,
                                            "): ", output.ok() ? *output : "no output"));
  }
  return absl::OkStatus();
}

}  // namespace loom
