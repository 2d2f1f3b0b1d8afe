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
//
// Lost peers. Open MPI's TCP transport reports nothing when a link goes down or a host vanishes
// (no RST arrives; TCP retransmits for ~15 minutes), so a rank in a collective would wait
// forever. Three parts bound that:
//  1. Start-up exchange (MPI_Allgather, once): every rank's hostname, local rank, liveness port,
//     nonce and IPv4 addresses (liveness.h: LOOM_NET_IF, else OMPI_MCA_btl_tcp_if_include, else
//     all). It gives Layout() and a local-rank check (host_layout.h; rank 0 warns on stderr).
//  2. A CollectiveWatchdog (watchdog.h) around every MPI call this communicator makes, including
//     MPI_Finalize. When one has run for options.collective_timeout_s (default 300 s), the
//     watchdog thread probes every peer's liveness listener over TCP (5 s at most) and prints
//     one line naming what this rank lost, e.g.
//       loom: rank 0: all-reduce #57 (32.0 KiB) did not complete within 10 s on host node1; lost
//       contact with ranks 2-3 on node2 (10.78.0.2): no answer; rank 1 answers
//     or, if every peer answers, that a rank is stuck rather than the network. It ends the job
//     8 s after noticing the stall, so every rank of the collective reports first (both sides
//     of a cut; with 3+ hosts the isolated one is named by all the others).
//  3. Abort() calls MPI_Abort, and _exit()s by itself 10 s later if MPI_Abort has not ended the
//     process (its runtime may be cut off too).
// So a rank ends at most timeout + 1 s (poll) + 8 s + 10 s after its collective started,
// typically timeout + 9 s, whatever the launcher does; ranks on the far side of a cut run the
// same watchdog. mpirun itself must notice a lost host to exit: launch/mpirun_hosts.sh sets its
// daemons' TCP keepalive (--host-timeout, default 30 s), below the collective timeout, so when a
// whole host vanishes Open MPI normally ends the job first ("ORTE has lost communication with a
// remote daemon ... on node <host>"). If this watchdog aborts first instead, the ranks still end,
// but mpirun may wait until TCP gives up on the lost daemon (minutes: still waiting after 60 s
// here; Linux retransmits for ~15 min). The watchdog covers what the launcher cannot see: a data
// network that fails while the launcher's network stays up, a hung rank, other launchers. The
// NCCL backend has no watchdog.
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
