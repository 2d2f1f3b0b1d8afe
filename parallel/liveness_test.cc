#include "parallel/liveness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::parallel {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

uint32_t Ip(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return ntohl(a.s_addr);
}

const std::vector<Ipv4Interface> kInterfaces = {
    {"lo", Ip("127.0.0.1"), Ip("255.0.0.0"), true},
    {"eth0", Ip("10.77.0.2"), Ip("255.255.255.0"), false},
    {"eth1", Ip("10.78.0.2"), Ip("255.255.255.0"), false},
};

TEST(SelectAddressesTest, EmptySpecTakesEverythingLoopbackLast) {
  auto a = SelectAddresses(kInterfaces, "");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(*a, ElementsAre(Ip("10.77.0.2"), Ip("10.78.0.2"), Ip("127.0.0.1")));
}

TEST(SelectAddressesTest, InterfaceNamesAndSubnets) {
  auto by_name = SelectAddresses(kInterfaces, "eth1");
  ASSERT_TRUE(by_name.ok());
  EXPECT_THAT(*by_name, ElementsAre(Ip("10.78.0.2")));
  auto by_subnet = SelectAddresses(kInterfaces, "10.77.0.0/24, lo");
  ASSERT_TRUE(by_subnet.ok());
  EXPECT_THAT(*by_subnet, ElementsAre(Ip("10.77.0.2"), Ip("127.0.0.1")));
  auto wide = SelectAddresses(kInterfaces, "10.0.0.0/8");
  ASSERT_TRUE(wide.ok());
  EXPECT_THAT(*wide, ElementsAre(Ip("10.77.0.2"), Ip("10.78.0.2")));
}

TEST(SelectAddressesTest, NoMatchAndBadSubnetAreErrors) {
  auto none = SelectAddresses(kInterfaces, "ib0");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("no IPv4 interface matches \"ib0\""));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("eth1 10.78.0.2"));
  auto bad = SelectAddresses(kInterfaces, "10.78.0.0/33");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("10.78.0.0/33"));
}

TEST(ListIpv4InterfacesTest, HasLoopback) {
  bool loopback = false;
  for (const Ipv4Interface& i : ListIpv4Interfaces()) loopback = loopback || i.loopback;
  EXPECT_TRUE(loopback);
}

TEST(ProbeTest, ClassifiesAliveRefusedWrongAndUnreachable) {
  auto a = LivenessListener::Start(0, 1234);
  auto b = LivenessListener::Start(1, 5678);
  ASSERT_TRUE(a.ok() && b.ok());
  uint16_t gone_port = 0;
  {
    auto gone = LivenessListener::Start(2, 9);
    ASSERT_TRUE(gone.ok());
    gone_port = (*gone)->port();
  }  // closed: the host answers, nothing listens
  const uint32_t lo = Ip("127.0.0.1");
  // A socket that listens but never accepts: connections complete, no token ever comes (what a
  // stopped peer process looks like: its kernel still completes the handshake).
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(lo);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(silent, 8), 0);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t silent_port = ntohs(addr.sin_port);
  std::vector<ProbeTarget> targets = {
      {0, {lo}, (*a)->port(), 1234},
      {1, {lo}, (*b)->port(), 5678},
      {2, {lo}, gone_port, 9},
      {1, {lo}, (*b)->port(), 1111},                   // someone else answers there
      {3, {lo}, silent_port, 1},                       // accepts (kernel), never answers
      {4, {lo, lo}, (*a)->port(), 1234},               // answers, but as rank 0
      {0, {}, (*a)->port(), 1234},                     // nothing advertised
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<PeerState> states = ProbePeers(targets, 1.0);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Targets 3 and 5 claim other identities than the listeners there: wrong answers.
  EXPECT_THAT(states, ElementsAre(PeerState::kAlive, PeerState::kAlive, PeerState::kRefused,
                                  PeerState::kWrongAnswer, PeerState::kSilent,
                                  PeerState::kWrongAnswer, PeerState::kNoAnswer));
  EXPECT_GE(took, 0.9);  // the silent one is waited for until the timeout
  EXPECT_LT(took, 3.0);
  close(silent);
}

TEST(ProbeTest, NoAnswerWhenTheHandshakeNeverCompletes) {
  // A full accept queue makes the kernel drop new SYNs, as a cut link does: the connection stays
  // in progress until the timeout.
  const uint32_t lo = Ip("127.0.0.1");
  const int full = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(lo);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(full, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(full, 0), 0);
  ASSERT_EQ(getsockname(full, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::vector<int> fillers;  // fill the queue
  for (int i = 0; i < 4; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(c);
  }
  std::vector<ProbeTarget> targets = {{5, {lo}, ntohs(addr.sin_port), 1}};
  EXPECT_THAT(ProbePeers(targets, 1.0), ElementsAre(PeerState::kNoAnswer));
  for (int c : fillers) close(c);
  close(full);
}

TEST(ProbeTest, NothingToProbe) {
  EXPECT_TRUE(ProbePeers({}, 1.0).empty());
}

TEST(ProbeTest, ManyConcurrentProbesOfOneListener) {
  auto a = LivenessListener::Start(7, 42);
  ASSERT_TRUE(a.ok());
  std::vector<ProbeTarget> targets(600, ProbeTarget{7, {Ip("127.0.0.1")}, (*a)->port(), 42});
  std::vector<PeerState> states = ProbePeers(targets, 5.0);
  for (size_t i = 0; i < states.size(); ++i) {
    ASSERT_EQ(states[i], PeerState::kAlive) << i;
  }
}

TEST(ProbeTest, ListenerAnswersWhileTheCallerIsBusy) {
  // The answer comes from the listener's own thread.
  auto a = LivenessListener::Start(3, 77);
  ASSERT_TRUE(a.ok());
  std::vector<ProbeTarget> targets = {{3, {Ip("127.0.0.1")}, (*a)->port(), 77}};
  EXPECT_THAT(ProbePeers(targets, 2.0), ElementsAre(PeerState::kAlive));
}

}  // namespace
}  // namespace loom::parallel
