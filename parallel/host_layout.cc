#include "parallel/host_layout.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom::parallel {
namespace {

// Hosts in order of their first rank, each with its ranks in rank order.
std::vector<std::pair<std::string, std::vector<const RankPlacement*>>> ByHost(
    const std::vector<RankPlacement>& ranks) {
  std::vector<const RankPlacement*> sorted;
  for (const RankPlacement& r : ranks) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const RankPlacement* a, const RankPlacement* b) { return a->rank < b->rank; });
  std::vector<std::pair<std::string, std::vector<const RankPlacement*>>> out;
  std::map<std::string, size_t> index;
  for (const RankPlacement* r : sorted) {
    auto [it, inserted] = index.emplace(r->host, out.size());
    if (inserted) out.push_back({r->host, {}});
    out[it->second].second.push_back(r);
  }
  return out;
}

std::string Addresses(const std::vector<const RankPlacement*>& ranks) {
  std::vector<std::string> out;
  for (const RankPlacement* r : ranks) {
    for (uint32_t a : r->addresses) {
      const std::string s = Ipv4ToString(a);
      if (s.rfind("127.", 0) == 0) continue;  // loopback says nothing about the host
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
  }
  return absl::StrJoin(out, ", ");
}

std::string Ranks(const std::vector<int>& ranks) {
  return absl::StrCat(ranks.size() == 1 ? "rank " : "ranks ", RankList(ranks));
}

}  // namespace

std::string RankList(const std::vector<int>& ranks) {
  std::vector<int> r = ranks;
  std::sort(r.begin(), r.end());
  std::vector<std::string> parts;
  for (size_t i = 0; i < r.size();) {
    size_t j = i;
    while (j + 1 < r.size() && r[j + 1] == r[j] + 1) ++j;
    parts.push_back(j == i ? absl::StrCat(r[i]) : absl::StrCat(r[i], "-", r[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

std::string DescribeLayout(const std::vector<RankPlacement>& ranks) {
  const auto hosts = ByHost(ranks);
  std::vector<std::string> parts;
  for (const auto& [host, rs] : hosts) {
    std::vector<int> ids, locals;
    for (const RankPlacement* r : rs) {
      ids.push_back(r->rank);
      locals.push_back(r->local_rank);
    }
    parts.push_back(
        absl::StrCat(host, " = ", Ranks(ids), " (local ", absl::StrJoin(locals, ","), ")"));
  }
  return absl::StrCat(ranks.size(), ranks.size() == 1 ? " rank" : " ranks", " on ", hosts.size(),
                      hosts.size() == 1 ? " host: " : " hosts: ", absl::StrJoin(parts, ", "));
}

absl::Status CheckLocalRanks(const std::vector<RankPlacement>& ranks) {
  for (const auto& [host, rs] : ByHost(ranks)) {
    std::map<int, std::vector<int>> by_local;
    bool bad = false;
    for (const RankPlacement* r : rs) {
      by_local[r->local_rank].push_back(r->rank);
      bad = bad || r->local_rank < 0 || r->local_rank >= static_cast<int>(rs.size());
    }
    bad = bad || by_local.size() != rs.size();
    if (!bad) continue;
    std::vector<std::string> pairs;
    for (const RankPlacement* r : rs) pairs.push_back(absl::StrCat(r->rank, "->", r->local_rank));
    return absl::FailedPreconditionError(absl::StrCat(
        "host ", host, " runs ", rs.size(), " ranks but their local ranks (rank->local) are ",
        absl::StrJoin(pairs, ", "),
        "; each host needs local ranks 0..", rs.size() - 1,
        " once each (the local rank picks the GPU). Check the launcher's local-rank variable "
        "(OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, LOCAL_RANK) and that every node has its "
        "own hostname"));
  }
  return absl::OkStatus();
}

std::string DescribeProbe(int me, const std::vector<RankPlacement>& ranks,
                          const std::vector<PeerState>& states) {
  if (ranks.empty() || states.size() != ranks.size()) {
    return "peers unknown (the start-up exchange of addresses did not complete)";
  }
  std::string my_host;
  for (const RankPlacement& r : ranks) {
    if (r.rank == me) my_host = r.host;
  }
  std::vector<std::string> lost;
  std::vector<int> alive;
  int same_host_peers = 0, same_host_silent = 0;
  for (const auto& [host, rs] : ByHost(ranks)) {
    // Lost peers of this host, grouped by what the probe found.
    std::map<PeerState, std::vector<const RankPlacement*>> by_state;
    for (const RankPlacement* r : rs) {
      if (r->rank == me) continue;
      const PeerState s = states[static_cast<size_t>(r->rank)];
      if (host == my_host) {
        ++same_host_peers;
        same_host_silent += s == PeerState::kNoAnswer;
      }
      if (s == PeerState::kAlive) {
        alive.push_back(r->rank);
      } else {
        by_state[s].push_back(r);
      }
    }
    for (const auto& [state, group] : by_state) {
      std::vector<int> ids;
      for (const RankPlacement* r : group) ids.push_back(r->rank);
      const std::string addresses = Addresses(group);
      lost.push_back(absl::StrCat(Ranks(ids), " on ", host,
                                  addresses.empty() ? "" : absl::StrCat(" (", addresses, ")"),
                                  ": ", PeerStateName(state)));
    }
  }
  std::string out;
  if (lost.empty()) {
    out = absl::StrCat(
        "every peer answers a liveness probe, so the network to them is up and their processes "
        "are alive: a rank is stuck or much slower than the others (raise "
        "parallel.collective_timeout_s if a step, an evaluation or a checkpoint legitimately "
        "takes longer)");
  } else {
    out = absl::StrCat("lost contact with ", absl::StrJoin(lost, "; "));
    if (!alive.empty()) {
      absl::StrAppend(&out, "; ", Ranks(alive), alive.size() == 1 ? " answers" : " answer");
    }
    if (same_host_peers > 0 && same_host_silent == same_host_peers) {
      absl::StrAppend(&out, "; not even the ranks on this host answer, so the liveness probe "
                            "itself may be blocked (a firewall on ephemeral TCP ports)");
    }
  }
  return out;
}

int RanksOnHostOf(const std::vector<RankPlacement>& ranks, int rank) {
  const RankPlacement* me = nullptr;
  for (const RankPlacement& r : ranks) {
    if (r.rank == rank) me = &r;
  }
  if (me == nullptr) return 1;
  int n = 0;
  for (const RankPlacement& r : ranks) n += r.host == me->host ? 1 : 0;
  return n;
}

}  // namespace loom::parallel
