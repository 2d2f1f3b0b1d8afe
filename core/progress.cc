#include "core/progress.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom {

ProgressReporter::Mode ProgressReporter::ModeFromName(const std::string& name) {
  if (name == "tty") return Mode::kTty;
  if (name == "plain") return Mode::kPlain;
  if (name == "none") return Mode::kNone;
  return isatty(fileno(stdout)) ? Mode::kTty : Mode::kPlain;
}

ProgressReporter::ProgressReporter(Mode mode, int64_t total_steps, FILE* out)
    : mode_(mode), total_(std::max<int64_t>(1, total_steps)), out_(out),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressReporter::FormatDuration(double s) {
  if (s < 0 || s != s) return "?";
  const int64_t total = static_cast<int64_t>(s + 0.5);
  if (total >= 3600) return absl::StrFormat("%dh%02dm", total / 3600, (total % 3600) / 60);
  if (total >= 60) return absl::StrFormat("%dm%02ds", total / 60, total % 60);
  return absl::StrFormat("%ds", total);
}

void ProgressReporter::Step(int64_t step, const std::string& status, bool print_plain) {
  if (mode_ == Mode::kNone) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = static_cast<double>(step) / static_cast<double>(total_);
  const double eta = step > 0 ? elapsed * (1 - frac) / frac : -1;
  if (mode_ == Mode::kTty) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    absl::FPrintF(out_, "\r\033[K[%s] %d/%d %s | %s elapsed, eta %s", bar, step, total_, status,
                  FormatDuration(elapsed), FormatDuration(eta));
    line_open_ = true;
  } else if (print_plain) {
    absl::FPrintF(out_, "step %d/%d %s | %s elapsed, eta %s\n", step, total_, status,
                  FormatDuration(elapsed), FormatDuration(eta));
  }
  fflush(out_);
}

void ProgressReporter::Line(const std::string& text) {
  if (mode_ == Mode::kNone) return;
  if (line_open_) absl::FPrintF(out_, "\r\033[K");
  absl::FPrintF(out_, "%s\n", text);
  line_open_ = false;
  fflush(out_);
}

void ProgressReporter::Finish() {
  if (line_open_) absl::FPrintF(out_, "\n");
  line_open_ = false;
  fflush(out_);
}

}  // namespace loom
