#include "core/config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

using ::testing::HasSubstr;

RunConfig Valid() {
  RunConfig c;
  c.mutable_data()->set_train_shards("/tmp/train_*.bin");
  EXPECT_TRUE(ResolveDefaults(&c).ok());
  return c;
}

TEST(ConfigTest, DefaultsWithShardsAreValidAndResolved) {
  RunConfig c = Valid();
  EXPECT_TRUE(ValidateRunConfig(c).ok()) << ValidateRunConfig(c);
  EXPECT_EQ(c.model().vocab_size(), 50257);
  EXPECT_EQ(c.model().ffn().hidden_dim(), 4 * c.model().d_model());
  EXPECT_EQ(c.model().mixer().num_kv_heads(), c.model().mixer().num_heads());
}

TEST(ConfigTest, ParsesTextProto) {
  auto c = ParseRunConfig(R"pb(
    name: "t"
    model { d_model: 64 num_layers: 2 mixer { num_heads: 2 } }
    train { max_steps: 7 seq_len: 32 global_batch_size: 4 micro_batch_size: 2 }
    optimizer { lr: 1e-3 warmup_fraction: 0.2 min_lr_ratio: 0.1 }
    data { train_shards: "a/*.bin" val_shards: "b/*.bin" tokenizer: "byte" }
  )pb");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model().d_model(), 64);
  EXPECT_EQ(c->train().max_steps(), 7);
  EXPECT_EQ(c->data().tokenizer(), "byte");
}

