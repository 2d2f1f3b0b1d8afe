// `sweep`: FLOP-budgeted scaling sweeps: plan, submit (local or Slurm), status, collect, fit, plot.
//
//   sweep plan --base=launch/configs/lm/tiny.textproto --families=dense,lowrank32 \
//       --budgets=3e12,1e13 --sizes=64x2,96x3,128x4 --out=sweeps/s1 [--set=a.b=v]...
//   sweep submit sweeps/s1 --scheduler=local            # one after another, on this machine
//   sweep submit sweeps/s1 --scheduler=slurm [--max_parallel=4] [--sbatch_args="-p gpu"]
//   sweep status sweeps/s1
//   sweep collect sweeps/s1                             # results.csv + results.json
//   sweep fit sweeps/s1 [--bootstrap=20] [--budget=1e21]
//   sweep plot sweeps/s1                                # loss_vs_flops.png, fit_residuals.png
//
// plan writes one resolved run config per (family, budget, size) point, with max_steps chosen so
// that the run's training FLOPs (core/flops.h, self-guided correction included) are as close to
// the budget as whole steps allow, and sweep.json listing every point with its params, tokens
// and planned FLOPs. Families (spec structured_ffn.md §2.7): dense, lowrank63 (R = d/2),
// lowrank32 (R = d/4), blockdense63 (B = 4, R = 3d/4), blockdense32 (R = 3d/8), blockshuffle63
// (B = 2), blockshuffle32 (B = 4), lowrank32_sgt (self-guided, fixedflop). A size is
// d_model x layers, with d_model / 32 heads.
//
// Every point runs `train` in sweeps/s1/runs/<name> with checkpoints, so a killed or preempted
// point resumes where it stopped. On Slurm, the array job gets --signal=B:USR1@<grace>; the batch
// script forwards USR1 to train (which checkpoints and exits 0) and requeues the array element.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/flops.h"
#include "core/json.h"
#include "core/scaling_fit.h"
#include "core/status_macros.h"
#include "core/subprocess.h"

