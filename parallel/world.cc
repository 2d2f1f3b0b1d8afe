#include "parallel/world.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace loom::parallel {
namespace {

struct Names {
  const char* source;
  const char* rank;
  const char* size;
  const char* local_rank;
};

constexpr Names kLaunchers[] = {
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
    {"env", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
};

absl::StatusOr<int> ParseInt(const char* name, const char* value) {
  int v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", name, "=\"", value, "\" is not a non-negative integer"));
  }
  return v;
}

}  // namespace

absl::StatusOr<WorldInfo> DiscoverWorld(
    const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* n) -> const char* {
    return getenv_fn ? getenv_fn(n) : std::getenv(n);
  };
  for (const Names& l : kLaunchers) {
    const char* rank = get(l.rank);
    const char* size = get(l.size);
    if (rank == nullptr || size == nullptr) continue;
    WorldInfo w;
    w.source = l.source;
    absl::StatusOr<int> r = ParseInt(l.rank, rank);
    if (!r.ok()) return r.status();
    absl::StatusOr<int> s = ParseInt(l.size, size);
    if (!s.ok()) return s.status();
    w.rank = *r;
    w.world_size = *s;
    if (const char* local = get(l.local_rank)) {
      absl::StatusOr<int> lr = ParseInt(l.local_rank, local);
      if (!lr.ok()) return lr.status();
      w.local_rank = *lr;
    } else {
      w.local_rank = w.rank;
    }
    if (w.world_size < 1 || w.rank >= w.world_size) {
      return absl::InvalidArgumentError(absl::StrCat(l.rank, "=", w.rank, " is not below ",
                                                     l.size, "=", w.world_size));
    }
    return w;
  }
  return WorldInfo{};
}

}  // namespace loom::parallel
