// A deadline for collectives: a monitor thread that notices when one collective has run longer
// than a timeout and calls a handler once for it.
//
//   CollectiveWatchdog watchdog(300.0, [](const StalledCollective& s) { ...report, abort... });
//   watchdog.Begin("all-reduce", bytes);   // the thread that runs the collective
//   MPI_Allreduce(...);                      // blocking; may never return if a peer is lost
//   watchdog.End();
//
// Why a monitor and not MPI_Iallreduce + MPI_Test with a deadline: the collectives stay exactly
// the blocking calls they were (same algorithms, same reduction order, same speed), and the
// deadline also covers barriers, broadcasts, the start-up exchange and MPI_Finalize. Begin/End
// are two atomic stores each, so the hot path pays nothing measurable.
//
// One collective runs at a time (the MPI communicator serialises them); Begin/End may be called
// from different threads over time, never concurrently. The handler runs on the monitor thread;
// in production it does not return (it ends the process), in tests it may.
#ifndef LOOM_PARALLEL_WATCHDOG_H_
#define LOOM_PARALLEL_WATCHDOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace loom::parallel {

struct StalledCollective {
  std::string what;     // e.g. "all-reduce"
  int64_t bytes = 0;
  uint64_t sequence = 0;  // 1 for the first collective watched
  double waited_s = 0;  // how long it had run when the handler was called
};

// "all-reduce #57 (32.0 KiB)".
std::string DescribeCollective(const StalledCollective& s);

class CollectiveWatchdog {
 public:
  using Handler = std::function<void(const StalledCollective&)>;
  // timeout_s <= 0 disables the watchdog (no thread). The monitor wakes every poll_s (default:
  // timeout / 10, between 10 ms and 1 s).
  CollectiveWatchdog(double timeout_s, Handler handler, double poll_s = 0);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // `what` must outlive the collective (a string literal).
  void Begin(const char* what, int64_t bytes);
  void End();

  double timeout_s() const { return timeout_s_; }
  bool enabled() const { return timeout_s_ > 0; }

 private:
  void Monitor();

  const double timeout_s_;
  const Handler handler_;
  const double poll_s_;
  // The running collective: start time in ns of steady_clock (0: none), its sequence number,
  // description and size. `sequence_` is bumped first on Begin and read twice by the monitor so
  // that it never mixes two collectives' fields.
  std::atomic<int64_t> start_ns_{0};
  std::atomic<uint64_t> sequence_{0};
  std::atomic<const char*> what_{""};
  std::atomic<int64_t> bytes_{0};
  uint64_t fired_for_ = 0;  // monitor thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last
};

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_WATCHDOG_H_