TEST(ConfigTest, UnknownFieldIsNamedWithLocation) {
  auto c = ParseRunConfig("train {\n  max_stepz: 3\n}\n", "my.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("my.textproto:2"));
  EXPECT_THAT(c.status().message(), HasSubstr("max_stepz"));
}

TEST(ConfigTest, WrongTypeIsRejected) {
  auto c = ParseRunConfig("train { max_steps: \"many\" }", "x.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("max_steps"));
  auto d = ParseRunConfig("optimizer { lr: abc }", "y.textproto");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("y.textproto:1"));
}

TEST(ConfigTest, PathfinderDifficultyMustBeAReleaseDirectory) {
  RunConfig c;
  c.mutable_task()->set_type("lra");
  c.mutable_task()->mutable_lra()->set_name("pathfinder32");
  c.mutable_task()->mutable_lra()->set_data_dir("/data/pathfinder32");
  c.mutable_model()->set_head("classify");
  ASSERT_TRUE(ResolveDefaults(&c).ok());
  EXPECT_EQ(c.task().lra().pathfinder_difficulty(), "curv_contour_length_14");
  for (const char* ok : {"curv_baseline", "curv_contour_length_9", "curv_contour_length_14"}) {
    c.mutable_task()->mutable_lra()->set_pathfinder_difficulty(ok);
    EXPECT_TRUE(ValidateRunConfig(c).ok()) << ok << ": " << ValidateRunConfig(c);
  }
  c.mutable_task()->mutable_lra()->set_pathfinder_difficulty("hard");
  absl::Status s = ValidateRunConfig(c);
  EXPECT_THAT(s.message(), HasSubstr("task.lra.pathfinder_difficulty"));
  EXPECT_THAT(s.message(), HasSubstr("\"hard\""));
}

TEST(ConfigTest, OverridesSetNestedFields) {
  RunConfig c = Valid();
  ASSERT_TRUE(ApplyOverride("train.max_steps=42", &c).ok());
  ASSERT_TRUE(ApplyOverride("optimizer.lr = 3e-4", &c).ok());
  ASSERT_TRUE(ApplyOverride("data.val_shards=some/dir/val_*.bin", &c).ok());
  ASSERT_TRUE(ApplyOverride("model.mixer.num_heads=8", &c).ok());
  ASSERT_TRUE(ApplyOverride("model.tie_embeddings=true", &c).ok());
  EXPECT_EQ(c.train().max_steps(), 42);
  EXPECT_DOUBLE_EQ(c.optimizer().lr(), 3e-4);
  EXPECT_EQ(c.data().val_shards(), "some/dir/val_*.bin");
  EXPECT_EQ(c.model().mixer().num_heads(), 8);
}

TEST(ConfigTest, BadOverridesNameTheField) {
  RunConfig c = Valid();
  auto s = ApplyOverride("train.max_stepz=1", &c);
  EXPECT_THAT(s.message(), HasSubstr("train.max_stepz"));
  EXPECT_THAT(s.message(), HasSubstr("max_steps"));  // lists what exists
  s = ApplyOverride("train.max_steps=lots", &c);
  EXPECT_THAT(s.message(), HasSubstr("train.max_steps"));
  s = ApplyOverride("train=3", &c);
  EXPECT_THAT(s.message(), HasSubstr("is a message"));
  s = ApplyOverride("no_equals_sign", &c);
  EXPECT_FALSE(s.ok());
  s = ApplyOverride("train.seq_len=99999999999999", &c);
  EXPECT_FALSE(s.ok());
}

struct BadValue {
  const char* override_text;
  const char* field;
};

class ValidationTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(ValidationTest, OutOfRangeValueIsRejectedNamingTheField) {
  RunConfig c = Valid();
  ASSERT_TRUE(ApplyOverride(GetParam().override_text, &c).ok());
  absl::Status s = ValidateRunConfig(c);
  ASSERT_FALSE(s.ok()) << GetParam().override_text;
  EXPECT_THAT(s.message(), HasSubstr(GetParam().field));
}

INSTANTIATE_TEST_SUITE_P(
    BadValues, ValidationTest,
    ::testing::Values(BadValue{"optimizer.lr=-1", "optimizer.lr"},
                      BadValue{"optimizer.lr=0", "optimizer.lr"},
                      BadValue{"optimizer.beta2=1.0", "optimizer.beta2"},
                      BadValue{"optimizer.warmup_fraction=1.5", "optimizer.warmup_fraction"},
                      BadValue{"optimizer.min_lr_ratio=2", "optimizer.min_lr_ratio"},
                      BadValue{"optimizer.grad_clip=-0.5", "optimizer.grad_clip"},
                      BadValue{"optimizer.lr_schedule=linear-ish", "optimizer.lr_schedule"},
                      BadValue{"train.max_steps=0", "train.max_steps"},
                      BadValue{"train.seq_len=0", "train.seq_len"},
                      BadValue{"train.micro_batch_size=3", "train.global_batch_size"},
                      BadValue{"train.log_every=0", "train.log_every"},
                      BadValue{"model.d_model=250", "model.mixer.num_heads"},
                      BadValue{"model.mixer.type=mamba", "model.mixer.type"},
                      BadValue{"model.ffn.type=monarch", "model.ffn.type"},
                      BadValue{"model.ffn.type=lowrank", "model.ffn.rank"},
                      BadValue{"model.ffn.type=blockshuffle", "model.ffn.nblocks"},
                      BadValue{"model.ffn.rank=16", "model.ffn.rank"},
                      BadValue{"model.ffn.activation=relu", "model.ffn.activation"},
                      BadValue{"model.mixer.num_kv_heads=3", "model.mixer.num_kv_heads"},
                      BadValue{"model.mixer.attn_dim=100", "model.mixer.num_heads"},
                      BadValue{"schedule.self_guided.enabled=true", "schedule.self_guided.enabled"},
                      BadValue{"schedule.self_guided.mode=sometimes", "schedule.self_guided.mode"},
                      BadValue{"schedule.self_guided.max_step_ratio=0", "schedule.self_guided.max_step_ratio"},
                      BadValue{"model.dtype=float16", "model.dtype"},
                      BadValue{"model.vocab_size=70000", "model.vocab_size"},
                      BadValue{"data.train_shards=", "data.train_shards"},
                      BadValue{"data.tokenizer=sentencepiece", "data.tokenizer"},
                      BadValue{"checkpoint.every_steps=-1", "checkpoint.every_steps"},
                      BadValue{"checkpoint.keep_last=0", "checkpoint.keep_last"},
                      BadValue{"optimizer.zero_stage=2", "optimizer.zero_stage"},
                      BadValue{"optimizer.nonfinite_policy=ignore", "optimizer.nonfinite_policy"},
                      BadValue{"parallel.backend=gloo", "parallel.backend"},
                      BadValue{"parallel.overlap=maybe", "parallel.overlap"},
                      BadValue{"parallel.bucket_mb=0", "parallel.bucket_mb"},
                      BadValue{"parallel.collective_timeout_s=-1", "parallel.collective_timeout_s"},
                      BadValue{"parallel.nccl_id_method=file", "parallel.nccl_id_dir"},
                      BadValue{"train.eval_batch_size=-2", "train.eval_batch_size"},
                      BadValue{"logging.progress=fancy", "logging.progress"}));

absl::Status ValidateWith(std::vector<std::string> overrides) {
  RunConfig c = Valid();
  for (const auto& o : overrides) {
    absl::Status s = ApplyOverride(o, &c);
    if (!s.ok()) return s;
  }
  return ValidateRunConfig(c);
}

TEST(ConfigTest, ConvolutionalMixerSettingsAreValidated) {
  EXPECT_TRUE(ValidateWith({"model.mixer.type=s4"}).ok());
  EXPECT_TRUE(ValidateWith({"model.mixer.type=sgconv"}).ok());
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"model.mixer.type=s4", "model.mixer.s4.d_state=7"}, "model.mixer.s4.d_state"},
      {{"model.mixer.type=s4", "model.mixer.s4.n_ssm=3"}, "model.mixer.s4.n_ssm"},
      {{"model.mixer.type=s4", "model.mixer.s4.init=legt"}, "model.mixer.s4.rank"},
      {{"model.mixer.type=s4", "model.mixer.s4.init=chebyshev"}, "model.mixer.s4.init"},
      {{"model.mixer.type=s4d", "model.mixer.s4.init=fout"}, "model.mixer.s4.init"},
      {{"model.mixer.type=s4d", "model.mixer.s4.disc=euler"}, "model.mixer.s4.disc"},
      {{"model.mixer.type=s4", "model.mixer.s4.dt_min=0.5"}, "model.mixer.s4.dt_min"},
      {{"model.mixer.type=s4", "model.mixer.s4.dt_transform=tanh"}, "model.mixer.s4.dt_transform"},
      {{"model.mixer.type=s4", "model.mixer.s4.final_act=relu"}, "model.mixer.s4.final_act"},
      {{"model.mixer.type=s4", "model.dtype=bfloat16"}, "model.dtype"},
      {{"model.mixer.type=sgconv", "model.mixer.sgconv.mode=sum_randn"}, "model.mixer.sgconv.mode"},
      {{"model.mixer.type=sgconv", "model.mixer.sgconv.kernel_dim=0"}, "model.mixer.sgconv.kernel_dim"},
      {{"model.mixer.type=sgconv", "model.mixer.sgconv.decay_min=0"}, "model.mixer.sgconv.decay_min"},
      {{"model.mixer.type=sgconv", "model.mixer.sgconv.postact=tanh"}, "model.mixer.sgconv.postact"}};
  for (const auto& [overrides, field] : bad) {
    absl::Status s = ValidateWith(overrides);
    EXPECT_FALSE(s.ok()) << overrides.back();
    EXPECT_THAT(s.message(), HasSubstr(field)) << overrides.back();
  }
}

