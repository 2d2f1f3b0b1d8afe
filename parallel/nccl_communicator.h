// The NCCL backend of Communicator (communicator.h), for CUDA tensors.
//
// One communicator per process, one GPU per rank (device = local rank unless given). Collectives
// run on the communicator's own CUDA stream: each call records an event on the caller's current
// stream and makes the NCCL stream wait on it (no host sync); Work::Wait() makes the caller's
// stream wait on an event recorded after the collective, so the optimizer step is ordered after
// it without blocking the host. The unique id comes from rank 0 by MPI_Bcast ("mpi") or through a
// file in a shared directory ("file", for Slurm sites whose MPI lacks PMIx), written atomically.
//
// Only built with --config=cuda; otherwise CreateNcclCommunicator returns Unimplemented.
#ifndef LOOM_PARALLEL_NCCL_COMMUNICATOR_H_
#define LOOM_PARALLEL_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace loom::parallel {

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options);

// True when this binary was built with the NCCL backend.
bool HaveNccl();

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_NCCL_COMMUNICATOR_H_
