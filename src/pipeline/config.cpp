// YAML run configuration (see include/uqmerge/pipeline/config.hpp).
#include "uqmerge/pipeline/config.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "uqmerge/util/error.hpp"

namespace uqmerge::pipeline {

namespace fs = std::filesystem;

namespace {

struct Ctx {
  std::string file;
  fs::path base;
  [[noreturn]] void bad(const std::string& key, const std::string& msg) const { throw_bad_input(file, key + ": " + msg); }
  void keys(const YAML::Node& n, const std::string& where, const std::set<std::string>& valid) const {
    if (!n.IsMap()) bad(where, "must be a mapping");
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (!valid.count(k)) {
        std::string list;
        for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
        bad(where.empty() ? k : where + "." + k, "unknown key (valid: " + list + ")");
      }
    }
  }
  template <typename T>
  T get(const YAML::Node& n, const std::string& key, const T& def) const {
    if (!n[key]) return def;
    try {
      return n[key].as<T>();
    } catch (const YAML::Exception&) {
      bad(key, "has the wrong type");
    }
  }
  fs::path path(const std::string& p) const {
    fs::path x(p);
    return x.is_relative() ? base / x : x;
  }
};

std::vector<data::DatasetSpec> parse_datasets(const Ctx& x, const YAML::Node& ds, const std::string& where) {
  if (!ds || !ds.IsSequence() || ds.size() == 0) x.bad(where, "a non-empty list of {name, path}");
  std::vector<data::DatasetSpec> out;
  std::set<std::string> dnames;
  for (const auto& d : ds) {
    x.keys(d, where + "[]", {"name", "path", "limit", "pad_options_to", "extra_options"});
    data::DatasetSpec s;
    if (!d["path"]) x.bad(where + "[]", "each dataset needs 'path'");
    s.path = x.path(d["path"].as<std::string>());
    s.name = x.get<std::string>(d, "name", s.path.stem().string());
    s.limit = x.get<int64_t>(d, "limit", -1);
    s.pad_options_to = x.get<int>(d, "pad_options_to", 0);
    s.extra_options = x.get<bool>(d, "extra_options", true);
    if (!dnames.insert(s.name).second) x.bad(where, "two datasets named '" + s.name + "'");
    out.push_back(s);
  }
  return out;
}

}  // namespace

