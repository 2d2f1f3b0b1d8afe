// Parameter and FLOP accounting (core/flops.h) against hand-computed examples, the built model,
// and the numbers the StructuredFFN paper prints (spec §7, §8) for the configs Loom ships.
#include "core/flops.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/config.h"
#include "core/file_io.h"
#include "gtest/gtest.h"
#include "models/registry.h"

namespace loom {
namespace {

std::string ConfigDir() {
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    return std::string(srcdir) + "/loom/launch/configs/lm";
  }
  return "launch/configs/lm";
}

// Parsed and defaults resolved, but not validated: the accounting is tested on its own
// (LoadsAndValidates below checks validation).
RunConfig ReadConfig(const std::string& name) {
  const std::string path = ConfigDir() + "/" + name + ".textproto";
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return RunConfig();
  absl::StatusOr<RunConfig> c = ParseRunConfig(*text, path);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return RunConfig();
  RunConfig config = *c;
  EXPECT_TRUE(ResolveDefaults(&config).ok());
  return config;
}

ModelConfig Model(int layers, int d, int vocab, int heads) {
  ModelConfig m;
  m.set_num_layers(layers);
  m.set_d_model(d);
  m.set_vocab_size(vocab);
  m.mutable_mixer()->set_num_heads(heads);
  return m;
}

// ---- hand-computed examples -----------------------------------------------------------------

TEST(ForwardFlops, DenseByHand) {
  // L=1, d=4, V=10, 2 heads, f=16, 6 tokens in sequences of 3.
  const ModelConfig m = Model(1, 4, 10, 2);
  // attention, each doubled for the pair: Q,O 2*6*4*4 = 192; K,V 2*6*(4/2)*2*4 = 192;
  // QK^T,AV 2*6*3*4 = 144 -> 2*(192 + 192 + 144) = 1056.
  // FFN 2*6*(4*16 + 16*4) = 1536. LM head 2*6*10*4 = 480.
  EXPECT_EQ(ForwardFlops(m, 3, 6), 1056 + 1536 + 480);
  EXPECT_EQ(TrainingFlops(m, 3, 6), 3 * (1056 + 1536 + 480));
  EXPECT_EQ(ForwardFlopsWithGuides(m, 3, 6), ForwardFlops(m, 3, 6));  // dense: no guides
}

TEST(ForwardFlops, GroupedQueryNarrowAttentionByHand) {
  // L=2, d=8, V=5, attn_dim 4 over 4 q heads (hd 1) and 2 kv heads, f=6, 4 tokens, s=2.
  ModelConfig m = Model(2, 8, 5, 4);
  m.mutable_mixer()->set_num_kv_heads(2);
  m.mutable_mixer()->set_attn_dim(4);
  m.mutable_ffn()->set_hidden_dim(6);
  // per layer: 2*(2*4*4*8) [Q,O] + 2*(2*4*1*2*8) [K,V] + 2*(2*4*2*4) [QK^T, AV]
  //          = 512 + 256 + 128 = 896; two layers 1792.
  // FFN 2*4*(2 layers * 2*8*6) = 1536; head 2*4*5*8 = 320.
  EXPECT_EQ(ForwardFlops(m, 2, 4), 1792 + 1536 + 320);
}

TEST(ForwardFlops, StructuredAndGuidesByHand) {
  // L=3, d=4, f=8, 2 heads, V=10, 5 tokens, s=5.
  ModelConfig m = Model(3, 4, 10, 2);
  m.mutable_ffn()->set_hidden_dim(8);
  const double attn = 3 * 2 * (2.0 * 5 * 4 * 4 + 2.0 * 5 * 2 * 2 * 4 + 2.0 * 5 * 5 * 4);
  const double head = 2.0 * 5 * 10 * 4;
  const int64_t dense_layer = 2 * 4 * 8;  // 64
  struct Case {
    const char* type;
    int rank, nblocks;
    int64_t per_layer;  // fc1 (4 -> 8) + fc2 (8 -> 4) weight entries
  } cases[] = {
      {"lowrank", 2, 0, 2 * (4 + 8) + 2 * (8 + 4)},                 // R(N+M): 48
      {"blockdense", 2, 2, (2 * 4 / 2 + 8 * 2) + (2 * 8 / 2 + 4 * 2)},  // R*N/B + M*R: 20+16
      {"blockshuffle", 0, 2, 4 * 12 / 2 + 4 * 12 / 2},              // min(N,M)(N+M)/B: 48
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type);
    m.mutable_ffn()->set_type(c.type);
    m.mutable_ffn()->set_rank(c.rank);
    m.mutable_ffn()->set_nblocks(c.nblocks);
    m.mutable_ffn()->set_first_layer_dense(true);
    const ModelCounts counts = CountParameters(m);
    EXPECT_EQ(counts.ffn_params, dense_layer + 2 * c.per_layer);
    EXPECT_EQ(counts.structured_layers, 2);
    EXPECT_EQ(counts.guide_params, 0);
    EXPECT_EQ(CountParameters(m, true).guide_params, 2 * dense_layer);
    EXPECT_EQ(CountParameters(m, true).params, counts.params + 2 * dense_layer);
    EXPECT_EQ(ForwardFlops(m, 5, 5), attn + 2.0 * 5 * (dense_layer + 2 * c.per_layer) + head);
    EXPECT_EQ(ForwardFlopsWithGuides(m, 5, 5),
              ForwardFlops(m, 5, 5) + 2.0 * 5 * 2 * dense_layer);
    m.mutable_ffn()->set_first_layer_dense(false);
    EXPECT_EQ(CountParameters(m).ffn_params, 3 * c.per_layer);
  }
}

