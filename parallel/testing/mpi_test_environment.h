// For gtest binaries that run alone and under mpirun: creates this process's Communicator once
// ("local" when started alone, "mpi" under a launcher) and tears it down (MPI_Finalize) at exit.
//
//   int main(int argc, char** argv) {
//     ::testing::InitGoogleTest(&argc, argv);
//     ::testing::AddGlobalTestEnvironment(new MpiTestEnvironment(/*chunk_bytes=*/256));
//     return RUN_ALL_TESTS();
//   }
//   ... MpiTestEnvironment::comm()->AllReduce(...)
#ifndef LOOM_PARALLEL_TESTING_MPI_TEST_ENVIRONMENT_H_
#define LOOM_PARALLEL_TESTING_MPI_TEST_ENVIRONMENT_H_

#include <memory>

#include "gtest/gtest.h"
#include "parallel/communicator.h"

namespace loom::parallel {

class MpiTestEnvironment : public ::testing::Environment {
 public:
  // Small chunks make small test tensors take the chunked paths.
  explicit MpiTestEnvironment(int64_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}
  void SetUp() override {
    absl::StatusOr<WorldInfo> world = DiscoverWorld();
    ASSERT_TRUE(world.ok()) << world.status();
    CommunicatorOptions options;
    options.set_backend(world->source == "none" ? "local" : "mpi").set_chunk_bytes(chunk_bytes_);
    auto comm = CreateCommunicator(*world, options);
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = std::move(*comm);
    Current() = comm_.get();
  }
  void TearDown() override {
    Current() = nullptr;
    comm_.reset();
  }
  static Communicator* comm() { return Current(); }

 private:
  static Communicator*& Current() {
    static Communicator* current = nullptr;
    return current;
  }
  int64_t chunk_bytes_;
  std::unique_ptr<Communicator> comm_;
};

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_TESTING_MPI_TEST_ENVIRONMENT_H_
