// Progress display for long work: a live single line on a terminal (bar, step, loss, tokens/s,
// ETA), plain log lines otherwise (files, CI, mpirun output), or nothing.
//
//   ProgressReporter progress(ProgressReporter::ModeFromName("auto"), total_steps);
//   progress.Step(step, "loss 3.21 | 12.3k tok/s");   // may redraw the line
//   progress.Line("eval: val_loss 3.40");             // always printed, on its own line
//   progress.Finish();
#ifndef LOOM_CORE_PROGRESS_H_
#define LOOM_CORE_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace loom {

class ProgressReporter {
 public:
  enum class Mode { kTty, kPlain, kNone };
  // "auto" picks kTty when stdout is a terminal.
  static Mode ModeFromName(const std::string& name);

  ProgressReporter(Mode mode, int64_t total_steps, FILE* out = stdout);
  // `print_plain`: in plain mode, whether this step gets a line (the log cadence).
  void Step(int64_t step, const std::string& status, bool print_plain);
  void Line(const std::string& text);
  void Finish();

  static std::string FormatDuration(double seconds);

 private:
  Mode mode_;
  int64_t total_;
  FILE* out_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace loom

#endif  // LOOM_CORE_PROGRESS_H_
