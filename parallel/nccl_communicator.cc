#include "parallel/nccl_communicator.h"

#include "absl/strings/str_cat.h"

#ifdef LOOM_CUDA
#include <ATen/Functions.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/file_io.h"
#include "parallel/internal/mpi_check.h"
#endif

namespace loom::parallel {

#ifndef LOOM_CUDA

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const WorldInfo&,
                                                                     const CommunicatorOptions&) {
  return absl::UnimplementedError(
      "the NCCL backend is only in CUDA builds (bazel build --config=cuda); this binary is "
      "CPU-only: use the mpi backend");
}

bool HaveNccl() { return false; }

#else  // LOOM_CUDA

namespace {

absl::Status CudaStatus(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error in ", call, " at ", file, ":", line, ": ",
                                          cudaGetErrorString(e)));
}
absl::Status NcclStatus(ncclResult_t r, const char* call, const char* file, int line) {
  if (r == ncclSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("NCCL error in ", call, " at ", file, ":", line, ": ",
                                          ncclGetErrorString(r)));
}
#define LOOM_CUDA_STATUS(call) CudaStatus((call), #call, __FILE__, __LINE__)
#define LOOM_NCCL_STATUS(call) NcclStatus((call), #call, __FILE__, __LINE__)
#define LOOM_RETURN_IF_NOT_OK(expr)       \
  do {                                    \
    absl::Status _st = (expr);            \
    if (!_st.ok()) return _st;            \
  } while (0)

absl::StatusOr<ncclDataType_t> NcclType(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    default:
      return absl::InvalidArgumentError(absl::StrCat("NCCL communicator: unsupported dtype ",
                                                     c10::toString(t.scalar_type())));
  }
}

