#include "core/lr_schedule.h"

#include <cstdlib>
#include <string>

#include "core/json.h"
#include "core/safetensors.h"
#include "core/testing/test_paths.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

std::string GoldenPath(const std::string& name) {
  return testing::GoldenPath("structured_ffn/" + name);
}

TEST(LrScheduleTest, ReproducesStructuredFfnGoldenVector) {
  auto file = ReadSafetensors(GoldenPath("schedule_lr.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto config = Json::Parse(file->metadata.at("config"));
  ASSERT_TRUE(config.ok()) << config.status();
  const double base_lr = (*config)["base_lr"].as_double();
  const int64_t total = (*config)["T_max"].as_int64();
  const double warmup_fraction = (*config)["warmup_iter_fraction"].as_double();
  const double eta_min = (*config)["eta_min"].as_double();
  LrSchedule schedule(LrSchedule::Kind::kWarmupCosine, base_lr, total, warmup_fraction,
                      eta_min / base_lr);
  EXPECT_EQ(schedule.warmup_steps(), (*config)["warmup_iter"].as_int64());

  auto steps = TensorAsDoubles(*file->Find("input.step"));
  auto lrs = TensorAsDoubles(*file->Find("output.lr"));
  ASSERT_TRUE(steps.ok() && lrs.ok());
  ASSERT_EQ(steps->size(), lrs->size());
  ASSERT_GT(steps->size(), 10u);
  for (size_t i = 0; i < steps->size(); ++i) {
    const double got = schedule.At(static_cast<int64_t>((*steps)[i]));
    EXPECT_NEAR(got, (*lrs)[i], 1e-15 * base_lr * 10) << "step " << (*steps)[i];
  }
}

TEST(LrScheduleTest, ConstantIgnoresStep) {
  LrSchedule s(LrSchedule::Kind::kConstant, 1e-3, 100, 0.1, 0.1);
  EXPECT_EQ(s.At(0), 1e-3);
  EXPECT_EQ(s.At(99), 1e-3);
}

TEST(LrScheduleTest, NoWarmupStartsAtPeakAndEndsAtMin) {
  LrSchedule s(LrSchedule::Kind::kWarmupCosine, 1.0, 10, 0.0, 0.25);
  EXPECT_DOUBLE_EQ(s.At(0), 1.0);
  EXPECT_DOUBLE_EQ(s.At(10), 0.25);
  EXPECT_DOUBLE_EQ(s.At(1000), 0.25);  // clamped after the end
}

}  // namespace
}  // namespace loom
