// Runs alone and as 2 and 4 real MPI ranks (data_parallel_mpi_test.sh). Every rank trains a small
// float64 model on its slice of each global batch through DataParallel and, next to it, a
// reference copy on the whole global batch with a plain per-parameter AdamW; after every step the
// two must agree to 1e-10 (relative), for all-reduce and ZeRO-1, several bucket sizes, gradient
// accumulation, overlap on and off, and a parameter group dropped mid-training.
#include "parallel/data_parallel.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <memory>

#include "gtest/gtest.h"
#include "parallel/testing/mpi_test_environment.h"

namespace loom::parallel {
namespace {

// The process's communicator (testing/mpi_test_environment.h).
Communicator* Comm() { return MpiTestEnvironment::comm(); }

// A 3-layer MLP and a "guide" matrix used only while `guided` (like self-guided training).
struct Net {
  std::vector<at::Tensor> params;  // w1 b1 w2 b2 w3 b3
  at::Tensor guide;
  bool guided = true;
  explicit Net(uint64_t seed, at::ScalarType dtype = at::kDouble) {
    at::manual_seed(seed);
    for (auto [o, i] : {std::pair<int64_t, int64_t>{16, 8}, {16, 16}, {4, 16}}) {
      params.push_back((at::randn({o, i}, dtype) * 0.3).requires_grad_(true));
      params.push_back((at::randn({o}, dtype) * 0.1).requires_grad_(true));
    }
    guide = (at::randn({16, 16}, dtype) * 0.1).requires_grad_(true);
  }
  at::Tensor Loss(const at::Tensor& x_in, const at::Tensor& y_in) const {
    const at::Tensor x = x_in.to(params[0].scalar_type()), y = y_in.to(params[0].scalar_type());
    at::Tensor h = at::tanh(at::linear(x, params[0], params[1]));
    at::Tensor h2 = at::linear(h, params[2], params[3]);
    if (guided) h2 = h2 + at::linear(h, guide);
    return (at::linear(at::tanh(h2), params[4], params[5]) - y).pow(2).mean();
  }
  std::vector<at::Tensor> All() const {
    auto v = params;
    v.push_back(guide);
    return v;
  }
};

struct Case {
  int zero_stage;
  int64_t bucket_bytes;
  bool overlap;
  int micro;  // micro-batch size per rank
};

void RunCase(const Case& c) {
  const int W = Comm()->world_size(), R = Comm()->rank();
  const int64_t global = 8, steps = 6;
  ASSERT_EQ(global % (W * c.micro), 0);
  const int accum = static_cast<int>(global / (W * c.micro));
  at::manual_seed(99);
  at::Tensor xs = at::randn({steps, global, 8}, at::kDouble);
  at::Tensor ys = at::randn({steps, global, 4}, at::kDouble);

  Net ref(7), net(7 + R);  // ranks start different: BroadcastParameters must fix that
  // The output layer is a group with its own settings (half the learning rate, no weight decay),
  // as S4's SSM parameters are.
  std::vector<torch::optim::OptimizerParamGroup> ref_groups;
  ref_groups.emplace_back(
      std::vector<at::Tensor>{ref.params[0], ref.params[1], ref.params[2], ref.params[3],
                              ref.guide},
      std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(0.01).weight_decay(0.1)));
  ref_groups.emplace_back(std::vector<at::Tensor>{ref.params[4], ref.params[5]},
                          std::make_unique<torch::optim::AdamWOptions>(
                              torch::optim::AdamWOptions(0.01).weight_decay(0.0)));
  torch::optim::AdamW ref_opt(std::move(ref_groups), torch::optim::AdamWOptions(0.01));
  DataParallel::Options opt;
  opt.zero_stage = c.zero_stage;
  opt.bucket_bytes = c.bucket_bytes;
  opt.overlap = c.overlap;
  opt.weight_decay = 0.1;
  ParamGroupSpec head{"head", {net.params[4], net.params[5]}};
  head.lr_scale = 0.5;
  head.weight_decay = 0.0;
  auto dp = DataParallel::Create(
      Comm(),
      {{"model", {net.params[0], net.params[1], net.params[2], net.params[3]}},
       {"guide", {net.guide}},
       head},
      opt);
  ASSERT_TRUE(dp.ok()) << dp.status();
  ASSERT_TRUE((*dp)->BroadcastParameters().ok());
  const double clip = 0.5;
  for (int64_t step = 0; step < steps; ++step) {
    const double lr = 0.01 * (1.0 - 0.1 * step);
    if (step == 3) {  // the guided phase ends: both drop the guide
      ref.guided = net.guided = false;
      ref_opt.state().erase(ref.guide.unsafeGetTensorImpl());
      ref.guide.mutable_grad() = at::Tensor();
      ref.guide.requires_grad_(false);
      ASSERT_TRUE((*dp)->DropGroup("guide").ok());
    }
    // Reference: the whole global batch at once, one process.
    ref_opt.zero_grad();
    ref.Loss(xs[step], ys[step]).backward();
    {
      at::NoGradGuard ng;
      double sq = 0;
      for (auto& p : ref.All()) {
        if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
      }
      const double norm = std::sqrt(sq);
      if (norm > clip) {
        for (auto& p : ref.All()) {
          if (p.grad().defined()) p.grad().mul_(clip / (norm + 1e-6));
        }
      }
    }
    static_cast<torch::optim::AdamWOptions&>(ref_opt.param_groups()[0].options()).lr(lr);
    static_cast<torch::optim::AdamWOptions&>(ref_opt.param_groups()[1].options()).lr(0.5 * lr);
    ref_opt.step();
    // Data-parallel: this rank's rows, in micro-batches.
    (*dp)->ZeroGrad();
    for (int m = 0; m < accum; ++m) {
      (*dp)->SetLastMicroBatch(m == accum - 1);
      const int64_t first = R * global / W + m * c.micro;
      (net.Loss(xs[step].narrow(0, first, c.micro), ys[step].narrow(0, first, c.micro)) /
       static_cast<double>(accum))
          .backward();
    }
    ASSERT_TRUE((*dp)->FinishGradientSync().ok());
    auto norm = (*dp)->ClipGradNorm(clip);
    ASSERT_TRUE(norm.ok());
    ASSERT_TRUE((*dp)->Step(lr).ok());
    for (size_t i = 0; i < net.params.size(); ++i) {
      const double err = (net.params[i] - ref.params[i]).abs().max().item<double>() /
                         ref.params[i].abs().max().item<double>();
      ASSERT_LT(err, 1e-10) << "step " << step << " param " << i << " zero " << c.zero_stage
                            << " bucket " << c.bucket_bytes << " micro " << c.micro;
    }
  }
  if (c.overlap && W > 1) {
    EXPECT_GT((*dp)->buckets_started_in_backward(), 0) << "no bucket overlapped the backward";
  }
  if (!c.overlap) {
    EXPECT_EQ((*dp)->buckets_started_in_backward(), 0);
  }
}

TEST(DataParallelTest, AllReduceMatchesOneProcessOnTheGlobalBatch) {
  RunCase({0, 1 << 20, true, 2});
  RunCase({0, 256, true, 1});   // many buckets, accumulation
  RunCase({0, 256, false, 2});  // no overlap
}

TEST(DataParallelTest, ZeroOneMatchesOneProcessOnTheGlobalBatch) {
  RunCase({1, 1 << 20, true, 2});
  RunCase({1, 300, true, 1});
}

TEST(DataParallelTest, ZeroOneHoldsOnlyItsShardOfOptimizerState) {
  Net a(1), b(1);
  auto full = DataParallel::Create(Comm(), {{"m", a.params}}, {});
  DataParallel::Options z;
  z.zero_stage = 1;
  auto sharded = DataParallel::Create(Comm(), {{"m", b.params}}, z);
  ASSERT_TRUE(full.ok() && sharded.ok());
  const int64_t f = (*full)->sizes().optimizer_elements, s = (*sharded)->sizes().optimizer_elements;
  EXPECT_EQ(s * Comm()->world_size(), f);  // same padded layout, 1/N of it
  EXPECT_EQ((*sharded)->sizes().param_elements % Comm()->world_size(), 0);
}

// Mixed precision: bf16 compute copies of fp32 masters. N ranks against one process that runs the
// same micro-batches one after another: the bf16 forward/backward of each micro-batch is the
// same computation, only the float32 accumulation order differs, so the masters agree to float32
// rounding amplified by a few AdamW steps.
TEST(DataParallelTest, MixedPrecisionKeepsFloat32MastersAndMatchesOneProcess) {
  const int W = Comm()->world_size(), R = Comm()->rank();
  const int64_t global = 8, micro = 8 / W, steps = 4;
  at::manual_seed(5);
  at::Tensor xs = at::randn({steps, global, 8});
  at::Tensor ys = at::randn({steps, global, 4});
  DataParallel::Options opt;
  opt.compute_dtype = at::kBFloat16;
  opt.zero_stage = W > 1 ? 1 : 0;
  opt.bucket_bytes = 512;
  Net net(3, at::kFloat), ref(3, at::kFloat);
  auto dp = DataParallel::Create(Comm(), {{"m", net.params}}, opt);
  auto local = CreateCommunicator(WorldInfo{});
  ASSERT_TRUE(local.ok());
  auto rdp = DataParallel::Create(local->get(), {{"m", ref.params}}, opt);
  ASSERT_TRUE(dp.ok() && rdp.ok()) << dp.status() << rdp.status();
  net.guided = ref.guided = false;
  EXPECT_EQ(net.params[0].scalar_type(), at::kBFloat16);
  for (int64_t step = 0; step < steps; ++step) {
    (*dp)->ZeroGrad();
    (*dp)->SetLastMicroBatch(true);
    net.Loss(xs[step].narrow(0, R * micro, micro), ys[step].narrow(0, R * micro, micro))
        .backward();
    ASSERT_TRUE((*dp)->FinishGradientSync().ok());
    ASSERT_TRUE((*dp)->ClipGradNorm(1.0).ok());
    ASSERT_TRUE((*dp)->Step(0.01).ok());
    (*rdp)->ZeroGrad();
    for (int m = 0; m < W; ++m) {
      (*rdp)->SetLastMicroBatch(m == W - 1);
      (ref.Loss(xs[step].narrow(0, m * micro, micro), ys[step].narrow(0, m * micro, micro)) / W)
          .backward();
    }
    ASSERT_TRUE((*rdp)->FinishGradientSync().ok());
    ASSERT_TRUE((*rdp)->ClipGradNorm(1.0).ok());
    ASSERT_TRUE((*rdp)->Step(0.01).ok());
    for (size_t i = 0; i < net.params.size(); ++i) {
      ASSERT_EQ(net.params[i].scalar_type(), at::kBFloat16);
      EXPECT_FALSE(net.params[i].grad().defined());  // folded into float32 and released
      const double err = (net.params[i].to(at::kFloat) - ref.params[i].to(at::kFloat))
                             .abs().max().item<double>();
      // bf16 has 8 bits of mantissa: compute copies may differ by one bf16 ulp where the float32
      // masters straddle a rounding boundary.
      EXPECT_LE(err, 1.0 / 128 * ref.params[i].abs().max().item<double>()) << "step " << step;
    }
  }
  EXPECT_EQ((*dp)->sizes().param_elements % W, 0);
}

TEST(DataParallelTest, RejectsMixedDtypesAndBadStages) {
  std::vector<at::Tensor> mixed = {at::zeros({2}, at::kDouble).requires_grad_(true),
                                   at::zeros({2}, at::kFloat).requires_grad_(true)};
  EXPECT_FALSE(DataParallel::Create(Comm(), {{"m", mixed}}, {}).ok());
  DataParallel::Options bad;
  bad.zero_stage = 2;
  EXPECT_FALSE(DataParallel::Create(Comm(), {{"m", {mixed[0]}}}, bad).ok());
}

}  // namespace
}  // namespace loom::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new loom::parallel::MpiTestEnvironment(1024));
  return RUN_ALL_TESTS();
}
