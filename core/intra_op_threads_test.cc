#include "core/intra_op_threads.h"

#include <sched.h>

#include <string>

#include "gtest/gtest.h"

namespace loom {
namespace {

TEST(IntraOpThreadsTest, OneRankTakesEveryUsableCore) {
  EXPECT_EQ(DefaultIntraOpThreads(1, 2, 2), 2);
  EXPECT_EQ(DefaultIntraOpThreads(1, 64, 64), 64);
  // Bound to fewer cores than the machine has (taskset, a Slurm allocation): the mask wins.
  EXPECT_EQ(DefaultIntraOpThreads(1, 8, 64), 8);
}

TEST(IntraOpThreadsTest, UnboundRanksShareTheHostsCores) {
  // mpirun --bind-to none: every rank's mask is the whole machine.
  EXPECT_EQ(DefaultIntraOpThreads(2, 2, 2), 1);
  EXPECT_EQ(DefaultIntraOpThreads(8, 64, 64), 8);
  EXPECT_EQ(DefaultIntraOpThreads(3, 64, 64), 21);
}

TEST(IntraOpThreadsTest, BoundRanksKeepTheirOwnCores) {
  // --bind-to core with 2 ranks on 2 cores: one core each.
  EXPECT_EQ(DefaultIntraOpThreads(2, 1, 2), 1);
  // --bind-to socket, 8 ranks on 2 sockets of 32: each mask is a socket, shared by 4 ranks.
  EXPECT_EQ(DefaultIntraOpThreads(8, 32, 64), 8);
}

TEST(IntraOpThreadsTest, NeverZeroAndSaneOnOddInput) {
  EXPECT_EQ(DefaultIntraOpThreads(4, 2, 2), 1);   // more ranks than cores
  EXPECT_EQ(DefaultIntraOpThreads(0, 4, 4), 4);   // unknown rank count: this rank alone
  EXPECT_EQ(DefaultIntraOpThreads(1, 0, 4), 4);   // unknown mask: the machine
  EXPECT_EQ(DefaultIntraOpThreads(1, 16, 4), 4);  // a mask wider than the online CPUs
  EXPECT_EQ(DefaultIntraOpThreads(1, 0, 0), 1);
}

TEST(IntraOpThreadsTest, ConfiguredCountThenOmpNumThreadsThenTheDefault) {
  auto env = [](const char* value) {
    return [value](const char* name) -> const char* {
      return std::string(name) == "OMP_NUM_THREADS" ? value : nullptr;
    };
  };
  EXPECT_EQ(ResolveIntraOpThreads(3, 2, env("5")), 3);   // train.num_threads wins
  EXPECT_EQ(ResolveIntraOpThreads(0, 2, env("5")), 5);   // then OMP_NUM_THREADS
  EXPECT_EQ(ResolveIntraOpThreads(0, 2, env("6,2")), 6); // nested list: the outer level
  const int fallback = DefaultIntraOpThreads(2);
  EXPECT_EQ(ResolveIntraOpThreads(0, 2, env(nullptr)), fallback);
  for (const char* bad : {"", "0", "-2", "four", "3x", "999999"}) {
    EXPECT_EQ(ResolveIntraOpThreads(0, 2, env(bad)), fallback) << "OMP_NUM_THREADS=" << bad;
  }
}

TEST(IntraOpThreadsTest, LaunchersLocalSizeStandsInWhenTheCommunicatorDidNotCount) {
  auto env = [](const char* name, const char* value) {
    return [name, value](const char* n) -> const char* {
      return std::string(n) == name ? value : nullptr;
    };
  };
  // What the rule gives 2 ranks on this machine, whatever its size.
  const int two_ranks = DefaultIntraOpThreads(2);
  EXPECT_EQ(ResolveIntraOpThreads(0, 1, env("OMPI_COMM_WORLD_LOCAL_SIZE", "2")), two_ranks);
  EXPECT_EQ(ResolveIntraOpThreads(0, 1, env("LOCAL_WORLD_SIZE", "2")), two_ranks);
  EXPECT_EQ(ResolveIntraOpThreads(0, 1, env("SLURM_NTASKS_PER_NODE", "2")), two_ranks);
  // A counted layout wins over the environment; junk is ignored.
  EXPECT_EQ(ResolveIntraOpThreads(0, 2, env("OMPI_COMM_WORLD_LOCAL_SIZE", "1")), two_ranks);
  EXPECT_EQ(ResolveIntraOpThreads(0, 1, env("LOCAL_WORLD_SIZE", "2(x3)")),
            DefaultIntraOpThreads(1));
}

TEST(IntraOpThreadsTest, ThisProcessUsesItsAffinityMask) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  EXPECT_EQ(DefaultIntraOpThreads(1), CPU_COUNT(&mask));
  EXPECT_GE(DefaultIntraOpThreads(1000), 1);
}

}  // namespace
}  // namespace loom
