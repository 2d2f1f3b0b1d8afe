#include "kernels/stride_shuffle.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <string>

#include "gtest/gtest.h"

namespace loom::kernels {
namespace {

at::Tensor NaiveDeinterleave(const at::Tensor& y, int64_t b) {
  return y.view({y.size(0), y.size(1) / b, b}).permute({2, 0, 1}).contiguous();
}

// Every block count (the unrolled 2, 4, 8 and the generic loop), both dtypes, bf16's fallback,
// and a row count that crosses the 64-row sum chunks: the permutations are exact.
TEST(StrideShuffleTest, MatchesThePermuteCopies) {
  at::manual_seed(1);
  for (auto dtype : {at::kFloat, at::kDouble, at::kBFloat16}) {
    for (int64_t b : {1, 2, 3, 4, 8}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + " B=" + std::to_string(b));
      const int64_t n = 150, q = 24;
      at::Tensor y = at::randn({n, q * b}).to(dtype);
      at::Tensor z = DeinterleaveColumns(y, b);
      EXPECT_TRUE(at::equal(z, NaiveDeinterleave(y, b)));
      EXPECT_TRUE(at::equal(InterleaveColumns(z, at::Tensor()), y));
      at::Tensor bias = at::randn({q * b}).to(dtype);
      EXPECT_TRUE(at::equal(InterleaveColumns(z, bias), y + bias));
      auto [z2, sums] = DeinterleaveColumnsAndSum(y, b);
      EXPECT_TRUE(at::equal(z2, z));
      const double tol = dtype == at::kDouble ? 1e-12 : (dtype == at::kFloat ? 1e-4 : 0.5);
      EXPECT_LT((sums.to(at::kDouble) - y.to(at::kDouble).sum(0)).abs().max().item<double>(), tol);
    }
  }
}

TEST(StrideShuffleTest, ColumnSumsDoNotDependOnTheThreadCount) {
  at::manual_seed(2);
  at::Tensor y = at::randn({1000, 64});
  auto [z, sums] = DeinterleaveColumnsAndSum(y, 4);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto [z1, sums1] = DeinterleaveColumnsAndSum(y, 4);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(sums, sums1));
}

TEST(StrideShuffleTest, NonContiguousInputsAreRead) {
  at::Tensor y = at::randn({32, 16}).t();  // (16, 32), column-major
  EXPECT_TRUE(at::equal(DeinterleaveColumns(y, 4), NaiveDeinterleave(y.contiguous(), 4)));
  at::Tensor z = at::randn({4, 8, 5}).transpose(1, 2).contiguous().transpose(1, 2);
  EXPECT_TRUE(at::equal(InterleaveColumns(z, at::Tensor()), z.permute({1, 2, 0}).reshape({8, 20})));
}

TEST(StrideShuffleTest, RejectsBadShapes) {
  EXPECT_THROW(DeinterleaveColumns(at::randn({4, 10}), 4), c10::Error);
  EXPECT_THROW(DeinterleaveColumns(at::randn({4, 2, 4}), 2), c10::Error);
  EXPECT_THROW(DeinterleaveColumnsAndSum(at::randn({4, 10}), 3), c10::Error);
  EXPECT_THROW(InterleaveColumns(at::randn({4, 8}), at::Tensor()), c10::Error);
  EXPECT_THROW(InterleaveColumns(at::randn({2, 3, 4}), at::randn({7})), c10::Error);
}

}  // namespace
}  // namespace loom::kernels