TEST(CountParameters, SwigluDoublesFc1Output) {
  ModelConfig m = Model(1, 4, 10, 2);
  m.mutable_ffn()->set_hidden_dim(8);
  m.mutable_ffn()->set_activation("swiglu");
  // fc1 4 -> 16, fc2 8 -> 4.
  EXPECT_EQ(CountParameters(m).ffn_params, 4 * 16 + 8 * 4);
  EXPECT_EQ(CountParameters(m).ffn_bias_params, 16 + 4);
  m.mutable_ffn()->set_type("lowrank");
  m.mutable_ffn()->set_rank(2);
  m.mutable_ffn()->set_first_layer_dense(false);
  EXPECT_EQ(CountParameters(m).ffn_params, 2 * (4 + 16) + 2 * (8 + 4));
  EXPECT_EQ(CountParameters(m, true).guide_params, 4 * 16 + 8 * 4);
}

TEST(CountParameters, BreakdownByHand) {
  // L=2, d=4, V=10, 2 heads, f=16.
  const ModelCounts c = CountParameters(Model(2, 4, 10, 2));
  EXPECT_EQ(c.embedding_params, 40);
  EXPECT_EQ(c.attention_params, 2 * (4 * 12 + 12 + 4 * 4 + 4));
  EXPECT_EQ(c.norm_params, 5 * 2 * 4);
  EXPECT_EQ(c.ffn_params, 2 * 2 * 4 * 16);
  EXPECT_EQ(c.ffn_bias_params, 2 * (16 + 4));
  EXPECT_EQ(c.params, c.embedding_params + c.attention_params + c.norm_params +
                          c.ffn_params + c.ffn_bias_params);
}

