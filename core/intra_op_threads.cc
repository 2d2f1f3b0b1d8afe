#include "core/intra_op_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace loom {

int DefaultIntraOpThreads(int ranks_on_host, int usable_cpus, int online_cpus) {
  const int ranks = std::max(1, ranks_on_host);
  const int online = std::max(1, online_cpus);
  const int usable = usable_cpus > 0 ? std::min(usable_cpus, online) : online;
  return std::max(1, std::min(usable, online / ranks));
}

int DefaultIntraOpThreads(int ranks_on_host) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online <= 0) online = static_cast<long>(std::thread::hardware_concurrency());
  int usable = 0;  // unknown: the whole machine
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) usable = CPU_COUNT(&mask);
  return DefaultIntraOpThreads(ranks_on_host, usable, static_cast<int>(online));
}

namespace {

// A positive integer at the start of `value`, followed by nothing or by `allowed_after`; else 0.
int LeadingCount(const char* value, char allowed_after) {
  if (value == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  if (end == value || n <= 0 || n > 65536) return 0;
  if (*end != '\0' && *end != allowed_after) return 0;
  return static_cast<int>(n);
}

}  // namespace

int ResolveIntraOpThreads(int configured, int ranks_on_host,
                          const std::function<const char*(const char*)>& getenv_fn) {
  if (configured > 0) return configured;
  auto get = [&](const char* name) { return getenv_fn ? getenv_fn(name) : std::getenv(name); };
  // OpenMP allows a list ("4,2" for nested levels); the first entry is the outer level.
  if (const int n = LeadingCount(get("OMP_NUM_THREADS"), ','); n > 0) return n;
  if (ranks_on_host <= 1) {
    // A communicator without a host exchange (NCCL) reports 1; the launcher may know better.
    for (const char* name :
         {"OMPI_COMM_WORLD_LOCAL_SIZE", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"}) {
      if (const int n = LeadingCount(get(name), '\0'); n > 0) {
        ranks_on_host = n;
        break;
      }
    }
  }
  return DefaultIntraOpThreads(ranks_on_host);
}

}  // namespace loom
