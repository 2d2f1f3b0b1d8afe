// Where the ranks of a job run, host by host, gathered once at start-up, and the messages built
// from it: the layout line `train` prints, the local-rank check, and the names of lost peers when
// a collective stalls (watchdog.h).
//
//   4 ranks on 2 hosts: node1 = ranks 0-1 (local 0,1), node2 = ranks 2-3 (local 0,1)
//
// A host is identified by its hostname, so two machines that report the same hostname look like
// one host here (and to Open MPI's output); the local-rank check then fails.
#ifndef LOOM_PARALLEL_HOST_LAYOUT_H_
#define LOOM_PARALLEL_HOST_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "parallel/liveness.h"

namespace loom::parallel {

struct RankPlacement {
  int rank = 0;
  std::string host;
  int local_rank = 0;                // as the launcher set it (WorldInfo::local_rank)
  std::vector<uint32_t> addresses;   // what the rank advertises for liveness probes
};

// "0-3", "0,2,5-7".
std::string RankList(const std::vector<int>& ranks);

// One line: ranks per host, in order of each host's first rank, with their local ranks.
std::string DescribeLayout(const std::vector<RankPlacement>& ranks);

// How many ranks share `rank`'s host (itself included); 1 when `ranks` is empty (no layout).
int RanksOnHostOf(const std::vector<RankPlacement>& ranks, int rank);

// Every host's local ranks must be distinct and below its number of ranks (the local rank picks
// the GPU, so a duplicate would put two ranks on one device). The error names the host, the
// ranks and their local ranks.
absl::Status CheckLocalRanks(const std::vector<RankPlacement>& ranks);

// What a liveness probe (liveness.h) found, for a watchdog message: which peers this rank `me`
// lost, grouped by host and state, and which still answer, e.g.
//   lost contact with ranks 2-3 on node2 (10.78.0.2): no answer; rank 1 on node1 answers
// `states` has one entry per rank (the entry for `me` is ignored). Without a layout (the start-up
// exchange did not complete) it says so.
std::string DescribeProbe(int me, const std::vector<RankPlacement>& ranks,
                          const std::vector<PeerState>& states);

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_HOST_LAYOUT_H_