TEST(ConfigTest, ConvolutionalMixersTuneToTheTrainingLength) {
  RunConfig c = Valid();
  ASSERT_TRUE(ApplyOverride("model.mixer.type=s4", &c).ok());
  ASSERT_TRUE(ResolveDefaults(&c).ok());
  EXPECT_EQ(c.model().mixer().s4().l_max(), c.train().seq_len());
  EXPECT_EQ(c.model().mixer().s4().init(), "legs");
  RunConfig d = Valid();
  ASSERT_TRUE(ApplyOverride("model.mixer.type=s4d", &d).ok());
  ASSERT_TRUE(ResolveDefaults(&d).ok());
  EXPECT_EQ(d.model().mixer().s4().init(), "diag-inv");
}

TEST(ConfigTest, StructuredShapesMustDivide) {
  // d_model 256, hidden 1024 by default.
  EXPECT_TRUE(ValidateWith({"model.ffn.type=lowrank", "model.ffn.rank=64"}).ok());
  EXPECT_THAT(ValidateWith({"model.ffn.type=lowrank", "model.ffn.rank=300"}).message(),
              HasSubstr("model.ffn.rank"));
  EXPECT_TRUE(ValidateWith({"model.ffn.type=blockdense", "model.ffn.rank=128",
                            "model.ffn.nblocks=4"}).ok());
  EXPECT_THAT(ValidateWith({"model.ffn.type=blockdense", "model.ffn.rank=130",
                            "model.ffn.nblocks=4"}).message(),
              HasSubstr("multiple of nblocks"));
  EXPECT_THAT(ValidateWith({"model.ffn.type=blockdense", "model.ffn.rank=126",
                            "model.ffn.nblocks=3"}).message(),
              HasSubstr("must divide d_model 256"));
  EXPECT_TRUE(ValidateWith({"model.ffn.type=blockshuffle", "model.ffn.nblocks=4"}).ok());
  EXPECT_THAT(ValidateWith({"model.ffn.type=blockshuffle", "model.ffn.nblocks=3"}).message(),
              HasSubstr("model.ffn.nblocks"));
  EXPECT_THAT(ValidateWith({"model.ffn.type=blockshuffle", "model.ffn.nblocks=4",
                            "model.ffn.rank=8"}).message(),
              HasSubstr("only used by lowrank and blockdense"));
  EXPECT_TRUE(ValidateWith({"model.ffn.type=lowrank", "model.ffn.rank=64",
                            "schedule.self_guided.enabled=true"}).ok());
  EXPECT_TRUE(ValidateWith({"model.mixer.num_kv_heads=2", "model.mixer.attn_dim=128"}).ok());
  EXPECT_THAT(ValidateWith({"model.ffn.type=lowrank", "model.ffn.rank=64",
                            "schedule.self_guided.enabled=true", "train.max_steps=1"}).message(),
              HasSubstr("guided phase would be empty"));
}

