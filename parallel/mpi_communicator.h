// The Open MPI backend of Communicator (communicator.h): CPU tensors, collectives issued by one
// communication thread in submission order.
//
// Why a thread: Open MPI has no asynchronous progress for non-blocking collectives (ompi_info:
// "OMPI progress: no"), so MPI_Iallreduce would only advance inside later MPI calls. A thread
// that runs blocking collectives back to back overlaps them with the backward pass for real, if a
// core is free for it: MPI busy-polls, so on ranks that already use every core it slows the
// backward more than it hides (parallel/overlap_benchmark; hence parallel.overlap "auto" = off
// for MPI).
// MPI is initialised with MPI_THREAD_MULTIPLE so that Abort() can be called from any thread, and
// so that a message of at most 1 MiB runs directly on the caller's thread when the communication
// thread is idle (same order, no ~5 us hand-off; such a Work is complete when returned).
//
// Why chunks: a single MPI_Allreduce of >= 32 MB makes Open MPI allocate >= 32 MB temporaries,
// which glibc serves with fresh mmap()s; on these VMs touching fresh pages costs ~12 us per 4 KiB
// page, and the all-reduce fell to 0.25 GB/s. Chunks of a few MiB reuse heap memory that glibc
// keeps (its dynamic mmap threshold), whatever the process's malloc settings.
#ifndef LOOM_PARALLEL_MPI_COMMUNICATOR_H_
#define LOOM_PARALLEL_MPI_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace loom::parallel {

// Initialises MPI (once per process) and checks rank and size against `world`.
absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options);

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_MPI_COMMUNICATOR_H_
