#include "core/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/file_io.h"
#include "core/status_macros.h"

namespace loom {
namespace {

namespace pb = ::google::protobuf;

// Collects protobuf's parse errors as "source:line:col: message".
class CollectingErrors : public pb::io::ErrorCollector {
 public:
  CollectingErrors(std::string source, absl::string_view text)
      : source_(std::move(source)), lines_(absl::StrSplit(text, '\n')) {}
  // Quotes the offending line: protobuf's messages ("Expected integer") do not name the field.
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    std::string context;
    if (line >= 0 && static_cast<size_t>(line) < lines_.size()) {
      context = absl::StrCat(" (in `", absl::StripAsciiWhitespace(lines_[line]), "`)");
    }
    errors_.push_back(
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message, context));
  }
  void AddWarning(int line, pb::io::ColumnNumber column, const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::string source_;
  std::vector<std::string> lines_;
  std::vector<std::string> errors_;
};

std::string FieldNames(const pb::Descriptor* d) {
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  return absl::StrJoin(names, ", ");
}

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config field `", field, "`: ", what));
}

bool IsOneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return true;
  }
  return false;
}

std::string Allowed(std::initializer_list<const char*> allowed) {
  std::vector<std::string> q;
  for (const char* a : allowed) q.push_back(absl::StrCat("\"", a, "\""));
  return absl::StrJoin(q, ", ");
}

#define LOOM_CHECK_FIELD(cond, field, ...)                          \
  do {                                                              \
    if (!(cond)) return FieldError(field, absl::StrCat(__VA_ARGS__)); \
  } while (false)

#define LOOM_CHECK_CHOICE(value, field, ...)                                              \
  do {                                                                                    \
    if (!IsOneOf(value, {__VA_ARGS__}))                                                   \
      return FieldError(field, absl::StrCat("\"", value, "\" is not one of ",             \
                                            Allowed({__VA_ARGS__})));                     \
  } while (false)

}  // namespace

absl::StatusOr<RunConfig> ParseRunConfig(absl::string_view text, absl::string_view source_name) {
  RunConfig config;
  pb::TextFormat::Parser parser;
  CollectingErrors errors(std::string(source_name), text);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid run config: ", errors.Joined()));
  }
  return config;
}