// The count must be what the model builder actually allocates.
TEST(CountParameters, MatchesTheBuiltDenseModel) {
  ModelConfig m = Model(3, 32, 97, 4);
  m.mutable_ffn()->set_hidden_dim(48);
  m.set_dtype("float32");
  auto model = models::BuildLanguageModel(m, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(CountParameters(m).params, (*model)->NumParameters());
}

// Structured FFNs, swiglu, GQA and a narrow attention, as models/ builds them (no guides:
// those are added by the trainer).
TEST(CountParameters, MatchesTheBuiltStructuredModels) {
  struct Case {
    const char* type;
    int rank, nblocks;
    const char* activation;
    bool first_layer_dense;
  } cases[] = {
      {"lowrank", 8, 0, "gelu", true},        {"lowrank", 8, 0, "swiglu", false},
      {"blockdense", 16, 4, "gelu", true},    {"blockdense", 8, 2, "swiglu", true},
      {"blockshuffle", 0, 2, "gelu", true},   {"blockshuffle", 0, 4, "swiglu", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrFormat("%s r%d b%d %s", c.type, c.rank, c.nblocks, c.activation));
    ModelConfig m = Model(3, 32, 97, 4);
    m.mutable_mixer()->set_num_kv_heads(2);
    m.mutable_mixer()->set_attn_dim(16);
    m.mutable_ffn()->set_hidden_dim(48);
    m.mutable_ffn()->set_type(c.type);
    m.mutable_ffn()->set_rank(c.rank);
    m.mutable_ffn()->set_nblocks(c.nblocks);
    m.mutable_ffn()->set_activation(c.activation);
    m.mutable_ffn()->set_first_layer_dense(c.first_layer_dense);
    auto model = models::BuildLanguageModel(m, 1);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(CountParameters(m).params, (*model)->NumParameters());
  }
}

// ---- runs: self-guided accounting (spec §5.4) -----------------------------------------------

TEST(ComputeRunFlops, SelfGuidedModes) {
  RunConfig c;
  *c.mutable_model() = Model(3, 4, 10, 2);
  c.mutable_model()->mutable_ffn()->set_type("lowrank");
  c.mutable_model()->mutable_ffn()->set_rank(2);
  c.mutable_train()->set_max_steps(10);
  c.mutable_train()->set_seq_len(5);
  c.mutable_train()->set_global_batch_size(2);
  const double f = ForwardFlops(c.model(), 5, 10);
  const double g = ForwardFlopsWithGuides(c.model(), 5, 10) - f;
  ASSERT_GT(g, 0);

  RunFlops plain = ComputeRunFlops(c);
  EXPECT_EQ(plain.total_steps, 10);
  EXPECT_EQ(plain.guided_steps, 0);
  EXPECT_EQ(plain.tokens, 100);
  EXPECT_EQ(plain.train_flops, 3 * f * 10);

  SelfGuidedConfig* sg = c.mutable_schedule()->mutable_self_guided();
  sg->set_enabled(true);
  sg->set_max_step_ratio(0.37);  // int(3.7) = 3 guided steps
  sg->set_mode("fixedflop");
  sg->set_reduce_flop(true);
  RunFlops r = ComputeRunFlops(c);
  EXPECT_EQ(r.guided_steps, 3);
  EXPECT_EQ(r.total_steps, 13);
  EXPECT_EQ(r.tokens, 100);
  EXPECT_EQ(r.tokens_processed, 130);
  EXPECT_EQ(r.params, plain.params);  // guides are not in the table's params
  EXPECT_EQ(r.guide_forward_flops_per_step, g);
  EXPECT_EQ(r.train_flops, 3 * (f * 13 + 0.5 * g * 3));
  // The spec's literal form: F_fwd(with guide)*steps - G*(steps-guided) - 0.5*G*guided.
  EXPECT_EQ(r.train_flops, 3 * ((f + g) * 13 - g * (13 - 3) - 0.5 * g * 3));

  sg->set_reduce_flop(false);
  EXPECT_EQ(ComputeRunFlops(c).train_flops, 3 * (f * 13 + g * 3));
  sg->set_mode("fixedstep");
  r = ComputeRunFlops(c);
  EXPECT_EQ(r.total_steps, 10);
  EXPECT_EQ(r.train_flops, 3 * (f * 10 + g * 3));

  sg->set_mode("fixedflop");
  sg->set_reduce_flop(true);
  r = ComputeRunFlops(c);
  EXPECT_EQ(CumulativeTrainingFlops(c, 0), 0);
  EXPECT_EQ(CumulativeTrainingFlops(c, 2), 3 * (f * 2 + 0.5 * g * 2));
  EXPECT_EQ(CumulativeTrainingFlops(c, 5), 3 * (f * 5 + 0.5 * g * 3));
  EXPECT_EQ(CumulativeTrainingFlops(c, r.total_steps), r.train_flops);
}

TEST(ComputeRunFlops, ExactIntegerAgreesWithDouble) {
  const RunFlops r = ComputeRunFlops(ReadConfig("xl_dense"));
  EXPECT_EQ(r.train_flops_exact.size(), 21u);  // 2.10e20
  EXPECT_NEAR(std::stod(r.train_flops_exact) / r.train_flops, 1.0, 1e-15);
}

// ---- the paper's tables ---------------------------------------------------------------------

struct PaperRow {
  const char* config;
  int params_m;          // "model (M)" / "#param", rounded to millions
  int ffn_m;             // "FFN (M)"; -1 when the table does not print it
  const char* tokens_b;  // "%.1f" of the base tokens in billions
  const char* flops;     // "%.2e" of training FLOPs, as printed
  const char* flops4;    // "%.3e": spec §7's derived column
};

void CheckRow(const PaperRow& row) {
  SCOPED_TRACE(row.config);
  const RunFlops r = ComputeRunFlops(ReadConfig(row.config));
  std::printf("%-22s params %.1fM  FFN %.1fM  tokens %.2fB  steps %lld  train FLOPs %.4e\n",
              row.config, r.params / 1e6, r.ffn_params / 1e6, r.tokens / 1e9,
              static_cast<long long>(r.total_steps), r.train_flops);
  EXPECT_EQ(std::lround(r.params / 1e6), row.params_m) << r.params;
  if (row.ffn_m >= 0) {
    EXPECT_EQ(std::lround(r.ffn_params / 1e6), row.ffn_m) << r.ffn_params;
  }
  EXPECT_EQ(absl::StrFormat("%.1f", r.tokens / 1e9), row.tokens_b);
  EXPECT_EQ(absl::StrFormat("%.2e", r.train_flops), row.flops);
  if (row.flops4 != nullptr) {
    EXPECT_EQ(absl::StrFormat("%.3e", r.train_flops), row.flops4);
  }
}

TEST(PaperTables, Table1Xl) {
  const PaperRow rows[] = {
      {"xl_dense", 1274, 805, "25.5", "2.10e+20", "2.102e+20"},
      {"xl_lowrank_r1024", 985, 516, "25.5", "1.66e+20", "1.660e+20"},
      {"xl_blockdense_b4_r1536", 955, 486, "25.5", "1.61e+20", "1.614e+20"},
      {"xl_blockshuffle_b2", 985, 516, "25.5", "1.66e+20", "1.660e+20"},
      {"xl_lowrank_r512", 744, 275, "25.5", "1.29e+20", "1.291e+20"},
      {"xl_blockdense_b4_r768", 728, 260, "25.5", "1.27e+20", "1.268e+20"},
      {"xl_blockshuffle_b4", 744, 275, "25.5", "1.29e+20", "1.291e+20"},
      // Same FLOPs as dense (§6.2, rho 0.43); params are the structured model's.
      {"xl_lowrank_r512_sgt", 744, 275, "25.5", "2.10e+20", "2.099e+20"},
  };
  for (const PaperRow& row : rows) CheckRow(row);
}

TEST(PaperTables, Table2WideAndStructured) {
  const PaperRow rows[] = {
      {"m_dense", 335, -1, "6.7", "1.55e+19", "1.548e+19"},
      {"m_gqa", 335, -1, "6.7", "1.55e+19", nullptr},
      {"m_wide_lowrank", 219, -1, "10.6", "1.55e+19", "1.551e+19"},
      {"m_wide_lowrank_sgt", 219, -1, "6.7", "1.56e+19", "1.559e+19"},
      {"l_dense", 729, -1, "14.6", "7.03e+19", "7.034e+19"},
      {"l_gqa", 729, -1, "14.6", "7.03e+19", nullptr},
      {"l_wide_lowrank", 464, -1, "23.4", "7.03e+19", "7.032e+19"},
      {"l_wide_lowrank_sgt", 464, -1, "14.6", "7.03e+19", "7.029e+19"},
  };
  for (const PaperRow& row : rows) CheckRow(row);
}

TEST(PaperTables, SmallDense) {
  CheckRow({"s_dense", 110, 57, "2.2", "1.69e+18", "1.695e+18"});
}

TEST(PaperTables, XlSelfGuidedSteps) {
  const RunFlops r = ComputeRunFlops(ReadConfig("xl_lowrank_r512_sgt"));
  EXPECT_EQ(r.guided_steps, 20913);  // int(48637 * 0.43)
  EXPECT_EQ(r.total_steps, 48637 + 20913);
  EXPECT_EQ(absl::StrFormat("%.1f", r.tokens_processed / 1e9), "36.5");  // spec §5.3
  EXPECT_EQ(r.guide_params, 23 * 2 * 2048 * 8192);
}

TEST(PaperTables, StructuredFractionsOfSection2_7) {
  // FFN params of a replaced block relative to dense: 62.5% / 31.25% (LowRank, BlockShuffle,
  // BlockDense for s and l), 58.6% / 29.3% (BlockDense for m and xl).
  struct Case {
    const char* config;
    double fraction;
  } cases[] = {
      {"s_lowrank_r384", 0.625},         {"s_lowrank_r192", 0.3125},
      {"s_blockdense_b2_r512", 0.625},   {"s_blockdense_b2_r256", 0.3125},
      {"s_blockshuffle_b2", 0.625},      {"s_blockshuffle_b4", 0.3125},
      {"m_lowrank_r512", 0.625},         {"m_lowrank_r256", 0.3125},
      {"m_blockdense_b4_r768", 0.5859375}, {"m_blockdense_b4_r384", 0.29296875},
      {"l_lowrank_r768", 0.625},         {"l_blockdense_b2_r1024", 0.625},
      {"l_blockdense_b2_r512", 0.3125},  {"xl_blockdense_b4_r1536", 0.5859375},
      {"xl_blockshuffle_b4", 0.3125},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.config);
    const ModelConfig m = ReadConfig(c.config).model();
    const ModelCounts counts = CountParameters(m);
    const double per_dense_layer = static_cast<double>(counts.dense_ffn_params) / m.num_layers();
    const double structured = (counts.ffn_params - per_dense_layer) / counts.structured_layers;
    EXPECT_NEAR(structured / per_dense_layer, c.fraction, 1e-12);
  }
}

