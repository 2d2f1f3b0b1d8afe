#include "core/intra_op_threads.h"

#include <sched.h>

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

TEST(IntraOpThreadsTest, ThisProcessUsesItsAffinityMask) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  EXPECT_EQ(DefaultIntraOpThreads(1), CPU_COUNT(&mask));
  EXPECT_GE(DefaultIntraOpThreads(1000), 1);
}

}  // namespace
}  // namespace loom
