#include "parallel/watchdog.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_format.h"

namespace loom::parallel {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string HumanBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  if (bytes < (int64_t{1} << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (int64_t{1} << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

}  // namespace

std::string DescribeCollective(const StalledCollective& s) {
  std::string out = absl::StrFormat("%s #%d", s.what, s.sequence);
  if (s.bytes > 0) out += absl::StrFormat(" (%s)", HumanBytes(s.bytes));
  return out;
}

CollectiveWatchdog::CollectiveWatchdog(double timeout_s, Handler handler, double poll_s)
    : timeout_s_(timeout_s),
      handler_(std::move(handler)),
      poll_s_(poll_s > 0 ? poll_s : std::clamp(timeout_s / 10, 0.01, 1.0)) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { Monitor(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CollectiveWatchdog::Begin(const char* what, int64_t bytes) {
  sequence_.fetch_add(1, std::memory_order_acq_rel);
  what_.store(what, std::memory_order_release);
  bytes_.store(bytes, std::memory_order_release);
  start_ns_.store(NowNs(), std::memory_order_release);
}

void CollectiveWatchdog::End() { start_ns_.store(0, std::memory_order_release); }

void CollectiveWatchdog::Monitor() {
  const auto poll = std::chrono::microseconds(static_cast<int64_t>(poll_s_ * 1e6));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, poll, [this] { return stop_; })) {
    const int64_t start = start_ns_.load(std::memory_order_acquire);
    if (start == 0) continue;
    const uint64_t seq = sequence_.load(std::memory_order_acquire);
    StalledCollective s;
    s.what = what_.load(std::memory_order_acquire);
    s.bytes = bytes_.load(std::memory_order_acquire);
    s.sequence = seq;
    // A collective that ended (or was replaced) while we read is not the one that started at
    // `start`.
    if (start_ns_.load(std::memory_order_acquire) != start ||
        sequence_.load(std::memory_order_acquire) != seq) {
      continue;
    }
    s.waited_s = (NowNs() - start) * 1e-9;
    if (s.waited_s < timeout_s_ || seq == fired_for_) continue;
    fired_for_ = seq;
    lock.unlock();
    handler_(s);
    lock.lock();
  }
}

}  // namespace loom::parallel