RunConfig load_config(const fs::path& file) {
  RunConfig c;
  c.source = file;
  std::ifstream in(file);
  if (!in) throw_bad_input(file.string(), "cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  c.yaml = ss.str();
  YAML::Node root;
  try {
    root = YAML::Load(c.yaml);
  } catch (const YAML::Exception& e) {
    throw_bad_input(file.string(), std::string("not valid YAML: ") + e.what());
  }
  const Ctx x{file.string(), file.has_parent_path() ? file.parent_path() : fs::path(".")};
  x.keys(root, "", {"output_dir", "seed", "dtype", "threads", "backend", "device", "watchdog", "vision_tower", "candidates",
                    "models", "uq", "merge", "selection", "base_model", "baselines", "evaluation"});
  c.output_dir = x.path(x.get<std::string>(root, "output_dir", c.output_dir.string()));
  c.seed = x.get<uint64_t>(root, "seed", c.seed);
  const std::string dtype = x.get<std::string>(root, "dtype", "float32");
  const auto dt = parse_torch_dtype(dtype);
  if (!dt || !(*dt == DType::F32 || *dt == DType::BF16 || *dt == DType::F16)) x.bad("dtype", "'" + dtype + "' (valid: float32, bfloat16, float16)");
  c.dtype = *dt;
  c.threads = x.get<int>(root, "threads", 0);
  c.backend = x.get<std::string>(root, "backend", c.backend);
  if (c.backend != "auto" && c.backend != "mpi" && c.backend != "nccl")
    x.bad("backend", "'" + c.backend + "' (valid: auto, mpi, nccl)");
  if (const YAML::Node w = root["watchdog"]) {
    x.keys(w, "watchdog", {"heartbeat_s", "stale_s", "timeout_s"});
    dist::WatchdogOptions& wo = c.watchdog;
    wo.heartbeat_s = x.get<double>(w, "heartbeat_s", wo.heartbeat_s);
    wo.stale_s = x.get<double>(w, "stale_s", wo.stale_s);
    wo.timeout_s = x.get<double>(w, "timeout_s", wo.timeout_s);
    if (!(wo.heartbeat_s > 0 && wo.heartbeat_s <= 60)) x.bad("watchdog.heartbeat_s", "must be in (0, 60] seconds");
    if (!(wo.stale_s == 0 || wo.stale_s >= 3 * wo.heartbeat_s))
      x.bad("watchdog.stale_s", "must be 0 (off) or at least 3 x watchdog.heartbeat_s (a shared file system delays beats)");
    if (!(wo.timeout_s >= 0)) x.bad("watchdog.timeout_s", "must be 0 (no limit) or a positive number of seconds");
  }
  c.device = x.get<std::string>(root, "device", c.device);
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda") x.bad("device", "'" + c.device + "' (valid: auto, cpu, cuda)");
  if (root["vision_tower"]) c.vision_tower = x.path(x.get<std::string>(root, "vision_tower", ""));
  const YAML::Node models = root["candidates"] ? root["candidates"] : root["models"];
  if (!models || !models.IsSequence() || models.size() == 0) x.bad("candidates", "a non-empty list of {model: DIR}");
  std::set<std::string> names;
  for (const auto& m : models) {
    ModelEntry e;
    if (m.IsScalar()) {
      e.path = x.path(m.as<std::string>());
    } else {
      x.keys(m, "candidates[]", {"model", "name", "parameters"});
      if (!m["model"]) x.bad("candidates[]", "each entry needs 'model: DIR'");
      e.path = x.path(m["model"].as<std::string>());
      e.name = x.get<std::string>(m, "name", "");
      if (const YAML::Node p = m["parameters"]) merge::parse_model_parameters(p, x.file, "candidates[].parameters", e.parameters);
    }
    if (e.name.empty()) e.name = e.path.filename().string();
    if (!names.insert(e.name).second) x.bad("candidates", "two candidates named '" + e.name + "' (set name: to tell them apart)");
    c.models.push_back(e);
  }
  c.merge.source = x.file;
  c.merge.seed = c.seed;
  if (root["base_model"]) c.merge.base_model = x.path(x.get<std::string>(root, "base_model", ""));
  if (const YAML::Node mg = root["merge"]) merge::parse_merge_section(mg, x.file, c.merge);
  merge::validate(c.merge, c.models);  // method, parameter names and ranges, duplicates: before any compute
  if (const YAML::Node sel = root["selection"]) {
    x.keys(sel, "selection", {"order", "rule", "patience", "screen"});
    c.order = x.get<std::string>(sel, "order", c.order);
    c.rule = x.get<std::string>(sel, "rule", c.rule);
    c.patience = x.get<int>(sel, "patience", 1);
    if (c.order != "descending" && c.order != "ascending" && c.order != "given")
      x.bad("selection.order", "'" + c.order + "' (valid: descending, ascending, given)");
    if (c.rule != "global_min" && c.rule != "early_stop") x.bad("selection.rule", "'" + c.rule + "' (valid: global_min, early_stop)");
    if (c.patience < 1) x.bad("selection.patience", "must be at least 1");
    if (const YAML::Node sc = sel["screen"]) {  // `screen: true` or a map with the thresholds
      ScreenOptions& so = c.screen;
      if (sc.IsScalar()) {
        so.enabled = x.get<bool>(sel, "screen", false);
      } else {
        x.keys(sc, "selection.screen", {"enabled", "max_mode_share", "min_sensitivity_ratio", "min_agreement_ratio"});
        so.enabled = x.get<bool>(sc, "enabled", true);
        so.max_mode_share = x.get<double>(sc, "max_mode_share", so.max_mode_share);
        so.min_sensitivity_ratio = x.get<double>(sc, "min_sensitivity_ratio", so.min_sensitivity_ratio);
        so.min_agreement_ratio = x.get<double>(sc, "min_agreement_ratio", so.min_agreement_ratio);
      }
      if (!(so.max_mode_share > 0 && so.max_mode_share <= 1))
        x.bad("selection.screen.max_mode_share", "must be in (0, 1] (1: flag only a candidate giving one answer to every sample)");
      if (!(so.min_sensitivity_ratio >= 0 && so.min_sensitivity_ratio <= 1))
        x.bad("selection.screen.min_sensitivity_ratio", "must be in [0, 1] (0: never flag for ignoring the image)");
      if (!(so.min_agreement_ratio >= 0 && so.min_agreement_ratio <= 1))
        x.bad("selection.screen.min_agreement_ratio", "must be in [0, 1] (0: never flag for disagreeing)");
    }
  }
  const YAML::Node u = root["uq"];
  if (!u) x.bad("uq", "missing (perturbations, datasets, ...)");
  x.keys(u, "uq", {"perturbations", "repeats", "attention_dropout", "text_perturbation", "image_perturbation", "template",
                   "image_aspect", "batch_size", "cache_memory_mb", "cache_dir", "datasets", "augmix",
                   "save_distributions"});
  uq::UqOptions& o = c.uq;
  o.plan.seed = c.seed;
  o.plan.perturbations = x.get<int>(u, "perturbations", 4);
  if (o.plan.perturbations < 1 || o.plan.perturbations > 1024) x.bad("uq.perturbations", "must be in 1..1024");
  o.plan.repeats = x.get<int>(u, "repeats", 1);
  if (o.plan.repeats < 1 || o.plan.repeats > 100) x.bad("uq.repeats", "must be in 1..100 (independent perturbation seeds, averaged)");
  o.plan.attention_dropout = x.get<double>(u, "attention_dropout", 0.1);
  if (!(o.plan.attention_dropout >= 0 && o.plan.attention_dropout < 1)) x.bad("uq.attention_dropout", "must be in [0, 1)");
  o.plan.text = perturb::parse_text_mode(x.get<std::string>(u, "text_perturbation", "prepend_prompt"));
  o.plan.image = x.get<bool>(u, "image_perturbation", true);
  o.conv_template = model::parse_template(x.get<std::string>(u, "template", "llava_v1"));
  o.image_aspect = x.get<std::string>(u, "image_aspect", "");
  if (!o.image_aspect.empty()) model::parse_aspect_mode(o.image_aspect);
  o.batch_size = x.get<int>(u, "batch_size", 4);
  o.save_distributions = x.get<bool>(u, "save_distributions", false);
  if (o.batch_size < 1) x.bad("uq.batch_size", "must be at least 1");
  c.cache_memory_mb = x.get<uint64_t>(u, "cache_memory_mb", c.cache_memory_mb);
  c.cache_dir = u["cache_dir"] ? x.path(u["cache_dir"].as<std::string>()) : c.output_dir / "cache";
  if (const YAML::Node a = u["augmix"]) {
    x.keys(a, "uq.augmix", {"severity", "mixture_width", "chain_depth", "alpha", "all_ops"});
    o.augmix.severity = x.get<int>(a, "severity", 3);
    o.augmix.mixture_width = x.get<int>(a, "mixture_width", 3);
    o.augmix.chain_depth = x.get<int>(a, "chain_depth", -1);
    o.augmix.alpha = x.get<double>(a, "alpha", 1.0);
    o.augmix.all_ops = x.get<bool>(a, "all_ops", true);
    if (o.augmix.severity < 1 || o.augmix.severity > 10) x.bad("uq.augmix.severity", "must be in 1..10");
    if (o.augmix.mixture_width < 1) x.bad("uq.augmix.mixture_width", "must be at least 1");
    if (o.augmix.chain_depth > 10) x.bad("uq.augmix.chain_depth", "must be at most 10 (0 or -1: uniform in 1..3)");
    if (!(o.augmix.alpha > 0)) x.bad("uq.augmix.alpha", "must be positive");
  }
  c.datasets = parse_datasets(x, u["datasets"], "uq.datasets");
  if (const YAML::Node b = root["baselines"]) {
    x.keys(b, "baselines", {"merge_all", "random_k", "ascending", "accuracy_guided"});
    auto& bl = c.baselines;
    bl.merge_all = x.get<bool>(b, "merge_all", false);
    bl.ascending = x.get<bool>(b, "ascending", false);
    bl.accuracy_guided = x.get<bool>(b, "accuracy_guided", false);
    bl.random_seed = c.seed;
    if (const YAML::Node r = b["random_k"]) {
      x.keys(r, "baselines.random_k", {"repeats", "k", "seed", "sweep"});
      bl.random_repeats = x.get<int>(r, "repeats", 5);
      bl.random_k = x.get<int>(r, "k", 0);
      bl.random_seed = x.get<uint64_t>(r, "seed", c.seed);
      if (bl.random_repeats < 1) x.bad("baselines.random_k.repeats", "must be at least 1");
      if (bl.random_k < 0 || bl.random_k > static_cast<int>(c.models.size()))
        x.bad("baselines.random_k.k", "must be in 0.." + std::to_string(c.models.size()) + " (0: the size UQ-Merge chose)");
      if (const YAML::Node sw = r["sweep"]) {
        if (!sw.IsSequence()) x.bad("baselines.random_k.sweep", "a list of subset sizes, e.g. [2, 5, 8]");
        for (const auto& v : sw) {
          int k = 0;
          try {
            k = v.as<int>();
          } catch (const YAML::Exception&) {
            x.bad("baselines.random_k.sweep", "a list of subset sizes, e.g. [2, 5, 8]");
          }
          if (k < 1 || k > static_cast<int>(c.models.size()))
            x.bad("baselines.random_k.sweep", "sizes must be in 1.." + std::to_string(c.models.size()) + ", got " + std::to_string(k));
          bl.random_sweep.push_back(k);
        }
      }
    }
  }
  if (const YAML::Node e = root["evaluation"]) {
    x.keys(e, "evaluation", {"datasets"});
    c.eval_datasets = parse_datasets(x, e["datasets"], "evaluation.datasets");
  }
  if (c.baselines.accuracy_guided && c.eval_datasets.empty())
    x.bad("baselines.accuracy_guided", "needs labelled data: add evaluation.datasets");
  return c;
}

}  // namespace uqmerge::pipeline
