#include "parallel/host_layout.h"

#include <arpa/inet.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::parallel {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

uint32_t Ip(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return ntohl(a.s_addr);
}

// 2 hosts x 2 ranks, as mpirun --map-by ppr:2:node places them.
std::vector<RankPlacement> TwoByTwo() {
  return {
      {0, "node1", 0, {Ip("10.78.0.1"), Ip("127.0.0.1")}},
      {1, "node1", 1, {Ip("10.78.0.1"), Ip("127.0.0.1")}},
      {2, "node2", 0, {Ip("10.78.0.2"), Ip("127.0.0.1")}},
      {3, "node2", 1, {Ip("10.78.0.2"), Ip("127.0.0.1")}},
  };
}

TEST(HostLayoutTest, RankList) {
  EXPECT_EQ(RankList({3, 0, 1, 2}), "0-3");
  EXPECT_EQ(RankList({0, 2, 5, 6, 7}), "0,2,5-7");
  EXPECT_EQ(RankList({4}), "4");
  EXPECT_EQ(RankList({}), "");
}

TEST(HostLayoutTest, DescribeLayout) {
  EXPECT_EQ(DescribeLayout(TwoByTwo()),
            "4 ranks on 2 hosts: node1 = ranks 0-1 (local 0,1), node2 = ranks 2-3 (local 0,1)");
  // Round-robin placement (--map-by node): hosts in order of their first rank.
  std::vector<RankPlacement> rr = {
      {0, "b", 0, {}}, {1, "a", 0, {}}, {2, "b", 1, {}}, {3, "a", 1, {}}, {4, "c", 0, {}}};
  EXPECT_EQ(DescribeLayout(rr),
            "5 ranks on 3 hosts: b = ranks 0,2 (local 0,1), a = ranks 1,3 (local 0,1), "
            "c = rank 4 (local 0)");
  EXPECT_EQ(DescribeLayout({{0, "solo", 0, {}}}), "1 rank on 1 host: solo = rank 0 (local 0)");
}

TEST(HostLayoutTest, RanksOnHostOf) {
  EXPECT_EQ(RanksOnHostOf(TwoByTwo(), 0), 2);
  EXPECT_EQ(RanksOnHostOf(TwoByTwo(), 3), 2);
  std::vector<RankPlacement> uneven = {{0, "b", 0, {}}, {1, "a", 0, {}}, {2, "b", 1, {}},
                                       {3, "b", 2, {}}};
  EXPECT_EQ(RanksOnHostOf(uneven, 2), 3);
  EXPECT_EQ(RanksOnHostOf(uneven, 1), 1);
  // No layout (not gathered) or a rank it does not list: this rank alone.
  EXPECT_EQ(RanksOnHostOf({}, 0), 1);
  EXPECT_EQ(RanksOnHostOf(uneven, 7), 1);
}

TEST(HostLayoutTest, LocalRanksMustBeDistinctPerHost) {
  EXPECT_TRUE(CheckLocalRanks(TwoByTwo()).ok());
  // What a launcher without a local-rank variable gives (local = global rank) across hosts.
  std::vector<RankPlacement> global = TwoByTwo();
  global[2].local_rank = 2;
  global[3].local_rank = 3;
  absl::Status s = CheckLocalRanks(global);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("host node2 runs 2 ranks but their local ranks (rank->local) are 2->2, "
                        "3->3; each host needs local ranks 0..1 once each"));
  // Two nodes reporting one hostname: four ranks with local ranks 0,1,0,1 on "one host".
  std::vector<RankPlacement> same = TwoByTwo();
  for (RankPlacement& r : same) r.host = "vm";
  s = CheckLocalRanks(same);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("host vm runs 4 ranks"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("own hostname"));
}

TEST(HostLayoutTest, DescribeProbeNamesTheLostHost) {
  const std::vector<PeerState> from_node1 = {PeerState::kAlive, PeerState::kAlive,
                                             PeerState::kNoAnswer, PeerState::kNoAnswer};
  EXPECT_EQ(DescribeProbe(0, TwoByTwo(), from_node1),
            "lost contact with ranks 2-3 on node2 (10.78.0.2): no answer from the host; rank 1 "
            "answers");
  const std::vector<PeerState> from_node2 = {PeerState::kNoAnswer, PeerState::kNoAnswer,
                                             PeerState::kAlive, PeerState::kAlive};
  EXPECT_EQ(DescribeProbe(3, TwoByTwo(), from_node2),
            "lost contact with ranks 0-1 on node1 (10.78.0.1): no answer from the host; rank 2 "
            "answers");
}

TEST(HostLayoutTest, DescribeProbeGroupsByState) {
  const std::vector<PeerState> states = {PeerState::kAlive, PeerState::kRefused,
                                         PeerState::kSilent, PeerState::kNoAnswer};
  EXPECT_EQ(DescribeProbe(0, TwoByTwo(), states),
            "lost contact with rank 1 on node1 (10.78.0.1): the host answers but the process is "
            "gone; rank 2 on node2 (10.78.0.2): the host accepts the connection but the process "
            "does not answer (stopped or starved); rank 3 on node2 (10.78.0.2): no answer from "
            "the host");
}

TEST(HostLayoutTest, DescribeProbeWhenEveryoneAnswers) {
  const std::vector<PeerState> states(4, PeerState::kAlive);
  const std::string m = DescribeProbe(1, TwoByTwo(), states);
  EXPECT_THAT(m, HasSubstr("every peer answers a liveness probe"));
  EXPECT_THAT(m, HasSubstr("parallel.collective_timeout_s"));
  EXPECT_THAT(m, Not(HasSubstr("lost contact")));
}

TEST(HostLayoutTest, DescribeProbeWhenNothingAnswersEvenLocally) {
  const std::vector<PeerState> states(4, PeerState::kNoAnswer);
  const std::string m = DescribeProbe(0, TwoByTwo(), states);
  EXPECT_THAT(m, HasSubstr("lost contact with rank 1 on node1"));
  EXPECT_THAT(m, HasSubstr("probe itself may be blocked"));
}

TEST(HostLayoutTest, DescribeProbeWithoutALayout) {
  EXPECT_THAT(DescribeProbe(0, {}, {}),
              HasSubstr("start-up exchange of addresses did not complete"));
}

}  // namespace
}  // namespace loom::parallel