// ---- every shipped config -------------------------------------------------------------------

const char* const kPaperConfigs[] = {
    "s_dense", "s_lowrank_r384", "s_lowrank_r192", "s_blockdense_b2_r512",
    "s_blockdense_b2_r256", "s_blockshuffle_b2", "s_blockshuffle_b4", "s_lowrank_r192_sgt",
    "m_dense", "m_lowrank_r512", "m_lowrank_r256", "m_blockdense_b4_r768",
    "m_blockdense_b4_r384", "m_blockshuffle_b2", "m_blockshuffle_b4", "m_lowrank_r256_sgt",
    "l_dense", "l_lowrank_r768", "l_lowrank_r384", "l_blockdense_b2_r1024",
    "l_blockdense_b2_r512", "l_blockshuffle_b2", "l_blockshuffle_b4", "l_lowrank_r384_sgt",
    "xl_dense", "xl_lowrank_r1024", "xl_lowrank_r512", "xl_blockdense_b4_r1536",
    "xl_blockdense_b4_r768", "xl_blockshuffle_b2", "xl_blockshuffle_b4", "xl_lowrank_r512_sgt",
    "m_wide_lowrank", "m_wide_lowrank_sgt", "m_gqa", "l_wide_lowrank", "l_wide_lowrank_sgt",
    "l_gqa",
};

