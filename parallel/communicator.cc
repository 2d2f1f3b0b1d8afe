#include "parallel/communicator.h"

#include <ATen/Functions.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"

namespace loom::parallel {
namespace {

class DoneWork : public Work {
 public:
  explicit DoneWork(absl::Status s) : status_(std::move(s)) {}
  absl::Status Wait() override { return status_; }

 private:
  absl::Status status_;
};

absl::Status CheckContiguous(const at::Tensor& t, const char* what) {
  if (t.defined() && t.is_contiguous()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " needs a defined, contiguous tensor"));
}

// World of one: nothing to exchange; arguments are checked as the real backends check them.
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<Work> AllReduce(const at::Tensor& t, ReduceOp) override {
    return CompletedWork(CheckContiguous(t, "AllReduce"));
  }
  std::unique_ptr<Work> ReduceScatter(const at::Tensor& input, const at::Tensor& output) override {
    if (input.numel() != output.numel()) {
      return CompletedWork(absl::InvalidArgumentError(absl::StrCat(
          "ReduceScatter: input has ", input.numel(), " elements, output ", output.numel())));
    }
    if (!input.is_same(output)) output.view(-1).copy_(input.view(-1));
    return CompletedWork();
  }
  std::unique_ptr<Work> AllGatherInPlace(const at::Tensor&) override { return CompletedWork(); }
  std::unique_ptr<Work> Broadcast(const at::Tensor&, int) override { return CompletedWork(); }
  absl::Status Barrier() override { return absl::OkStatus(); }
  [[noreturn]] void Abort(const std::string& message, int exit_code) override {
    std::fprintf(stderr, "loom: %s; aborting\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(exit_code);
  }
};

}  // namespace

std::unique_ptr<Work> CompletedWork(absl::Status status) {
  return std::make_unique<DoneWork>(std::move(status));
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options) {
  std::string backend = options.backend;
  if (backend == "auto") backend = world.world_size == 1 ? "local" : "mpi";
  if (backend == "local") {
    if (world.world_size != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "communicator backend \"local\" serves a single process, but this is rank ",
          world.rank, " of ", world.world_size));
    }
    return std::unique_ptr<Communicator>(new LocalCommunicator());
  }
  if (backend == "mpi") return CreateMpiCommunicator(world, options);
  if (backend == "nccl") return CreateNcclCommunicator(world, options);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown communicator backend \"", backend, "\" (auto, local, mpi, nccl)"));
}

absl::StatusOr<double> AllReduceScalar(Communicator& comm, double value, ReduceOp op) {
  if (comm.world_size() == 1) return value;
  at::Tensor t = at::full({1}, value, at::kDouble);
  if (absl::Status s = comm.AllReduce(t, op)->Wait(); !s.ok()) return s;
  return t.item<double>();
}

}  // namespace loom::parallel
