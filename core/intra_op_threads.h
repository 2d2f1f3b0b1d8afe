// How many intra-op (OpenMP) threads a training rank runs when `train.num_threads` is 0 and
// OMP_NUM_THREADS is unset.
//
//   at::set_num_threads(ResolveIntraOpThreads(c.train().num_threads(), comm->RanksOnThisHost()));
//
// The cores this process may run on (its CPU affinity mask), but no more than its share of the
// host's cores among the ranks there. mpirun's --bind-to core already gives each rank its own
// cores (the mask says so); --bind-to none gives every rank the whole machine, and every rank
// then taking all the cores oversubscribes them: on this 2-core VM, 2 ranks of the tiny model
// trained at 6.5k tokens/s with 2 threads each against 31.6k with 1 (OpenMP threads spin at
// barriers while their core runs the other rank).
#ifndef LOOM_CORE_INTRA_OP_THREADS_H_
#define LOOM_CORE_INTRA_OP_THREADS_H_

#include <functional>

namespace loom {

// The thread count a rank runs: `configured` (train.num_threads) when > 0; else OMP_NUM_THREADS
// when it is a positive integer (what `launch/mpirun_hosts.sh --threads N` exports, and what
// PyTorch users expect to be honoured; at::set_num_threads would otherwise override it); else
// DefaultIntraOpThreads(ranks_on_host). When `ranks_on_host` is 1 (a communicator that did not
// count them, e.g. NCCL's), the launcher's OMPI_COMM_WORLD_LOCAL_SIZE, LOCAL_WORLD_SIZE or
// SLURM_NTASKS_PER_NODE stands in. `getenv_fn` is injectable for tests.
int ResolveIntraOpThreads(int configured, int ranks_on_host,
                          const std::function<const char*(const char*)>& getenv_fn = nullptr);

// max(1, min(usable_cpus, online_cpus / ranks_on_host)), from this process's affinity mask and
// the online CPU count.
int DefaultIntraOpThreads(int ranks_on_host);

// The same rule with the machine's numbers given (tests).
int DefaultIntraOpThreads(int ranks_on_host, int usable_cpus, int online_cpus);

}  // namespace loom

#endif  // LOOM_CORE_INTRA_OP_THREADS_H_
