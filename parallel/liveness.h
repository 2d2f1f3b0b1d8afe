// Liveness probes between the ranks of a job, over plain TCP, independent of MPI.
//
// Every rank runs a LivenessListener: a thread that accepts TCP connections on an ephemeral port
// (all addresses) and answers each one with a 12-byte token (the rank's random nonce and its
// rank), then closes. The ranks exchange their addresses, ports and nonces once at start-up
// (MpiCommunicator does it with an MPI_Allgather). When a collective stalls, ProbePeers connects
// to every peer's advertised addresses at once and classifies each peer:
//
//   kAlive       a connection answered with the expected token: the peer process is alive and
//                this rank reaches its host (its MPI may still be stuck);
//   kSilent      the host accepted the connection but the process sent nothing: it is stopped
//                (SIGSTOP, a debugger) or too starved to run its listener thread;
//   kRefused     the host answered but nothing listens: the peer process is gone;
//   kWrongAnswer something else answered (an address that is not the peer's on this network);
//   kNoAnswer    no answer within the timeout or no route: the host is unreachable from here
//                (a cut link, a dead node, a partition).
//
// The answer comes from the listener thread, so a peer whose main thread is busy (a long step,
// a checkpoint write) still answers. The probe is used only to name the lost peers in a message;
// it never decides by itself that the job must end (see watchdog.h).
//
// Which addresses a rank advertises: SelectAddresses(spec) with the spec from LOOM_NET_IF, else
// Open MPI's OMPI_MCA_btl_tcp_if_include (the network rank-to-rank traffic uses), else every
// IPv4 address that is up, loopback last. A spec is a comma-separated list of interface names
// ("eth1") and IPv4 subnets ("10.78.0.0/24"). IPv4 only.
#ifndef LOOM_PARALLEL_LIVENESS_H_
#define LOOM_PARALLEL_LIVENESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace loom::parallel {

struct Ipv4Interface {
  std::string name;
  uint32_t address = 0;  // host byte order
  uint32_t netmask = 0;  // host byte order
  bool loopback = false;
};

// The IPv4 addresses of the interfaces that are up (getifaddrs).
std::vector<Ipv4Interface> ListIpv4Interfaces();

// The addresses to advertise, in `interfaces` order with loopback ones last. An empty spec
// selects every interface; a spec that matches nothing is an error naming the spec and the
// interfaces seen. Malformed subnets are errors.
absl::StatusOr<std::vector<uint32_t>> SelectAddresses(const std::vector<Ipv4Interface>& interfaces,
                                                      const std::string& spec);

// The spec the environment asks for: LOOM_NET_IF, else OMPI_MCA_btl_tcp_if_include, else "".
std::string AddressSpecFromEnvironment();

std::string Ipv4ToString(uint32_t address);

class LivenessListener {
 public:
  // Listens on an ephemeral port on every address and answers with (nonce, rank).
  static absl::StatusOr<std::unique_ptr<LivenessListener>> Start(int rank, uint64_t nonce);
  ~LivenessListener();
  LivenessListener(const LivenessListener&) = delete;
  LivenessListener& operator=(const LivenessListener&) = delete;

  uint16_t port() const { return port_; }

 private:
  LivenessListener(int listen_fd, int wake_read, int wake_write, uint16_t port, int rank,
                   uint64_t nonce);
  void Serve();

  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  const uint16_t port_;
  const int rank_;
  const uint64_t nonce_;
  std::thread thread_;
};

enum class PeerState { kAlive, kSilent, kRefused, kWrongAnswer, kNoAnswer };
const char* PeerStateName(PeerState state);

struct ProbeTarget {
  int rank = 0;
  std::vector<uint32_t> addresses;  // host byte order
  uint16_t port = 0;
  uint64_t nonce = 0;
};

// Connects to every target's addresses concurrently and waits for the tokens up to `timeout_s`
// (per batch of 512 sockets: one batch holds 256 ranks with 2 addresses each). One state per
// target, in order: the first of kAlive, kSilent, kRefused, kWrongAnswer that any of its
// addresses gave, else kNoAnswer.
std::vector<PeerState> ProbePeers(const std::vector<ProbeTarget>& targets, double timeout_s);

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_LIVENESS_H_