class NcclWork : public Work {
 public:
  NcclWork(cudaEvent_t event, ncclComm_t comm) : event_(event), comm_(comm) {}
  ~NcclWork() override { cudaEventDestroy(event_); }
  absl::Status Wait() override {
    ncclResult_t async = ncclSuccess;
    LOOM_RETURN_IF_NOT_OK(LOOM_NCCL_STATUS(ncclCommGetAsyncError(comm_, &async)));
    LOOM_RETURN_IF_NOT_OK(LOOM_NCCL_STATUS(async));
    return LOOM_CUDA_STATUS(
        cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream().stream(), event_, 0));
  }

 private:
  cudaEvent_t event_;
  ncclComm_t comm_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(int rank, int size, int device, ncclComm_t comm, cudaStream_t stream,
                   bool have_mpi)
      : rank_(rank), size_(size), device_(device), comm_(comm), stream_(stream),
        have_mpi_(have_mpi) {}
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
    if (have_mpi_) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    }
  }
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> AllReduce(const at::Tensor& t, ReduceOp op) override {
    return Launch({t}, [&](cudaStream_t s) {
      return LOOM_NCCL_STATUS(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), *NcclType(t),
                                            op == ReduceOp::kSum ? ncclSum : ncclMax, comm_, s));
    });
  }
  std::unique_ptr<Work> ReduceScatter(const at::Tensor& in, const at::Tensor& out) override {
    if (in.numel() != out.numel() * size_) {
      return CompletedWork(absl::InvalidArgumentError("ReduceScatter: input != world x output"));
    }
    return Launch({in, out}, [&](cudaStream_t s) {
      return LOOM_NCCL_STATUS(ncclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(),
                                                *NcclType(in), ncclSum, comm_, s));
    });
  }
  std::unique_ptr<Work> AllGatherInPlace(const at::Tensor& buf) override {
    const int64_t n = buf.numel() / size_;
    return Launch({buf}, [&](cudaStream_t s) {
      char* base = static_cast<char*>(buf.data_ptr());
      return LOOM_NCCL_STATUS(ncclAllGather(base + rank_ * n * buf.element_size(), base, n,
                                            *NcclType(buf), comm_, s));
    });
  }
  std::unique_ptr<Work> Broadcast(const at::Tensor& t, int root) override {
    return Launch({t}, [&](cudaStream_t s) {
      return LOOM_NCCL_STATUS(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), *NcclType(t),
                                            root, comm_, s));
    });
  }
  absl::Status Barrier() override {
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, device_));
    LOOM_RETURN_IF_NOT_OK(AllReduce(one, ReduceOp::kSum)->Wait());
    return LOOM_CUDA_STATUS(cudaStreamSynchronize(c10::cuda::getCurrentCUDAStream().stream()));
  }
  [[noreturn]] void Abort(const std::string& message, int exit_code) override {
    std::fprintf(stderr, "loom: rank %d: %s; aborting the job\n", rank_, message.c_str());
    std::fflush(stderr);
    ncclCommAbort(comm_);
    if (have_mpi_) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

 private:
  template <typename F>
  std::unique_ptr<Work> Launch(std::initializer_list<at::Tensor> tensors, F issue) {
    for (const at::Tensor& t : tensors) {
      if (!t.is_cuda() || !t.is_contiguous() || !NcclType(t).ok()) {
        return CompletedWork(absl::InvalidArgumentError(
            "NCCL communicator needs contiguous CUDA tensors of a supported dtype"));
      }
    }
    c10::cuda::CUDAGuard guard(device_);
    cudaStream_t caller = c10::cuda::getCurrentCUDAStream().stream();
    cudaEvent_t ready = nullptr, done = nullptr;
    absl::Status s = LOOM_CUDA_STATUS(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    if (s.ok()) s = LOOM_CUDA_STATUS(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    if (s.ok()) s = LOOM_CUDA_STATUS(cudaEventRecord(ready, caller));
    if (s.ok()) s = LOOM_CUDA_STATUS(cudaStreamWaitEvent(stream_, ready, 0));
    if (s.ok()) s = issue(stream_);
    if (s.ok()) s = LOOM_CUDA_STATUS(cudaEventRecord(done, stream_));
    if (ready != nullptr) cudaEventDestroy(ready);
    if (!s.ok()) {
      if (done != nullptr) cudaEventDestroy(done);
      return CompletedWork(s);
    }
    // The caching allocator must not hand these blocks out again before the NCCL stream is done.
    for (const at::Tensor& t : tensors) {
      c10::cuda::CUDACachingAllocator::recordStream(
          t.storage().data_ptr(), c10::cuda::getStreamFromExternal(stream_, device_));
    }
    return std::make_unique<NcclWork>(done, comm_);
  }

  int rank_, size_, device_;
  ncclComm_t comm_;
  cudaStream_t stream_;
  bool have_mpi_;
};

absl::StatusOr<ncclUniqueId> IdFromFile(const WorldInfo& world, const std::string& dir) {
  ncclUniqueId id;
  const std::string path = dir + "/ncclUniqueId.sync";
  if (world.rank == 0) {
    LOOM_RETURN_IF_NOT_OK(LOOM_NCCL_STATUS(ncclGetUniqueId(&id)));
    LOOM_RETURN_IF_NOT_OK(WriteFileAtomically(path, std::string(id.internal, sizeof(id.internal))));
    return id;
  }
  // Other ranks poll for the file (written atomically, so it is complete once it exists).
  for (int i = 0; i < 6000; ++i) {
    std::ifstream in(path, std::ios::binary);
    if (in && in.read(id.internal, sizeof(id.internal))) return id;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "rank ", world.rank, " waited 10 minutes for rank 0's NCCL id in ", path,
      "; is nccl_id_dir on a filesystem every node shares?"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options) {
  const int device = options.device >= 0 ? options.device : world.local_rank;
  int devices = 0;
  LOOM_RETURN_IF_NOT_OK(LOOM_CUDA_STATUS(cudaGetDeviceCount(&devices)));
  if (device >= devices) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", world.rank, " wants CUDA device ", device, " (its local rank) but this node has ",
        devices, "; start one rank per GPU"));
  }
  LOOM_RETURN_IF_NOT_OK(LOOM_CUDA_STATUS(cudaSetDevice(device)));
  ncclUniqueId id;
  bool have_mpi = false;
  if (options.nccl_id_method == "mpi") {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      LOOM_RETURN_IF_NOT_OK(
          LOOM_MPI_STATUS(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided)));
    }
    have_mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (world.rank == 0) LOOM_RETURN_IF_NOT_OK(LOOM_NCCL_STATUS(ncclGetUniqueId(&id)));
    LOOM_RETURN_IF_NOT_OK(
        LOOM_MPI_STATUS(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD)));
  } else if (options.nccl_id_method == "file") {
    if (options.nccl_id_dir.empty()) {
      return absl::InvalidArgumentError("nccl_id_method \"file\" needs nccl_id_dir (shared)");
    }
    auto got = IdFromFile(world, options.nccl_id_dir);
    if (!got.ok()) return got.status();
    id = *got;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown nccl_id_method \"",
                                                   options.nccl_id_method, "\" (mpi, file)"));
  }
  ncclComm_t comm;
  LOOM_RETURN_IF_NOT_OK(
      LOOM_NCCL_STATUS(ncclCommInitRank(&comm, world.world_size, id, world.rank)));
  cudaStream_t stream;
  LOOM_RETURN_IF_NOT_OK(
      LOOM_CUDA_STATUS(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)));
  return std::unique_ptr<Communicator>(
      new NcclCommunicator(world.rank, world.world_size, device, comm, stream, have_mpi));
}

bool HaveNccl() { return true; }

#endif  // LOOM_CUDA

}  // namespace loom::parallel