namespace loom {
namespace {

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  std::vector<std::string> sets;
  std::string Flag(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      const size_t eq = s.find('=');
      const std::string key = s.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const std::string val = eq == std::string::npos ? "true" : s.substr(eq + 1);
      if (key == "set") {
        a.sets.push_back(val);
      } else {
        a.flags[key] = val;
      }
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string SelfDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

// ---- plan -----------------------------------------------------------------------------------

absl::Status ApplyFamily(const std::string& family, int64_t d, RunConfig* c) {
  FfnConfig* f = c->mutable_model()->mutable_ffn();
  c->mutable_schedule()->mutable_self_guided()->set_enabled(false);
  f->set_first_layer_dense(true);
  if (family == "dense") {
    f->set_type("dense");
  } else if (family == "lowrank63" || family == "lowrank32" || family == "lowrank32_sgt") {
    f->set_type("lowrank");
    f->set_rank(family == "lowrank63" ? d / 2 : d / 4);
    if (family == "lowrank32_sgt") {
      SelfGuidedConfig* sg = c->mutable_schedule()->mutable_self_guided();
      sg->set_enabled(true);
      sg->set_mode("fixedflop");
    }
  } else if (family == "blockdense63" || family == "blockdense32") {
    f->set_type("blockdense");
    f->set_nblocks(4);
    f->set_rank(family == "blockdense63" ? 3 * d / 4 : 3 * d / 8);
  } else if (family == "blockshuffle63" || family == "blockshuffle32") {
    f->set_type("blockshuffle");
    f->set_nblocks(family == "blockshuffle63" ? 2 : 4);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown family \"", family, "\" (dense, lowrank63, lowrank32, blockdense63, "
        "blockdense32, blockshuffle63, blockshuffle32, lowrank32_sgt)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> ParseDoubles(const std::string& s, const char* what) {
  std::vector<double> out;
  for (absl::string_view p : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    double v;
    if (!absl::SimpleAtod(p, &v) || !(v > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("--", what, ": \"", p, "\" is not a positive number"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("--", what, " is required"));
  return out;
}

absl::Status Plan(const Args& a) {
  const std::string base = a.Flag("base"), out = a.Flag("out");
  if (base.empty() || out.empty()) {
    return absl::InvalidArgumentError("usage: sweep plan --base=CONFIG --families=... --budgets=... --sizes=DxL,... --out=DIR");
  }
  if (FileExists(out + "/sweep.json")) {
    return absl::FailedPreconditionError(absl::StrCat(out, " already holds a planned sweep"));
  }
  LOOM_ASSIGN_OR_RETURN(RunConfig base_cfg, LoadRunConfig(ResolveInvocationPath(base), a.sets));
  LOOM_ASSIGN_OR_RETURN(std::vector<double> budgets, ParseDoubles(a.Flag("budgets"), "budgets"));
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (absl::string_view p : absl::StrSplit(a.Flag("sizes"), ',', absl::SkipEmpty())) {
    std::vector<std::string> dl = absl::StrSplit(p, 'x');
    int64_t d = 0, l = 0;
    if (dl.size() != 2 || !absl::SimpleAtoi(dl[0], &d) || !absl::SimpleAtoi(dl[1], &l) ||
        d < 32 || d % 32 != 0 || l < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sizes: \"", p, "\" is not DxL with D a multiple of 32 (e.g. 64x2)"));
    }
    sizes.push_back({d, l});
  }
  if (sizes.empty()) return absl::InvalidArgumentError("--sizes is required, e.g. 64x2,128x4");
  std::vector<std::string> families = absl::StrSplit(a.Flag("families", "dense"), ',', absl::SkipEmpty());
  const std::string out_abs = Absolute(ResolveInvocationPath(out));
  LOOM_RETURN_IF_ERROR(MakeDirs(out_abs + "/points"));
  Json points = Json::MakeArray();
  int index = 0;
  for (const std::string& family : families) {
    for (double budget : budgets) {
      for (auto [d, l] : sizes) {
        RunConfig c = base_cfg;
        c.mutable_model()->set_d_model(d);
        c.mutable_model()->set_num_layers(l);
        c.mutable_model()->mutable_mixer()->set_num_heads(d / 32);
        // Widths that default from d_model must follow the new size, not the base's.
        c.mutable_model()->mutable_mixer()->clear_num_kv_heads();
        c.mutable_model()->mutable_mixer()->clear_attn_dim();
        c.mutable_model()->mutable_ffn()->clear_hidden_dim();
        LOOM_RETURN_IF_ERROR(ApplyFamily(family, d, &c));
        const std::string name = absl::StrFormat("%03d_%s_d%d_l%d_c%.0e", index, family, d, l, budget);
        c.set_name(name);
        // Steps so that the run's FLOPs meet the budget (FLOPs are affine in max_steps, the
        // fixedflop repeat included); then the closest whole number of steps.
        c.mutable_train()->set_max_steps(1000);
        LOOM_RETURN_IF_ERROR(ResolveDefaults(&c));
        const double per_step = ComputeRunFlops(c).train_flops / 1000.0;
        int64_t steps = std::max<int64_t>(1, std::llround(budget / per_step));
        c.mutable_train()->set_max_steps(steps);
        if (c.checkpoint().every_steps() == 0) {
          c.mutable_checkpoint()->set_every_steps(std::max<int64_t>(1, steps / 10));
        }
        LOOM_RETURN_IF_ERROR(ValidateRunConfig(c));
        const RunFlops rf = ComputeRunFlops(c);
        const std::string path = absl::StrCat(out_abs, "/points/", name, ".textproto");
        LOOM_RETURN_IF_ERROR(WriteFileAtomically(path, RunConfigToText(c)));
        Json p = Json::MakeObject();
        p["index"] = index;
        p["name"] = name;
        p["family"] = family;
        p["budget"] = budget;
        p["d_model"] = static_cast<long long>(d);
        p["num_layers"] = static_cast<long long>(l);
        p["params"] = static_cast<long long>(rf.params);
        p["tokens"] = static_cast<long long>(rf.tokens);
        p["max_steps"] = static_cast<long long>(steps);
        p["total_steps"] = static_cast<long long>(rf.total_steps);  // + the fixedflop repeat
        p["flops"] = rf.train_flops;
        p["config"] = path;
        p["run_dir"] = absl::StrCat(out_abs, "/runs/", name);
        points.push_back(p);
        std::printf("%-40s params %9lld  steps %6lld  tokens %10lld  flops %.3e (budget %.3e)\n",
                    name.c_str(), static_cast<long long>(rf.params), static_cast<long long>(steps),
                    static_cast<long long>(rf.tokens), rf.train_flops, budget);
        ++index;
      }
    }
  }
  Json sweep = Json::MakeObject();
  sweep["base"] = Absolute(ResolveInvocationPath(base));
  sweep["points"] = points;
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(out_abs + "/sweep.json", sweep.Dump() + "\n"));
  std::printf("planned %d runs in %s/sweep.json\n", index, out_abs.c_str());
  return absl::OkStatus();
}

// ---- state of the runs ----------------------------------------------------------------------

absl::StatusOr<Json> LoadSweep(const std::string& dir) {
  const std::string path = ResolveInvocationPath(dir) + "/sweep.json";
  LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  absl::StatusOr<Json> j = Json::Parse(text);
  if (!j.ok()) return absl::DataLossError(absl::StrCat(path, ": ", j.status().message()));
  if (!(*j)["points"].is_array()) return absl::DataLossError(absl::StrCat(path, ": no points"));
  return j;
}

struct RunState {
  std::string state = "planned";  // planned | running | done | failed
  bool resumed = false;
  int64_t steps = 0;
  double train_loss = NAN, val_loss = NAN, flops = NAN, tokens_per_s = NAN;
};

RunState ReadRunState(const Json& point) {
  RunState r;
  const std::string dir = point["run_dir"].as_string();
  absl::StatusOr<std::string> text = ReadFileToString(dir + "/metrics.jsonl");
  if (!text.ok()) return r;
  r.state = "running";
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    absl::StatusOr<Json> rec = Json::Parse(line);
    if (!rec.ok()) continue;
    if (rec->contains("event") && (*rec)["event"].as_string() == "resumed") r.resumed = true;
    if (rec->contains("loss")) {
      r.steps = (*rec)["step"].as_int64();
      r.train_loss = (*rec)["loss"].as_double();
      r.flops = (*rec)["flops"].as_double();
      r.tokens_per_s = (*rec)["tokens_per_s"].as_double();
    }
    if (rec->contains("val_loss")) r.val_loss = (*rec)["val_loss"].as_double();
  }
  if (FileExists(dir + "/model.safetensors")) r.state = "done";
  if (FileExists(dir + "/FAILED")) r.state = "failed";
  return r;
}

// ---- submit ---------------------------------------------------------------------------------

absl::Status Submit(const Args& a) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: sweep submit DIR --scheduler=local|slurm");
  const std::string dir = Absolute(ResolveInvocationPath(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(Json sweep, LoadSweep(dir));
  const std::string train = a.Flag("train", SelfDir() + "/../launch/train");
  if (access(train.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("train binary ", train, " not found; pass --train=PATH"));
  }
  const std::string scheduler = a.Flag("scheduler", "local");
  const Json::ArrayType& points = sweep["points"].array();
  if (scheduler == "local") {
    int done = 0, failed = 0;
    for (const Json& p : points) {
      RunState st = ReadRunState(p);
      if (st.state == "done") {
        ++done;
        continue;
      }
      const std::string run_dir = p["run_dir"].as_string();
      MakeDirs(run_dir).IgnoreError();
      std::printf("[%d/%zu] %s ...\n", static_cast<int>(p["index"].as_int64()) + 1, points.size(),
                  p["name"].as_string().c_str());
      std::fflush(stdout);
      const int rc = RunCommand({train, "--config=" + p["config"].as_string(),
                                 "--run_dir=" + run_dir, "--set=logging.progress=plain"},
                                run_dir + "/train.log");
      if (rc == 0 && ReadRunState(p).state == "done") {
        ++done;
      } else {
        ++failed;
        std::printf("  failed (exit %d); see %s/train.log\n", rc, run_dir.c_str());
      }
    }
    std::printf("local sweep: %d done, %d failed of %zu\n", done, failed, points.size());
    return failed == 0 ? absl::OkStatus()
                       : absl::InternalError(absl::StrCat(failed, " runs failed"));
  }
  if (scheduler != "slurm") {
    return absl::InvalidArgumentError(absl::StrCat("--scheduler=", scheduler, ": expected local or slurm"));
  }
  // One array element per point; the script traps USR1 (sent --signal seconds before the time
  // limit or on preemption), forwards it to train (checkpoint + exit 0) and requeues itself.
  const std::string max_parallel = a.Flag("max_parallel", "4");
  const std::string grace = a.Flag("signal_seconds", "120");
  const std::string ntasks = a.Flag("ntasks", "1");
  std::string configs, runs;
  for (const Json& p : points) {
    absl::StrAppend(&configs, " \"", p["config"].as_string(), "\"");
    absl::StrAppend(&runs, " \"", p["run_dir"].as_string(), "\"");
  }
  const std::string script = absl::StrCat(
      "#!/bin/bash\n"
      "#SBATCH --job-name=loom-sweep\n"
      "#SBATCH --array=0-", points.size() - 1, "%", max_parallel, "\n",
      "#SBATCH --ntasks=", ntasks, "\n",
      "#SBATCH --signal=B:USR1@", grace, "\n",
      "#SBATCH --requeue\n"
      "#SBATCH --open-mode=append\n"
      "#SBATCH --output=", dir, "/slurm/%A_%a.out\n",
      "CONFIGS=(", configs, " )\n",
      "RUNS=(", runs, " )\n",
      "i=$SLURM_ARRAY_TASK_ID\n"
      "mkdir -p \"${RUNS[$i]}\"\n"
      "echo \"$(date -u +%FT%TZ) start task $i job ${SLURM_ARRAY_JOB_ID}_${i} restart ${SLURM_RESTART_COUNT:-0}\" >> \"${RUNS[$i]}/slurm_events.log\"\n"
      "srun --kill-on-bad-exit=1 \"", train, "\" --config=\"${CONFIGS[$i]}\" --run_dir=\"${RUNS[$i]}\" "
      "--set=logging.progress=plain &\n"
      "child=$!\n"
      "trap 'echo \"$(date -u +%FT%TZ) USR1: checkpoint and requeue\" >> \"${RUNS[$i]}/slurm_events.log\"; "
      "kill -USR1 $child; wait $child; scontrol requeue ${SLURM_ARRAY_JOB_ID}_${i}; exit 0' USR1\n"
      "wait $child\n"
      "rc=$?\n"
      "[ $rc -ne 0 ] && echo \"exit $rc\" > \"${RUNS[$i]}/FAILED\"\n"
      "exit $rc\n");
  LOOM_RETURN_IF_ERROR(MakeDirs(dir + "/slurm"));
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/slurm/sweep.sbatch", script));
  std::vector<std::string> cmd = {"sbatch", "--parsable"};
  for (absl::string_view extra : absl::StrSplit(a.Flag("sbatch_args"), ' ', absl::SkipEmpty())) {
    cmd.push_back(std::string(extra));
  }
  cmd.push_back(dir + "/slurm/sweep.sbatch");
  const int rc = RunCommand(cmd, dir + "/slurm/submit.log");
  LOOM_ASSIGN_OR_RETURN(std::string out, ReadFileToString(dir + "/slurm/submit.log"));
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("sbatch failed (exit ", rc, "): ", out));
  }
  std::printf("submitted %s/slurm/sweep.sbatch: %s", dir.c_str(), out.c_str());
  return absl::OkStatus();
}

// ---- status / collect -----------------------------------------------------------------------

absl::Status Collect(const Args& a, bool write_files) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: sweep status|collect DIR");
  const std::string dir = Absolute(ResolveInvocationPath(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(Json sweep, LoadSweep(dir));
  std::string csv = "name,family,budget,d_model,num_layers,params,tokens,planned_flops,flops,steps,"
                    "total_steps,train_loss,val_loss,tokens_per_s,state,resumed\n";
  Json rows = Json::MakeArray();
  std::map<std::string, int> counts;
  std::printf("%-40s %-8s %8s/%-8s %10s %10s %s\n", "run", "state", "step", "steps", "train",
              "val", "");
  for (const Json& p : sweep["points"].array()) {
    const RunState st = ReadRunState(p);
    counts[st.state]++;
    std::printf("%-40s %-8s %8lld/%-8lld %10.4f %10.4f %s\n", p["name"].as_string().c_str(),
                st.state.c_str(), static_cast<long long>(st.steps),
                static_cast<long long>(p["total_steps"].as_int64()), st.train_loss, st.val_loss,
                st.resumed ? "(resumed from a checkpoint)" : "");
    absl::StrAppendFormat(&csv, "%s,%s,%.6g,%d,%d,%d,%d,%.6g,%.6g,%d,%d,%.6f,%.6f,%.1f,%s,%d\n",
                          p["name"].as_string(), p["family"].as_string(), p["budget"].as_double(),
                          p["d_model"].as_int64(), p["num_layers"].as_int64(),
                          p["params"].as_int64(), p["tokens"].as_int64(), p["flops"].as_double(),
                          st.flops, st.steps, p["total_steps"].as_int64(), st.train_loss,
                          st.val_loss, st.tokens_per_s, st.state, st.resumed ? 1 : 0);
    Json r = p;
    r["state"] = st.state;
    r["resumed"] = st.resumed;
    r["steps"] = static_cast<long long>(st.steps);
    r["train_loss"] = std::isnan(st.train_loss) ? Json() : Json(st.train_loss);
    r["val_loss"] = std::isnan(st.val_loss) ? Json() : Json(st.val_loss);
    r["measured_flops"] = std::isnan(st.flops) ? Json() : Json(st.flops);
    rows.push_back(r);
  }
  std::printf("%d done, %d running, %d planned, %d failed\n", counts["done"], counts["running"],
              counts["planned"], counts["failed"]);
  if (write_files) {
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/results.csv", csv));
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/results.json", rows.Dump() + "\n"));
    std::printf("wrote %s/results.csv and results.json\n", dir.c_str());
  }
  return absl::OkStatus();
}

// ---- fit ------------------------------------------------------------------------------------

absl::Status Fit(const Args& a) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: sweep fit DIR");
  const std::string dir = Absolute(ResolveInvocationPath(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(Json sweep, LoadSweep(dir));
  std::map<std::string, std::vector<ScalingPoint>> by_family;
  std::vector<ScalingPoint> all;
  for (const Json& p : sweep["points"].array()) {
    const RunState st = ReadRunState(p);
    if (st.state != "done" || std::isnan(st.val_loss)) continue;
    ScalingPoint s;
    s.params = static_cast<double>(p["params"].as_int64());
    s.tokens = static_cast<double>(p["tokens"].as_int64());
    s.flops = p["flops"].as_double();
    s.loss = st.val_loss;
    s.family = p["family"].as_string();
    by_family[s.family].push_back(s);
    all.push_back(s);
  }
  if (all.empty()) return absl::FailedPreconditionError(absl::StrCat("no finished runs in ", dir));
  Json out = Json::MakeObject();
  Json laws = Json::MakeObject();
  std::printf("loss vs compute, per family (L = k C^slope, least squares in log-log):\n");
  for (const auto& [family, pts] : by_family) {
    absl::StatusOr<PowerLawFit> f = FitLossVsCompute(pts);
    if (!f.ok()) {
      std::printf("  %-16s %s\n", family.c_str(), std::string(f.status().message()).c_str());
      continue;
    }
    std::printf("  %-16s k = %.5g  slope = %.5f  R^2 = %.4f  (%d runs)\n", family.c_str(),
                f->coefficient, f->slope, f->r2, f->points);
    Json j = Json::MakeObject();
    j["k"] = f->coefficient;
    j["slope"] = f->slope;
    j["r2"] = f->r2;
    j["runs"] = f->points;
    laws[family] = j;
  }
  out["power_laws"] = laws;
  ChinchillaFitOptions o;
  int64_t boot = 0;
  if (absl::SimpleAtoi(a.Flag("bootstrap", "20"), &boot)) o.bootstrap = static_cast<int>(boot);
  // The parametric fit needs one family (N and D mean the same thing); the first with >= 5 runs.
  for (const auto& [family, pts] : by_family) {
    if (pts.size() < 5) continue;
    LOOM_ASSIGN_OR_RETURN(ChinchillaFit f, FitChinchilla(pts, o));
    std::printf("parametric fit, %s (%zu runs, %d bootstrap resamples):\n"
                "  L(N, D) = E + A / N^alpha + B / D^beta\n"
                "  E = %.6g +- %.2g   A = %.6g +- %.2g   B = %.6g +- %.2g\n"
                "  alpha = %.6g +- %.2g   beta = %.6g +- %.2g   (mean Huber loss %.3g)\n",
                family.c_str(), pts.size(), f.bootstrap_samples, f.E, f.E_se, f.A, f.A_se, f.B,
                f.B_se, f.alpha, f.alpha_se, f.beta, f.beta_se, f.objective);
    Json j = Json::MakeObject();
    j["family"] = family;
    for (auto [k, v] : std::vector<std::pair<const char*, double>>{
             {"E", f.E}, {"A", f.A}, {"B", f.B}, {"alpha", f.alpha}, {"beta", f.beta},
             {"E_se", f.E_se}, {"A_se", f.A_se}, {"B_se", f.B_se}, {"alpha_se", f.alpha_se},
             {"beta_se", f.beta_se}, {"objective", f.objective}}) {
      j[k] = v;
    }
    double budget = 0;
    if (absl::SimpleAtod(a.Flag("budget"), &budget) && budget > 0) {
      auto [n, d] = f.ComputeOptimal(budget);
      std::printf("  compute-optimal at C = %.3g: N = %.4g parameters, D = %.4g tokens\n", budget,
                  n, d);
      j["optimal_budget"] = budget;
      j["optimal_params"] = n;
      j["optimal_tokens"] = d;
    }
    out["parametric"] = j;
    break;
  }
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/fit.json", out.Dump() + "\n"));
  std::printf("wrote %s/fit.json\n", dir.c_str());
  return absl::OkStatus();
}

// ---- plot (matplotlib, the pinned Python) ----------------------------------------------------

absl::Status Plot(const Args& a) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: sweep plot DIR");
  const std::string dir = Absolute(ResolveInvocationPath(a.positional[0]));
  if (!FileExists(dir + "/results.json") || !FileExists(dir + "/fit.json")) {
    return absl::FailedPreconditionError(absl::StrCat("run `sweep collect ", dir, "` and `sweep fit ",
                                                      dir, "` first"));
  }
  const std::string script = R"PY(
import json, sys, math
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
d = sys.argv[1]
rows = [r for r in json.load(open(f"{d}/results.json")) if r["state"] == "done" and r["val_loss"]]
fit = json.load(open(f"{d}/fit.json"))
fams = sorted({r["family"] for r in rows})
fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
for i, f in enumerate(fams):
    pts = sorted((r["flops"], r["val_loss"]) for r in rows if r["family"] == f)
    c = f"C{i}"
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=c, label=f, zorder=3)
    law = fit["power_laws"].get(f)
    if law and len(pts) > 1:
        xs = [pts[0][0] * (pts[-1][0] / pts[0][0]) ** (k / 50) for k in range(51)]
        ax.plot(xs, [law["k"] * x ** law["slope"] for x in xs], color=c,
                label=f"{f}: L = {law['k']:.3g} C^{law['slope']:.4f}")
ax.set_xscale("log"); ax.set_yscale("log")
ax.set_xlabel("training FLOPs"); ax.set_ylabel("validation loss")
ax.set_title("loss vs compute")
ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
fig.savefig(f"{d}/loss_vs_flops.png", dpi=120)
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
p = fit.get("parametric")
if p:
    pts = [r for r in rows if r["family"] == p["family"]]
    pred = [p["E"] + p["A"] / r["params"] ** p["alpha"] + p["B"] / r["tokens"] ** p["beta"] for r in pts]
    ax.scatter([r["flops"] for r in pts], [math.log(r["val_loss"] / q) for r, q in zip(pts, pred)])
    ax.axhline(0, color="gray", lw=1)
    ax.set_title(f"parametric fit residuals ({p['family']}): log(L / L_hat)")
else:
    ax.set_title("no parametric fit (fewer than 5 finished runs in a family)")
ax.set_xscale("log"); ax.set_xlabel("training FLOPs"); ax.set_ylabel("log residual")
fig.savefig(f"{d}/fit_residuals.png", dpi=120)
print(f"wrote {d}/loss_vs_flops.png and {d}/fit_residuals.png")
)PY";
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/plot.py", script));
  const std::string python = a.Flag("python", "python3");
  const int rc = RunCommand({python, dir + "/plot.py", dir}, dir + "/plot.log");
  LOOM_ASSIGN_OR_RETURN(std::string log, ReadFileToString(dir + "/plot.log"));
  std::printf("%s", log.c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("plotting failed (", python, " exit ", rc, ")"));
  return absl::OkStatus();
}

constexpr char kUsage[] =
    "usage: sweep plan --base=CONFIG --families=F,.. --budgets=C,.. --sizes=DxL,.. --out=DIR [--set=..]\n"
    "       sweep submit DIR --scheduler=local|slurm [--max_parallel=N] [--sbatch_args=\"...\"]\n"
    "       sweep status DIR | collect DIR | fit DIR [--bootstrap=N] [--budget=C] | plot DIR\n";

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  auto args = loom::ParseArgs(argc, argv);
  if (!args.ok() || args->command.empty() || args->command == "help") {
    std::fprintf(stderr, "%s", loom::kUsage);
    return 2;
  }
  absl::Status s;
  try {
    if (args->command == "plan") s = loom::Plan(*args);
    else if (args->command == "submit") s = loom::Submit(*args);
    else if (args->command == "status") s = loom::Collect(*args, false);
    else if (args->command == "collect") s = loom::Collect(*args, true);
    else if (args->command == "fit") s = loom::Fit(*args);
    else if (args->command == "plot") s = loom::Plot(*args);
    else s = absl::InvalidArgumentError(absl::StrCat("unknown command \"", args->command, "\"\n", loom::kUsage));
  } catch (const std::exception& e) {
    s = absl::InternalError(e.what());
  }
  if (!s.ok()) {
    std::fprintf(stderr, "sweep: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
