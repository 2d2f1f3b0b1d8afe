#include "core/intra_op_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
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

int ResolveIntraOpThreads(int configured, int ranks_on_host,
                          const std::function<const char*(const char*)>& getenv_fn) {
  if (configured > 0) return configured;
  const char* env = getenv_fn ? getenv_fn("OMP_NUM_THREADS") : std::getenv("OMP_NUM_THREADS");
  if (env != nullptr) {
    // OpenMP allows a list ("4,2" for nested levels); the first entry is the outer level.
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && n > 0 && n <= 4096 && (*end == '\0' || *end == ',')) {
      return static_cast<int>(n);
    }
  }
  return DefaultIntraOpThreads(ranks_on_host);
}

}  // namespace loom
