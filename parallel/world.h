// Where this process sits in a data-parallel job: rank, world size and local rank (the rank
// within its node, which picks the GPU), read from the launcher's environment.
//
//   WorldInfo w = DiscoverWorld();   // {rank 0, world 1} when started without a launcher
//
// Open MPI's mpirun sets OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK}; Slurm's srun sets
// SLURM_{PROCID,NTASKS,LOCALID}; torchrun-style launchers set RANK/WORLD_SIZE/LOCAL_RANK. The
// first complete set wins, in that order. Inconsistent values are an error naming the variable.
#ifndef LOOM_PARALLEL_WORLD_H_
#define LOOM_PARALLEL_WORLD_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace loom::parallel {

struct WorldInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string source = "none";  // "openmpi", "slurm", "env" or "none"
};

// `getenv` is injectable for tests.
absl::StatusOr<WorldInfo> DiscoverWorld(
    const std::function<const char*(const char*)>& getenv_fn = nullptr);

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_WORLD_H_
