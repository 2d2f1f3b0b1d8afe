// Runs under mpirun (parallel/communicator_mpi_test.sh starts 1, 2 and 3 ranks) and alone.
// Every rank runs every test; expected values are computed from the rank numbers.
#include "parallel/communicator.h"

#include <ATen/ATen.h>

#include <memory>

#include "gtest/gtest.h"
#include "parallel/testing/mpi_test_environment.h"

namespace loom::parallel {
namespace {

// The process's communicator (testing/mpi_test_environment.h).
Communicator* Comm() { return MpiTestEnvironment::comm(); }

int R() { return Comm()->rank(); }
int W() { return Comm()->world_size(); }

TEST(CommunicatorTest, AllReduceSumsOverRanksInEveryDtypeAndAcrossChunks) {
  for (auto dtype : {at::kDouble, at::kFloat, at::kLong}) {
    // 1000 elements = several 256-byte chunks; element i of rank r holds r * 1000 + i.
    at::Tensor t = (at::arange(1000, at::kDouble) + R() * 1000.0).to(dtype);
    ASSERT_TRUE(Comm()->AllReduce(t, ReduceOp::kSum)->Wait().ok());
    // sum_r (r * 1000 + i) = 1000 * W(W-1)/2 + W * i
    at::Tensor expect = (at::arange(1000, at::kDouble) * W() + 1000.0 * W() * (W() - 1) / 2);
    EXPECT_TRUE(at::equal(t, expect.to(dtype))) << dtype;
  }
}

TEST(CommunicatorTest, AllReduceMax) {
  at::Tensor t = at::full({5}, static_cast<double>(R()), at::kDouble);
  ASSERT_TRUE(Comm()->AllReduce(t, ReduceOp::kMax)->Wait().ok());
  EXPECT_EQ(t[4].item<double>(), W() - 1);
}

TEST(CommunicatorTest, ReduceScatterGivesEachRankItsSummedChunk) {
  const int64_t n = 100;  // per rank, several chunks
  at::Tensor in = at::arange(W() * n, at::kDouble) * (R() + 1);
  at::Tensor out = at::empty({n}, at::kDouble);
  ASSERT_TRUE(Comm()->ReduceScatter(in, out)->Wait().ok());
  const double ranks_sum = W() * (W() + 1) / 2.0;
  at::Tensor expect = (at::arange(n, at::kDouble) + R() * n) * ranks_sum;
  EXPECT_TRUE(at::equal(out, expect));
}

TEST(CommunicatorTest, AllGatherInPlaceAndBroadcast) {
  const int64_t n = 7;
  at::Tensor buf = at::full({W() * n}, -1.0, at::kDouble);
  buf.narrow(0, R() * n, n).fill_(R());
  ASSERT_TRUE(Comm()->AllGatherInPlace(buf)->Wait().ok());
  for (int r = 0; r < W(); ++r) EXPECT_EQ(buf[r * n + n - 1].item<double>(), r);
  const int root = W() - 1;
  at::Tensor b = at::full({300}, static_cast<double>(R() * 10), at::kFloat);
  ASSERT_TRUE(Comm()->Broadcast(b, root)->Wait().ok());
  EXPECT_EQ(b[299].item<float>(), root * 10.0f);
}

TEST(CommunicatorTest, OutstandingCollectivesCompleteInSubmissionOrder) {
  std::vector<at::Tensor> ts;
  std::vector<std::unique_ptr<Work>> works;
  for (int i = 0; i < 8; ++i) {
    ts.push_back(at::full({64 * (i + 1)}, static_cast<double>(i + R()), at::kDouble));
    works.push_back(Comm()->AllReduce(ts.back(), ReduceOp::kSum));
  }
  for (int i = 7; i >= 0; --i) ASSERT_TRUE(works[i]->Wait().ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(ts[i][0].item<double>(), W() * i + W() * (W() - 1) / 2.0);
  }
  EXPECT_TRUE(works[0]->Wait().ok());  // waiting twice is fine
  EXPECT_TRUE(Comm()->Barrier().ok());
}

TEST(CommunicatorTest, ScalarHelper) {
  auto s = AllReduceScalar(*Comm(), R() + 0.5);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s, W() * (W() - 1) / 2.0 + 0.5 * W());
}

TEST(CommunicatorTest, RanksOnThisHostCountsTheJobsRanksHere) {
  // The test's ranks all run on this machine (mpirun -np N on one host); alone, "local" has 1.
  EXPECT_EQ(Comm()->RanksOnThisHost(), W());
}

TEST(CommunicatorTest, BadTensorsAreRejectedWithoutCommunicating) {
  at::Tensor strided = at::zeros({4, 4}, at::kDouble).t();
  absl::Status s = Comm()->AllReduce(strided, ReduceOp::kSum)->Wait();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("contiguous"), std::string::npos) << s;
  s = Comm()->ReduceScatter(at::zeros({5}, at::kDouble), at::zeros({5}, at::kDouble))->Wait();
  EXPECT_EQ(s.ok(), W() == 1) << s;
  if (Comm()->backend() == "mpi") {  // MPI has no bf16 sum
    s = Comm()->AllReduce(at::zeros({4}, at::kBFloat16), ReduceOp::kSum)->Wait();
    EXPECT_NE(s.message().find("NCCL"), std::string::npos) << s;
  }
}

TEST(CommunicatorTest, UnknownBackendAndLocalOnManyRanksAreErrors) {
  WorldInfo w;
  w.world_size = 2;
  EXPECT_FALSE(CreateCommunicator(w, CommunicatorOptions().set_backend("local")).ok());
  EXPECT_FALSE(CreateCommunicator(w, CommunicatorOptions().set_backend("gloo")).ok());
}

}  // namespace
}  // namespace loom::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new loom::parallel::MpiTestEnvironment(256));
  return RUN_ALL_TESTS();
}
