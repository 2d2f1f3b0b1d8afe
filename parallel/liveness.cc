#include "parallel/liveness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace loom::parallel {
namespace {

constexpr size_t kTokenBytes = 12;  // nonce (8, little-endian) + rank (4, little-endian)

void EncodeToken(uint64_t nonce, int rank, unsigned char out[kTokenBytes]) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(nonce >> (8 * i));
  const uint32_t r = static_cast<uint32_t>(rank);
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<unsigned char>(r >> (8 * i));
}

absl::Status Errno(const char* what) {
  return absl::InternalError(absl::StrCat("liveness listener: ", what, ": ", std::strerror(errno)));
}

// "10.78.0.0/24" -> (network, mask), host byte order.
bool ParseSubnet(absl::string_view text, uint32_t* network, uint32_t* mask) {
  std::vector<std::string> parts = absl::StrSplit(text, "/");
  if (parts.size() != 2) return false;
  in_addr a{};
  int bits = 0;
  if (inet_pton(AF_INET, parts[0].c_str(), &a) != 1 || !absl::SimpleAtoi(parts[1], &bits) ||
      bits < 0 || bits > 32) {
    return false;
  }
  *mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  *network = ntohl(a.s_addr) & *mask;
  return true;
}

}  // namespace

std::string Ipv4ToString(uint32_t address) {
  in_addr a{};
  a.s_addr = htonl(address);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

std::vector<Ipv4Interface> ListIpv4Interfaces() {
  std::vector<Ipv4Interface> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0) continue;
    Ipv4Interface itf;
    itf.name = i->ifa_name;
    itf.address = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if (i->ifa_netmask != nullptr) {
      itf.netmask = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
    }
    itf.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    out.push_back(std::move(itf));
  }
  freeifaddrs(list);
  return out;
}

absl::StatusOr<std::vector<uint32_t>> SelectAddresses(const std::vector<Ipv4Interface>& interfaces,
                                                      const std::string& spec) {
  std::vector<std::string> names;
  std::vector<std::pair<uint32_t, uint32_t>> subnets;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    if (absl::StrContains(item, '/')) {
      uint32_t network = 0, mask = 0;
      if (!ParseSubnet(item, &network, &mask)) {
        return absl::InvalidArgumentError(
            absl::StrCat("network \"", item, "\" is not an IPv4 subnet like 10.78.0.0/24"));
      }
      subnets.emplace_back(network, mask);
    } else {
      names.emplace_back(item);
    }
  }
  const bool all = names.empty() && subnets.empty();
  std::vector<uint32_t> out, loopback;
  for (const Ipv4Interface& itf : interfaces) {
    bool selected = all;
    for (const std::string& n : names) selected = selected || itf.name == n;
    for (const auto& [network, mask] : subnets) {
      selected = selected || (itf.address & mask) == network;
    }
    if (!selected) continue;
    (itf.loopback ? loopback : out).push_back(itf.address);
  }
  out.insert(out.end(), loopback.begin(), loopback.end());
  if (out.empty()) {
    std::vector<std::string> seen;
    for (const Ipv4Interface& itf : interfaces) {
      seen.push_back(absl::StrCat(itf.name, " ", Ipv4ToString(itf.address)));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "no IPv4 interface matches \"", spec, "\" (interfaces up: ",
        seen.empty() ? "none" : absl::StrJoin(seen, ", "), ")"));
  }
  return out;
}