absl::Status ApplyOverride(absl::string_view assignment, RunConfig* config) {
  const size_t eq = assignment.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("override \"", assignment, "\" is not of the form a.b.c=value"));
  }
  const std::string path(absl::StripAsciiWhitespace(assignment.substr(0, eq)));
  std::string value(absl::StripAsciiWhitespace(assignment.substr(eq + 1)));
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  pb::Message* msg = config;
  for (size_t i = 0; i < parts.size(); ++i) {
    const pb::Descriptor* d = msg->GetDescriptor();
    const pb::FieldDescriptor* f = d->FindFieldByName(parts[i]);
    const std::string so_far = absl::StrJoin(parts.begin(), parts.begin() + i + 1, ".");
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override \"", assignment, "\": unknown field `", so_far, "` (", d->full_name(),
          " has: ", FieldNames(d), ")"));
    }
    const pb::Reflection* r = msg->GetReflection();
    const bool last = i + 1 == parts.size();
    if (!last) {
      if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat("override \"", assignment, "\": `", so_far,
                                                       "` is not a message"));
      }
      msg = r->MutableMessage(msg, f);
      continue;
    }
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override \"", assignment, "\": `", so_far, "` is a message; set one of its fields (",
          FieldNames(f->message_type()), ")"));
    }
    // Bare strings are convenient on a command line; quote them for the text-format parser.
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING &&
        (value.empty() || (value.front() != '"' && value.front() != '\''))) {
      std::string quoted = "\"";
      for (char c : value) {
        if (c == '"' || c == '\\') quoted.push_back('\\');
        quoted.push_back(c);
      }
      value = quoted + "\"";
    }
    if (f->is_repeated()) r->ClearField(msg, f);
    if (!pb::TextFormat::ParseFieldValueFromString(value, f, msg)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override \"", assignment, "\": \"", assignment.substr(eq + 1),
          "\" is not a valid value for `", path, "` (type ", f->type_name(), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveDefaults(RunConfig* config) {
  ModelConfig* m = config->mutable_model();
  if (m->vocab_size() == 0 && config->task().type() != "lra") {
    const std::string& tok = config->data().tokenizer();
    if (tok == "gpt2") {
      m->set_vocab_size(50257);
    } else if (tok == "byte") {
      m->set_vocab_size(257);
    } else if (tok == "external") {
      return FieldError("model.vocab_size", "must be set when data.tokenizer is \"external\" "
                                            "(shards tokenized outside Loom)");
    } else {
      return FieldError("data.tokenizer", absl::StrCat("\"", tok, "\" is not one of \"gpt2\", "
                                                       "\"byte\", \"external\""));
    }
  }
  if (m->ffn().hidden_dim() == 0) m->mutable_ffn()->set_hidden_dim(4 * m->d_model());
  if (m->mixer().num_kv_heads() == 0) {
    m->mutable_mixer()->set_num_kv_heads(m->mixer().num_heads());
  }
  // The convolutional mixers tune their kernels to the training length unless told otherwise.
  MixerConfig* mx = m->mutable_mixer();
  if (mx->type() == "s4" || mx->type() == "s4d") {
    S4Config* s4 = mx->mutable_s4();
    if (s4->l_max() == 0) s4->set_l_max(config->train().seq_len());
    if (!s4->has_init()) s4->set_init(mx->type() == "s4" ? "legs" : "diag-inv");
  } else if (mx->type() == "sgconv") {
    if (mx->sgconv().l_max() == 0) mx->mutable_sgconv()->set_l_max(config->train().seq_len());
  }
  // Touch every sub-message so the written config spells out all defaults.
  config->mutable_optimizer();
  config->mutable_train();
  config->mutable_data();
  config->mutable_task();
  config->mutable_parallel();
  config->mutable_checkpoint();
  config->mutable_logging();
  config->mutable_schedule();
  return absl::OkStatus();
}

absl::Status ValidateRunConfig(const RunConfig& c) {
  const ModelConfig& m = c.model();
  LOOM_CHECK_CHOICE(m.arch(), "model.arch", "transformer");
  // LRA tasks resolve the vocabulary (or the pixel input) from their data when it is left at 0.
  const bool from_data = c.task().type() == "lra" && (m.vocab_size() == 0 || m.input_channels() > 0);
  LOOM_CHECK_FIELD(from_data || (m.vocab_size() >= 2 && m.vocab_size() <= 65536),
                   "model.vocab_size", m.vocab_size(),
                   " is out of range [2, 65536] (tokens are stored as uint16)");
  LOOM_CHECK_FIELD(m.input_channels() >= 0, "model.input_channels", m.input_channels(),
                   " must be >= 0");
  LOOM_CHECK_CHOICE(m.head(), "model.head", "lm", "classify", "retrieval");
  LOOM_CHECK_FIELD(m.num_layers() >= 1 && m.num_layers() <= 1024, "model.num_layers",
                   m.num_layers(), " is out of range [1, 1024]");
  LOOM_CHECK_FIELD(m.d_model() >= 1 && m.d_model() <= 65536, "model.d_model", m.d_model(),
                   " is out of range [1, 65536]");
  LOOM_CHECK_FIELD(m.dropout() >= 0 && m.dropout() < 1, "model.dropout", m.dropout(),
                   " is out of range [0, 1)");
  LOOM_CHECK_CHOICE(m.mixer().type(), "model.mixer.type", "attention", "s4", "s4d", "sgconv");
  if (m.mixer().type() == "s4" || m.mixer().type() == "s4d") {
    const S4Config& s4 = m.mixer().s4();
    const bool diag = m.mixer().type() == "s4d";
    LOOM_CHECK_FIELD(s4.d_state() >= 2 && s4.d_state() % 2 == 0, "model.mixer.s4.d_state",
                     s4.d_state(), " must be even and >= 2");
    LOOM_CHECK_FIELD(diag || s4.d_state() >= 4, "model.mixer.s4.d_state", s4.d_state(),
                     " must be >= 4 for s4 (HiPPO)");
    LOOM_CHECK_FIELD(s4.channels() >= 1, "model.mixer.s4.channels", s4.channels(),
                     " must be >= 1");
    LOOM_CHECK_FIELD(s4.n_ssm() >= 0 && (s4.n_ssm() == 0 || m.d_model() % s4.n_ssm() == 0),
                     "model.mixer.s4.n_ssm", s4.n_ssm(), " must divide d_model ", m.d_model(),
                     " (0 means d_model)");
    LOOM_CHECK_FIELD(s4.rank() >= 1, "model.mixer.s4.rank", s4.rank(), " must be >= 1");
    LOOM_CHECK_CHOICE(s4.disc(), "model.mixer.s4.disc", "zoh", "bilinear");
    LOOM_CHECK_FIELD(s4.dt_min() > 0 && s4.dt_max() >= s4.dt_min(), "model.mixer.s4.dt_min",
                     "need 0 < dt_min <= dt_max (got ", s4.dt_min(), ", ", s4.dt_max(), ")");
    LOOM_CHECK_CHOICE(s4.dt_transform(), "model.mixer.s4.dt_transform", "exp", "softplus",
                      "relu", "sigmoid", "none");
    LOOM_CHECK_FIELD(s4.lr() >= 0 && s4.dt_lr() >= 0 && s4.c_lr() >= 0, "model.mixer.s4.lr",
                     "learning rates must be >= 0 (0 means the global one)");
    LOOM_CHECK_FIELD(s4.weight_decay() >= 0, "model.mixer.s4.weight_decay", s4.weight_decay(),
                     " must be >= 0");
    LOOM_CHECK_CHOICE(s4.final_act(), "model.mixer.s4.final_act", "glu", "none");
    LOOM_CHECK_FIELD(s4.l_max() >= 0, "model.mixer.s4.l_max", s4.l_max(), " must be >= 0");
    const std::string& init = s4.init();
    if (diag) {
      LOOM_CHECK_FIELD(init.empty() || init.rfind("diag", 0) == 0 || init == "legs",
                       "model.mixer.s4.init", "\"", init, "\" is not a diagonal init (diag-lin, "
                       "diag-inv, diag-real, diag-legs, diag)");
    } else {
      LOOM_CHECK_FIELD(init.empty() || init == "legs" || init == "legt" || init == "fout" ||
                           init == "hippo" || init.rfind("diag", 0) == 0,
                       "model.mixer.s4.init", "\"", init, "\" is not one of legs, legt, fout, "
                       "hippo, diag-*");
      LOOM_CHECK_FIELD(init != "legt" || s4.rank() >= 2, "model.mixer.s4.rank",
                       "legt needs rank >= 2 (got ", s4.rank(), ")");
    }
    LOOM_CHECK_FIELD(m.dtype() != "bfloat16", "model.dtype",
                     "bfloat16 is not supported with the s4/s4d mixers (their kernels are "
                     "complex float32)");
  } else if (m.mixer().type() == "sgconv") {
    const SgConvConfig& g = m.mixer().sgconv();
    LOOM_CHECK_FIELD(g.kernel_dim() >= 1, "model.mixer.sgconv.kernel_dim", g.kernel_dim(),
                     " must be >= 1");
    LOOM_CHECK_FIELD(g.n_scales() >= 0, "model.mixer.sgconv.n_scales", g.n_scales(),
                     " must be >= 0 (0: from l_max)");
    LOOM_CHECK_FIELD(g.init_scale() >= 0, "model.mixer.sgconv.init_scale", g.init_scale(),
                     " must be >= 0");
    LOOM_CHECK_FIELD(g.decay_min() > 0 && g.decay_max() >= g.decay_min(),
                     "model.mixer.sgconv.decay_min", "need 0 < decay_min <= decay_max (got ",
                     g.decay_min(), ", ", g.decay_max(), ")");
    LOOM_CHECK_CHOICE(g.mode(), "model.mixer.sgconv.mode", "cat_randn", "cat_cos",
                      "cat_randn_learnable", "cat_randn_learnable_fixed", "cat_randn_nearest",
                      "cat_cos_nearest");
    LOOM_CHECK_FIELD(g.channels() >= 1, "model.mixer.sgconv.channels", g.channels(),
                     " must be >= 1");
    LOOM_CHECK_CHOICE(g.postact(), "model.mixer.sgconv.postact", "glu", "none");
    LOOM_CHECK_FIELD(g.lr() >= 0, "model.mixer.sgconv.lr", g.lr(),
                     " must be >= 0 (0 means the global one)");
    LOOM_CHECK_FIELD(g.l_max() >= 0, "model.mixer.sgconv.l_max", g.l_max(), " must be >= 0");
    LOOM_CHECK_FIELD(g.n_scales() > 0 || g.l_max() > 0 || c.train().seq_len() > 0,
                     "model.mixer.sgconv.l_max", "is needed to choose the number of scales");
    LOOM_CHECK_FIELD(m.dtype() != "bfloat16", "model.dtype",
                     "bfloat16 is not supported with the sgconv mixer");
  }
  LOOM_CHECK_FIELD(m.mixer().num_heads() >= 1, "model.mixer.num_heads", m.mixer().num_heads(),
                   " must be >= 1");
  const int attn_dim = m.mixer().attn_dim() > 0 ? m.mixer().attn_dim() : m.d_model();
  LOOM_CHECK_FIELD(m.mixer().attn_dim() >= 0, "model.mixer.attn_dim", m.mixer().attn_dim(),
                   " must be >= 0 (0 means d_model)");
  LOOM_CHECK_FIELD(attn_dim % m.mixer().num_heads() == 0, "model.mixer.num_heads",
                   "attention width ", attn_dim, " is not divisible by num_heads ",
                   m.mixer().num_heads());
  LOOM_CHECK_FIELD((attn_dim / m.mixer().num_heads()) % 2 == 0, "model.mixer.num_heads",
                   "head dim ", attn_dim / m.mixer().num_heads(), " must be even for RoPE");
  const int kv = m.mixer().num_kv_heads() == 0 ? m.mixer().num_heads() : m.mixer().num_kv_heads();
  LOOM_CHECK_FIELD(kv >= 1 && kv <= m.mixer().num_heads() && m.mixer().num_heads() % kv == 0,
                   "model.mixer.num_kv_heads", kv, " must divide num_heads ",
                   m.mixer().num_heads());
  LOOM_CHECK_FIELD(m.mixer().rope_base() > 1, "model.mixer.rope_base", m.mixer().rope_base(),
                   " must be > 1");

  const FfnConfig& f = m.ffn();
  LOOM_CHECK_CHOICE(f.type(), "model.ffn.type", "dense", "lowrank", "blockdense", "blockshuffle",
                    "none");
  LOOM_CHECK_FIELD(f.hidden_dim() >= 0, "model.ffn.hidden_dim", f.hidden_dim(),
                   " must be >= 0 (0 means 4 * d_model)");
  LOOM_CHECK_CHOICE(f.activation(), "model.ffn.activation", "gelu", "swiglu");
  {
    const int64_t d = m.d_model();
    const int64_t hidden = f.hidden_dim() > 0 ? f.hidden_dim() : 4 * d;
    const int64_t fc1_out = f.activation() == "swiglu" ? 2 * hidden : hidden;
    const bool uses_rank = f.type() == "lowrank" || f.type() == "blockdense";
    const bool uses_blocks = f.type() == "blockdense" || f.type() == "blockshuffle";
    if (uses_rank) {
      LOOM_CHECK_FIELD(f.rank() >= 1, "model.ffn.rank", f.rank(), " must be >= 1 for ",
                       f.type());
      LOOM_CHECK_FIELD(f.rank() <= std::min<int64_t>(d, hidden) || f.type() == "blockdense",
                       "model.ffn.rank", f.rank(), " exceeds min(d_model ", d,
                       ", hidden_dim ", hidden, ")");
    } else {
      LOOM_CHECK_FIELD(f.rank() == 0, "model.ffn.rank", "is only used by lowrank and blockdense "
                       "(got ", f.rank(), " for ", f.type(), ")");
    }
    if (uses_blocks) {
      LOOM_CHECK_FIELD(f.nblocks() >= 1, "model.ffn.nblocks", f.nblocks(), " must be >= 1 for ",
                       f.type());
      // fc1 maps d -> fc1_out, fc2 maps hidden -> d.
      LOOM_CHECK_FIELD(d % f.nblocks() == 0 && hidden % f.nblocks() == 0,
                       "model.ffn.nblocks", f.nblocks(), " must divide d_model ", d,
                       " and hidden_dim ", hidden);
      if (f.type() == "blockdense") {
        LOOM_CHECK_FIELD(f.rank() % f.nblocks() == 0, "model.ffn.rank", "rank ", f.rank(),
                         " must be a multiple of nblocks ", f.nblocks());
      } else {
        LOOM_CHECK_FIELD(fc1_out % f.nblocks() == 0, "model.ffn.nblocks", f.nblocks(),
                         " must divide fc1's width ", fc1_out);
      }
    } else {
      LOOM_CHECK_FIELD(f.nblocks() == 0, "model.ffn.nblocks",
                       "is only used by blockdense and blockshuffle (got ", f.nblocks(), " for ",
                       f.type(), ")");
    }
  }
  LOOM_CHECK_FIELD(m.init_std() > 0 && m.init_std() < 10, "model.init_std", m.init_std(),
                   " is out of range (0, 10)");
  LOOM_CHECK_FIELD(m.layer_norm_eps() > 0 && m.layer_norm_eps() < 1, "model.layer_norm_eps",
                   m.layer_norm_eps(), " is out of range (0, 1)");
  LOOM_CHECK_FIELD(m.tie_embeddings(), "model.tie_embeddings",
                   "untied embeddings are not implemented yet");
  LOOM_CHECK_CHOICE(m.dtype(), "model.dtype", "float32", "float64", "bfloat16");

  const OptimizerConfig& o = c.optimizer();
  LOOM_CHECK_CHOICE(o.name(), "optimizer.name", "adamw");
  LOOM_CHECK_FIELD(std::isfinite(o.lr()) && o.lr() > 0 && o.lr() < 10, "optimizer.lr", o.lr(),
                   " is out of range (0, 10)");
  LOOM_CHECK_FIELD(o.beta1() >= 0 && o.beta1() < 1, "optimizer.beta1", o.beta1(),
                   " is out of range [0, 1)");
  LOOM_CHECK_FIELD(o.beta2() >= 0 && o.beta2() < 1, "optimizer.beta2", o.beta2(),
                   " is out of range [0, 1)");
  LOOM_CHECK_FIELD(o.eps() > 0, "optimizer.eps", o.eps(), " must be > 0");
  LOOM_CHECK_FIELD(o.weight_decay() >= 0 && o.weight_decay() < 10, "optimizer.weight_decay",
                   o.weight_decay(), " is out of range [0, 10)");
  LOOM_CHECK_FIELD(o.grad_clip() >= 0, "optimizer.grad_clip", o.grad_clip(),
                   " must be >= 0 (0 disables clipping)");
  LOOM_CHECK_FIELD(o.warmup_fraction() >= 0 && o.warmup_fraction() < 1,
                   "optimizer.warmup_fraction", o.warmup_fraction(), " is out of range [0, 1)");
  LOOM_CHECK_FIELD(o.min_lr_ratio() >= 0 && o.min_lr_ratio() <= 1, "optimizer.min_lr_ratio",
                   o.min_lr_ratio(), " is out of range [0, 1]");
  LOOM_CHECK_CHOICE(o.lr_schedule(), "optimizer.lr_schedule", "cosine", "constant");

  const TrainConfig& t = c.train();
  LOOM_CHECK_FIELD(t.max_steps() >= 1, "train.max_steps", t.max_steps(), " must be >= 1");
  LOOM_CHECK_FIELD(t.seq_len() >= 1 && t.seq_len() <= (1 << 20), "train.seq_len", t.seq_len(),
                   " is out of range [1, 1048576]");
  LOOM_CHECK_FIELD(t.micro_batch_size() >= 1, "train.micro_batch_size", t.micro_batch_size(),
                   " must be >= 1");
  LOOM_CHECK_FIELD(t.global_batch_size() >= 1, "train.global_batch_size",
                   t.global_batch_size(), " must be >= 1");
  LOOM_CHECK_FIELD(t.global_batch_size() % t.micro_batch_size() == 0, "train.global_batch_size",
                   t.global_batch_size(), " is not a multiple of train.micro_batch_size ",
                   t.micro_batch_size());
  LOOM_CHECK_FIELD(t.log_every() >= 1, "train.log_every", t.log_every(), " must be >= 1");
  LOOM_CHECK_FIELD(t.eval_every() >= 0, "train.eval_every", t.eval_every(),
                   " must be >= 0 (0 disables periodic evaluation)");
  LOOM_CHECK_FIELD(t.eval_batches() >= 0, "train.eval_batches", t.eval_batches(),
                   " must be >= 0 (0 means the whole validation split)");
  LOOM_CHECK_FIELD(t.num_threads() >= 0 && t.num_threads() <= 1024, "train.num_threads",
                   t.num_threads(), " is out of range [0, 1024]");
  LOOM_CHECK_FIELD(t.seed() >= 0, "train.seed", t.seed(), " must be >= 0");

  const DataConfig& d = c.data();
  LOOM_CHECK_CHOICE(c.task().type(), "task.type", "lm", "lra");
  const bool lra = c.task().type() == "lra";
  LOOM_CHECK_FIELD(lra || !d.train_shards().empty(), "data.train_shards",
                   "is empty; give a glob of token shards (see //tools:tokenize)");
  LOOM_CHECK_CHOICE(d.tokenizer(), "data.tokenizer", "gpt2", "byte", "external");
  if (lra) {
    const LraConfig& l = c.task().lra();
    LOOM_CHECK_CHOICE(l.name(), "task.lra.name", "listops", "text", "retrieval", "image",
                      "pathfinder32", "pathfinder64", "pathx", "pathfinder128", "pathfinder256");
    LOOM_CHECK_FIELD(!l.data_dir().empty(), "task.lra.data_dir",
                     "is empty; point it at the task's directory in the release layout (or "
                     "generate one with //tools:lra_gen)");
    LOOM_CHECK_CHOICE(l.objective(), "task.lra.objective", "classify", "spt");
    LOOM_CHECK_FIELD(l.mask_rate() >= 0 && l.mask_rate() < 1, "task.lra.mask_rate",
                     l.mask_rate(), " is out of range [0, 1)");
    LOOM_CHECK_FIELD(l.max_length() >= 0 && l.max_examples() >= 0, "task.lra.max_length",
                     "max_length and max_examples must be >= 0");
    LOOM_CHECK_CHOICE(l.pathfinder_difficulty(), "task.lra.pathfinder_difficulty",
                      "curv_baseline", "curv_contour_length_9", "curv_contour_length_14");
    LOOM_CHECK_CHOICE(m.pooling(), "model.pooling", "mean", "max", "last", "cls");
    LOOM_CHECK_FIELD(l.objective() != "spt" || m.pooling() != "cls", "model.pooling",
                     "\"cls\" has no meaning for self-pretraining");
  }
  LOOM_CHECK_FIELD(c.train().eval_batch_size() >= 0, "train.eval_batch_size",
                   c.train().eval_batch_size(), " must be >= 0 (0: train.micro_batch_size)");
  LOOM_CHECK_FIELD(c.parallel().expected_world_size() >= 0, "parallel.expected_world_size",
                   c.parallel().expected_world_size(), " must be >= 0");
  LOOM_CHECK_FIELD(c.optimizer().zero_stage() == 0 || c.optimizer().zero_stage() == 1,
                   "optimizer.zero_stage", c.optimizer().zero_stage(),
                   " is not supported (0: all-reduce, 1: ZeRO-1 sharded optimizer state)");
  LOOM_CHECK_FIELD(c.parallel().bucket_mb() > 0, "parallel.bucket_mb", c.parallel().bucket_mb(),
                   " must be > 0");
  LOOM_CHECK_FIELD(c.parallel().collective_timeout_s() >= 0, "parallel.collective_timeout_s",
                   c.parallel().collective_timeout_s(), " must be >= 0 (0: wait forever)");
  LOOM_CHECK_CHOICE(c.parallel().backend(), "parallel.backend", "auto", "local", "mpi", "nccl");
  LOOM_CHECK_CHOICE(c.parallel().nccl_id_method(), "parallel.nccl_id_method", "mpi", "file");
  LOOM_CHECK_CHOICE(c.parallel().overlap(), "parallel.overlap", "auto", "on", "off");
  LOOM_CHECK_FIELD(c.logging().peak_flops() >= 0, "logging.peak_flops", c.logging().peak_flops(),
                   " must be >= 0 (0: measure)");
  LOOM_CHECK_CHOICE(c.optimizer().nonfinite_policy(), "optimizer.nonfinite_policy", "halt", "skip");
  LOOM_CHECK_FIELD(c.parallel().nccl_id_method() != "file" || !c.parallel().nccl_id_dir().empty(),
                   "parallel.nccl_id_dir",
                   "must name a directory every node shares when nccl_id_method is \"file\"");
  LOOM_CHECK_FIELD(c.checkpoint().every_steps() >= 0, "checkpoint.every_steps",
                   c.checkpoint().every_steps(), " must be >= 0");
  LOOM_CHECK_FIELD(c.checkpoint().keep_last() >= 1, "checkpoint.keep_last",
                   c.checkpoint().keep_last(), " must be >= 1");
  LOOM_CHECK_CHOICE(c.logging().progress(), "logging.progress", "auto", "tty", "plain", "none");

  const SelfGuidedConfig& sg = c.schedule().self_guided();
  LOOM_CHECK_CHOICE(sg.mode(), "schedule.self_guided.mode", "fixedstep", "fixedflop");
  LOOM_CHECK_CHOICE(sg.scheduler(), "schedule.self_guided.scheduler", "cosine", "linear");
  LOOM_CHECK_CHOICE(sg.blockshuffle_guide_init(), "schedule.self_guided.blockshuffle_guide_init",
                    "merged", "reference");
  LOOM_CHECK_FIELD(sg.max_step_ratio() > 0 && sg.max_step_ratio() <= 1,
                   "schedule.self_guided.max_step_ratio", sg.max_step_ratio(),
                   " is out of range (0, 1]");
  if (sg.enabled()) {
    LOOM_CHECK_FIELD(m.ffn().type() != "dense", "schedule.self_guided.enabled",
                     "self-guided training needs a structured model.ffn.type (got dense)");
    LOOM_CHECK_FIELD(static_cast<int64_t>(sg.max_step_ratio() *
                                          static_cast<double>(t.max_steps())) >= 1,
                     "schedule.self_guided.max_step_ratio", "int(", sg.max_step_ratio(), " * ",
                     t.max_steps(), " steps) is 0: the guided phase would be empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path,
                                        const std::vector<std::string>& overrides) {
  RunConfig config;
  if (!path.empty()) {
    LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    LOOM_ASSIGN_OR_RETURN(config, ParseRunConfig(text, path));
  }
  for (const std::string& o : overrides) LOOM_RETURN_IF_ERROR(ApplyOverride(o, &config));
  LOOM_RETURN_IF_ERROR(ResolveDefaults(&config));
  absl::Status valid = ValidateRunConfig(config);
  if (!valid.ok() && !path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", valid.message()));
  }
  LOOM_RETURN_IF_ERROR(valid);
  return config;
}

absl::StatusOr<std::vector<std::string>> ExtractOverrideFlags(int* argc, char** argv) {
  std::vector<std::string> overrides;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--set=")) {
      overrides.emplace_back(arg.substr(6));
    } else if (arg == "--set") {
      if (i + 1 >= *argc) return absl::InvalidArgumentError("--set needs a value a.b.c=value");
      overrides.emplace_back(argv[++i]);
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return overrides;
}

std::string RunConfigToText(const RunConfig& config) {
  // Set every scalar to its current value so defaults are printed explicitly.
  RunConfig full = config;
  std::function<void(pb::Message*)> fill = [&](pb::Message* msg) {
    const pb::Reflection* r = msg->GetReflection();
    const pb::Descriptor* d = msg->GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) continue;
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        fill(r->MutableMessage(msg, f));
        continue;
      }
      if (r->HasField(*msg, f)) continue;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32: r->SetInt32(msg, f, r->GetInt32(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_INT64: r->SetInt64(msg, f, r->GetInt64(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(msg, f, r->GetUInt32(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(msg, f, r->GetUInt64(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(msg, f, r->GetDouble(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(msg, f, r->GetFloat(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_BOOL: r->SetBool(msg, f, r->GetBool(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_STRING: r->SetString(msg, f, r->GetString(*msg, f)); break;
        case pb::FieldDescriptor::CPPTYPE_ENUM: r->SetEnum(msg, f, r->GetEnum(*msg, f)); break;
        default: break;
      }
    }
  };
  fill(&full);
  std::string out;
  pb::TextFormat::Printer printer;
  printer.PrintToString(full, &out);
  return out;
}

}  // namespace loom