TEST(ConfigTest, ToTextRoundTripsWithAllDefaultsSpelledOut) {
  RunConfig c = Valid();
  std::string text = RunConfigToText(c);
  EXPECT_THAT(text, HasSubstr("warmup_fraction: 0.1"));
  EXPECT_THAT(text, HasSubstr("seq_len: 256"));
  auto back = ParseRunConfig(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), ParseRunConfig(RunConfigToText(*back))->SerializeAsString());
  EXPECT_EQ(back->train().seq_len(), c.train().seq_len());
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

TEST(ExtractOverrideFlagsTest, PullsSetFlagsOutKeepingCommas) {
  std::vector<std::string> args = {"train", "--config=x", "--set=data.train_shards=a/*.bin,b/*.bin",
                                   "--set", "train.max_steps=3", "--run_dir=r"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  auto sets = ExtractOverrideFlags(&argc, argv.data());
  ASSERT_TRUE(sets.ok());
  EXPECT_EQ(*sets, (std::vector<std::string>{"data.train_shards=a/*.bin,b/*.bin",
                                             "train.max_steps=3"}));
  ASSERT_EQ(argc, 3);
  EXPECT_STREQ(argv[1], "--config=x");
  EXPECT_STREQ(argv[2], "--run_dir=r");
  std::vector<std::string> bad = {"train", "--set"};
  std::vector<char*> bad_argv = {bad[0].data(), bad[1].data()};
  int bad_argc = 2;
  EXPECT_FALSE(ExtractOverrideFlags(&bad_argc, bad_argv.data()).ok());
}

}  // namespace
}  // namespace loom