std::string AddressSpecFromEnvironment() {
  for (const char* name : {"LOOM_NET_IF", "OMPI_MCA_btl_tcp_if_include"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "";
}

const char* PeerStateName(PeerState state) {
  switch (state) {
    case PeerState::kAlive: return "answers";
    case PeerState::kSilent:
      return "the host accepts the connection but the process does not answer (stopped or "
             "starved)";
    case PeerState::kRefused: return "the host answers but the process is gone";
    case PeerState::kWrongAnswer: return "another process answers at its address";
    case PeerState::kNoAnswer: return "no answer from the host";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Listener

absl::StatusOr<std::unique_ptr<LivenessListener>> LivenessListener::Start(int rank,
                                                                           uint64_t nonce) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  // When a collective stalls, every other rank probes this one at once: a deep accept queue
  // (clamped by net.core.somaxconn) keeps their handshakes from being dropped.
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4096) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status s = Errno("bind/listen");
    close(fd);
    return s;
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    absl::Status s = Errno("pipe");
    close(fd);
    return s;
  }
  return std::unique_ptr<LivenessListener>(
      new LivenessListener(fd, pipe_fds[0], pipe_fds[1], ntohs(addr.sin_port), rank, nonce));
}

LivenessListener::LivenessListener(int listen_fd, int wake_read, int wake_write, uint16_t port,
                                   int rank, uint64_t nonce)
    : listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      port_(port),
      rank_(rank),
      nonce_(nonce),
      thread_([this] { Serve(); }) {}

LivenessListener::~LivenessListener() {
  const char c = 0;
  while (write(wake_write_, &c, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
}

void LivenessListener::Serve() {
  unsigned char token[kTokenBytes];
  EncodeToken(nonce_, rank_, token);
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    for (;;) {  // every pending connection
      const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) break;
      // 12 bytes always fit a fresh socket's send buffer.
      (void)!send(c, token, sizeof(token), MSG_NOSIGNAL);
      close(c);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Probe

std::vector<PeerState> ProbePeers(const std::vector<ProbeTarget>& targets, double timeout_s) {
  enum Outcome { kPending, kOk, kRefused, kWrong, kFailed };
  struct Attempt {
    size_t target;
    uint32_t address;
    int fd = -1;
    bool connected = false;
    unsigned char buf[kTokenBytes] = {};
    size_t got = 0;
    Outcome outcome = kPending;
  };
  std::vector<Attempt> attempts;
  for (size_t t = 0; t < targets.size(); ++t) {
    for (uint32_t a : targets[t].addresses) attempts.push_back(Attempt{t, a});
  }
  constexpr size_t kBatch = 512;  // sockets open at once (default fd limits are 1024)
  for (size_t begin = 0; begin < attempts.size(); begin += kBatch) {
    const size_t end = std::min(attempts.size(), begin + kBatch);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
    for (size_t i = begin; i < end; ++i) {
      Attempt& at = attempts[i];
      at.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (at.fd < 0) {
        at.outcome = kFailed;
        continue;
      }
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(at.address);
      addr.sin_port = htons(targets[at.target].port);
      if (connect(at.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        at.connected = true;
      } else if (errno != EINPROGRESS) {
        at.outcome = errno == ECONNREFUSED ? kRefused : kFailed;
      }
    }
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<size_t> which;
      for (size_t i = begin; i < end; ++i) {
        if (attempts[i].outcome != kPending) continue;
        const short events = attempts[i].connected ? POLLIN : POLLOUT;
        fds.push_back({attempts[i].fd, events, 0});
        which.push_back(i);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (fds.empty() || left <= 0) break;
      const int n = poll(fds.data(), fds.size(), static_cast<int>(left));
      if (n < 0 && errno != EINTR) break;
      for (size_t k = 0; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        Attempt& at = attempts[which[k]];
        const ProbeTarget& target = targets[at.target];
        if (!at.connected) {
          int err = 0;
          socklen_t len = sizeof(err);
          getsockopt(at.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err == 0) {
            at.connected = true;
          } else {
            at.outcome = err == ECONNREFUSED ? kRefused : kFailed;
          }
          continue;
        }
        const ssize_t r = read(at.fd, at.buf + at.got, kTokenBytes - at.got);
        if (r > 0) {
          at.got += static_cast<size_t>(r);
          if (at.got == kTokenBytes) {
            unsigned char expected[kTokenBytes];
            EncodeToken(target.nonce, target.rank, expected);
            at.outcome = std::memcmp(expected, at.buf, kTokenBytes) == 0 ? kOk : kWrong;
          }
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          at.outcome = kWrong;  // closed without the whole token
        }
      }
    }
    for (size_t i = begin; i < end; ++i) {
      if (attempts[i].fd >= 0) close(attempts[i].fd);
      attempts[i].fd = -1;
    }
  }
  std::vector<PeerState> out(targets.size(), PeerState::kNoAnswer);
  // PeerState is ordered from the most to the least informative answer.
  for (const Attempt& at : attempts) {
    PeerState s = PeerState::kNoAnswer;
    if (at.outcome == kOk) s = PeerState::kAlive;
    if (at.outcome == kPending && at.connected) s = PeerState::kSilent;
    if (at.outcome == kRefused) s = PeerState::kRefused;
    if (at.outcome == kWrong) s = PeerState::kWrongAnswer;
    if (s < out[at.target]) out[at.target] = s;
  }
  return out;
}

}  // namespace loom::parallel
