// Collectives between the ranks of a data-parallel job, on tensors, with async handles.
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, CreateCommunicator(world, options));
//   std::unique_ptr<Work> w = comm->AllReduce(bucket, ReduceOp::kSum);  // starts, returns at once
//   ... the backward pass goes on ...
//   LOOM_RETURN_IF_ERROR(w->Wait());
//
// Backends:
//   "local"  world size 1: every collective is the identity (or a copy). No MPI needed.
//   "mpi"    Open MPI, CPU tensors (float32, float64, int64). One communication thread issues all
//            MPI calls in submission order, so collectives overlap with the caller's compute.
//            Large messages are cut into chunks of `chunk_bytes` (see mpi_communicator.h for why).
//   "nccl"   CUDA tensors; collectives on the communicator's own stream, ordered after the
//            caller's stream by CUDA events. The NCCL unique id travels by MPI_Bcast or by a file
//            in a shared directory (Slurm without PMIx). Only in --config=cuda builds.
//
// Contract (as MPI and NCCL require): every rank submits the same collectives in the same order;
// tensors are contiguous and stay alive and untouched until Wait() returns. Errors come back as a
// Status naming the call, file and line; a rank that dies takes the job down (mpirun ends the
// other ranks), and callers turn a failed collective into Abort(), never a hang.
//
// Lost peers ("mpi"): a collective that has not completed after `collective_timeout_s` ends the
// job from a watchdog thread, with a message naming the peers this rank lost contact with, found
// by a TCP liveness probe to every peer (watchdog.h, liveness.h). Over TCP a cut link or a dead
// host sends no error: without the deadline every rank would wait forever.
#ifndef LOOM_PARALLEL_COMMUNICATOR_H_
#define LOOM_PARALLEL_COMMUNICATOR_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parallel/world.h"

namespace loom::parallel {

enum class ReduceOp { kSum, kMax };

// The handle of a started collective.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the collective has finished (on GPUs: until the caller's current stream is
  // ordered after it). Safe to call more than once.
  virtual absl::Status Wait() = 0;
};

// A Work that is already finished (with `status`).
std::unique_ptr<Work> CompletedWork(absl::Status status = absl::OkStatus());

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;

  // In place: t = op over ranks of t.
  virtual std::unique_ptr<Work> AllReduce(const at::Tensor& t, ReduceOp op) = 0;
  // input: world_size * n elements; output: n elements = sum over ranks of their input chunk
  // number rank().
  virtual std::unique_ptr<Work> ReduceScatter(const at::Tensor& input,
                                              const at::Tensor& output) = 0;
  // In place on world_size * n elements: chunk r of every rank's buffer ends up as rank r's.
  virtual std::unique_ptr<Work> AllGatherInPlace(const at::Tensor& buffer) = 0;
  // In place: every rank's t becomes root's t.
  virtual std::unique_ptr<Work> Broadcast(const at::Tensor& t, int root) = 0;
  virtual absl::Status Barrier() = 0;
  // Ends every rank of the job now (MPI_Abort / exit), after printing `message` to stderr.
  [[noreturn]] virtual void Abort(const std::string& message, int exit_code) = 0;
  // Where the ranks run, host by host ("4 ranks on 2 hosts: node1 = ranks 0-1 (local 0,1), ..."),
  // when the backend gathered it ("mpi"); empty otherwise.
  virtual std::string Layout() const { return ""; }
  // How many ranks of the job run on this rank's host, itself included, when the backend gathered
  // the layout ("mpi"); 1 otherwise. The default intra-op thread count shares the host's cores
  // among them (trainer).
  virtual int RanksOnThisHost() const { return 1; }
};

struct CommunicatorOptions {
  // "auto": "local" for a world of 1, else "mpi" (CPU) — "nccl" must be asked for.
  std::string backend = "auto";
  // MPI: collectives above this size are issued in chunks of it (0: never chunk).
  int64_t chunk_bytes = int64_t{4} << 20;
  // NCCL: how the unique id reaches the ranks: "mpi" or "file" (needs nccl_id_dir).
  std::string nccl_id_method = "mpi";
  std::string nccl_id_dir;
  int device = -1;  // NCCL: CUDA device; -1 = world.local_rank
  // MPI: a collective (or barrier, broadcast, MPI_Finalize) still running after this many
  // seconds ends the job, naming the lost peers; <= 0 waits forever.
  double collective_timeout_s = 300;

  CommunicatorOptions& set_backend(std::string v) { backend = std::move(v); return *this; }
  CommunicatorOptions& set_chunk_bytes(int64_t v) { chunk_bytes = v; return *this; }
};

// The communicator for this process. "mpi" and "nccl" initialise MPI once per process; the
// MPI rank and size must agree with `world` (from the launcher's environment).
absl::StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options = {});

// Sum (or max) of a double over ranks, blocking. For losses and norms.
absl::StatusOr<double> AllReduceScalar(Communicator& comm, double value,
                                       ReduceOp op = ReduceOp::kSum);

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_COMMUNICATOR_H_