TEST(Configs, PaperConfigsExistWithTheirName) {
  for (const char* name : kPaperConfigs) {
    SCOPED_TRACE(name);
    const RunConfig c = ReadConfig(name);
    EXPECT_EQ(c.name(), name);
    EXPECT_EQ(c.model().vocab_size(), 32000);
    EXPECT_EQ(c.train().global_batch_size(), 512);
    EXPECT_EQ(c.train().seq_len(), 1024);
    EXPECT_EQ(c.train().seed(), 1005);
  }
}

TEST(Configs, EveryConfigLoadsAndValidates) {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(ConfigDir())) {
    if (entry.path().extension() == ".textproto") paths.push_back(entry.path().string());
  }
  EXPECT_GE(paths.size(), std::size(kPaperConfigs) + 1);  // + tiny
  for (const std::string& path : paths) {
    absl::StatusOr<RunConfig> c = LoadRunConfig(path, {});
    EXPECT_TRUE(c.ok()) << c.status();
  }
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

TEST(PeakFlops, GpuNamesMapToTheirDenseBf16Peak) {
  EXPECT_EQ(GpuPeakFlops("NVIDIA A100-SXM4-80GB"), 312e12);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 80GB HBM3"), 989e12);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_EQ(GpuPeakFlops("NVIDIA A10"), 125e12);
  EXPECT_EQ(GpuPeakFlops("Some Future Accelerator"), 0);
}

}  // namespace
}  // namespace loom
