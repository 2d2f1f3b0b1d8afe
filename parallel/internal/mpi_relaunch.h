// For multi-rank benchmarks started by `bazel run` (no launcher): re-executes this binary under
// `mpirun -np N --oversubscribe --bind-to none`, so one command measures N real ranks; and a
// reporter that silences the ranks other than 0.
#ifndef LOOM_PARALLEL_INTERNAL_MPI_RELAUNCH_H_
#define LOOM_PARALLEL_INTERNAL_MPI_RELAUNCH_H_

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "parallel/world.h"

namespace loom::parallel::internal {

// Returns only when already under a launcher (or on exec failure, with an error printed).
inline void RelaunchUnderMpirunIfAlone(int argc, char** argv, int np, const char* name) {
  absl::StatusOr<WorldInfo> world = DiscoverWorld();
  if (!world.ok() || world->source != "none") return;
  std::vector<std::string> args = {"mpirun", "-np", std::to_string(np), "--oversubscribe",
                                   "--bind-to", "none"};
  if (geteuid() == 0) args.push_back("--allow-run-as-root");
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return;
  self[n] = '\0';
  args.push_back(self);
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> cargs;
  for (auto& s : args) cargs.push_back(s.data());
  cargs.push_back(nullptr);
  std::fprintf(stderr, "%s: running under mpirun -np %d\n", name, np);
  execvp("mpirun", cargs.data());
  std::perror("cannot exec mpirun");
}

// Google Benchmark reporter that prints nothing (benchmark 1.7 has no NullReporter).
class QuietReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace loom::parallel::internal

#endif  // LOOM_PARALLEL_INTERNAL_MPI_RELAUNCH_H_
