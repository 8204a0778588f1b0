// The one merge-settings parser (see include/uqmerge/merge/config.hpp).
#include "uqmerge/merge/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

namespace {

// A number, or true/false as 1/0.
std::optional<double> number(const YAML::Node& v) {
  if (!v.IsScalar()) return std::nullopt;
  const std::string s = v.as<std::string>();
  if (s == "true") return 1.0;
  if (s == "false") return 0.0;
  try {
    return v.as<double>();
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

// A number or a gradient (a non-empty list of numbers).
std::optional<std::vector<double>> values(const YAML::Node& v) {
  if (const auto x = number(v)) return std::vector<double>{*x};
  if (!v.IsSequence() || v.size() == 0) return std::nullopt;
  std::vector<double> out;
  for (const auto& e : v) {
    const auto x = number(e);
    if (!x) return std::nullopt;
    out.push_back(*x);
  }
  return out;
}

ParamSetting scalar_param(const YAML::Node& v, const std::string& file, const std::string& key) {
  const std::string form = " (a number, a gradient [v0, v1, ...], or a list of {filter: NAME_PART, value: ...})";
  if (const auto vs = values(v)) return {{{"", *vs}}};
  if (!v.IsSequence() || v.size() == 0) throw_bad_input(file, key + ": must be a number" + form);
  ParamSetting out;
  for (const auto& c : v) {
    if (!c.IsMap() || !c["value"]) throw_bad_input(file, key + ": each condition needs a value" + form);
    for (const auto& kv : c)
      if (const std::string k = kv.first.as<std::string>(); k != "filter" && k != "value")
        throw_bad_input(file, key + ": condition key '" + k + "' (valid: filter, value)");
    const auto vs = values(c["value"]);
    if (!vs) throw_bad_input(file, key + ": a condition's value must be a number or a gradient");
    std::string filter = c["filter"] && !c["filter"].IsNull() ? c["filter"].as<std::string>() : "";
    if (filter == "*") filter.clear();
    out.conds.push_back({filter, *vs});
  }
  return out;
}

// mergekit's `rescale`: true = L1-norm matching (mergekit >= 0.1), false = none.
std::string parse_rescale(const YAML::Node& v, const std::string& file, const std::string& key) {
  const std::string s = v.IsScalar() ? v.as<std::string>() : "";
  if (s == "true") return "l1";
  if (s == "false") return "none";
  if (s == "density" || s == "l1" || s == "none") return s;
  throw_bad_input(file, key + ": '" + s + "' (valid: density, l1, none, true, false)");
}

void parse_global_parameters(const YAML::Node& p, const std::string& file, const std::string& where, MergeConfig& out) {
  if (!p.IsMap()) throw_bad_input(file, where + ": must be a mapping");
  for (const auto& kv : p) {
    const std::string k = kv.first.as<std::string>();
    if (k == "rescale") out.rescale = parse_rescale(kv.second, file, where + ".rescale");
    else out.global[k] = scalar_param(kv.second, file, where + "." + k);
  }
}

fs::path resolve(const fs::path& base, const std::string& p) {
  const fs::path x(p);
  return x.is_relative() ? base / x : x;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out.empty() ? "none" : out;
}

}  // namespace

std::optional<double> ParamSetting::at(const std::string& tensor, double t) const {
  for (const Cond& c : conds) {
    if (!c.filter.empty() && tensor.find(c.filter) == std::string::npos) continue;
    const auto& v = c.values;
    if (v.size() == 1) return v[0];
    // mergekit's gradient: linear between the two neighbouring entries.
    const double scaled = t * static_cast<double>(v.size() - 1);
    const auto i0 = static_cast<size_t>(scaled);
    const size_t i1 = std::min(v.size() - 1, i0 + 1);
    const double frac = scaled - static_cast<double>(i0);
    return (1 - frac) * v[i0] + frac * v[i1];
  }
  return std::nullopt;
}

void parse_model_parameters(const YAML::Node& p, const std::string& file, const std::string& where, ParamMap& out) {
  if (!p.IsMap()) throw_bad_input(file, where + ": must be a mapping");
  for (const auto& kv : p) {
    const std::string k = kv.first.as<std::string>();
    out[k] = scalar_param(kv.second, file, where + "." + k);
  }
}

void parse_merge_section(const YAML::Node& mg, const std::string& file, MergeConfig& out) {
  if (!mg.IsMap()) throw_bad_input(file, "merge: must be a mapping");
  const std::set<std::string> valid{"method", "schedule", "parameters", "resident_memory_mb"};
  for (const auto& kv : mg) {
    const std::string k = kv.first.as<std::string>();
    if (!valid.count(k)) throw_bad_input(file, "merge." + k + ": unknown key (valid: " + join(valid) + ")");
  }
  try {
    if (mg["method"]) out.method = mg["method"].as<std::string>();
    if (mg["schedule"]) out.schedule = mg["schedule"].as<std::string>();
    if (mg["resident_memory_mb"]) out.resident_bytes = mg["resident_memory_mb"].as<uint64_t>() << 20;
  } catch (const YAML::Exception&) {
    throw_bad_input(file, "merge: method and schedule must be names and resident_memory_mb a number of MiB");
  }
  if (const YAML::Node p = mg["parameters"]) parse_global_parameters(p, file, "merge.parameters", out);
}

void validate(const MergeConfig& cfg, const std::vector<ModelEntry>& models) {
  const std::string& file = cfg.source;
  const Method* m = nullptr;
  try {
    m = &find_method(cfg.method);
  } catch (const Error& e) {
    rethrow_with_context(e, file);
  }
  if (cfg.schedule != "uniform" && cfg.schedule != "cascade")
    throw_bad_input(file, "schedule: '" + cfg.schedule + "' (valid: uniform, cascade)");
  if (cfg.schedule == "cascade" && cfg.method != "linear")
    throw_bad_input(file, "schedule: cascade is a chain of 1:1 linear merges (the release's); it needs method linear, not '" +
                              cfg.method + "'");
  if (m->needs_base() && !cfg.base_model)
    throw_bad_input(file, "base_model: '" + cfg.method + "' works on task vectors and needs a base_model");
  std::set<std::string> per_model, global_names;
  for (const auto& p : m->params()) (p.per_model ? per_model : global_names).insert(p.name);
  for (const auto& [k, v] : cfg.global)
    if (!global_names.count(k) && !per_model.count(k))
      throw_bad_input(file, "parameters." + k + ": not a parameter of " + cfg.method + " (valid: " + join(global_names) +
                                (per_model.empty() ? "" : "; per model: " + join(per_model)) + ")");
  if (!cfg.rescale.empty() && !global_names.count("rescale"))
    throw_bad_input(file, "parameters.rescale: not a parameter of " + cfg.method + " (only DARE/DELLA methods rescale)");
  auto range = [&](const std::string& key, const ParamSetting& ps, const std::string& where) {
    for (const auto& c : ps.conds)
      for (double v : c.values) {
        if (key == "density" && !(v >= 0 && v <= 1)) throw_bad_input(file, where + ": density " + std::to_string(v) + " outside [0, 1]");
        if ((key == "epsilon" || key == "gamma") && !(v >= 0 && v < 1))
          throw_bad_input(file, where + ": " + key + " " + std::to_string(v) + " outside [0, 1)");
        if (key == "t" && !(v >= 0 && v <= 1)) throw_bad_input(file, where + ": t " + std::to_string(v) + " outside [0, 1]");
      }
  };
  for (const auto& [k, v] : cfg.global) range(k, v, "parameters." + k);
  std::set<fs::path> seen;
  for (const auto& e : models) {
    if (cfg.schedule == "cascade" && e.parameters.count("weight") && !e.parameters.at("weight").is_number(1.0))
      throw_bad_input(file, "model '" + e.name + "': schedule: cascade merges 1:1 at every step; remove its weight");
    for (const auto& [k, v] : e.parameters) {
      if (!per_model.count(k))
        throw_bad_input(file, "model '" + e.name + "': parameters." + k + ": not a per-model parameter of " + cfg.method +
                                  " (valid: " + join(per_model) + ")");
      range(k, v, "model '" + e.name + "': parameters." + k);
    }
    if (!seen.insert(fs::weakly_canonical(e.path)).second)
      throw_bad_input(file, "'" + e.path.string() + "' is listed twice (remove the duplicate, or give it twice the weight)");
  }
}

void require_enough_models(const MergeConfig& cfg, size_t n) {
  const Method& m = find_method(cfg.method);
  const size_t inputs = n + (cfg.base_model && m.needs_base() ? 1 : 0);  // others ignore the base
  if (n < m.min_models() || inputs < m.min_inputs())
    throw_bad_input(cfg.source, "models: " + std::to_string(n) + " model(s); a merge needs at least " +
                                    std::to_string(m.min_inputs()) + " inputs");
  if (n > m.max_models())
    throw_bad_input(cfg.source, "models: " + std::to_string(n) + " model(s) besides the base, but " + cfg.method + " takes " +
                                    std::to_string(m.max_models()) + (m.needs_base() ? " (and base_model)" : ""));
}

MergeJob load_mergekit_yaml(const fs::path& path) {
  MergeJob job;
  MergeConfig& s = job.merge;
  s.source = path.string();
  s.resident_bytes = 0;  // one pass, tensor by tensor: nothing to keep between steps
  const std::string& where = s.source;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    throw_bad_input(where, "cannot open the merge config");
  } catch (const YAML::Exception& e) {
    throw_bad_input(where, std::string("not valid YAML: ") + e.what());
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::set<std::string> valid{"merge_method", "base_model", "models", "parameters", "dtype", "out_dtype",
                                    "tokenizer_source", "tokenizer", "seed", "merge_vision", "shard_size_mb", "chat_template",
                                    "schedule"};
  if (!root.IsMap()) throw_bad_input(where, "must be a mapping (merge_method, base_model, models, parameters, ...)");
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (!valid.count(k))
      throw_bad_input(where, k + ": unknown key (slices are not supported; valid: merge_method, base_model, models, parameters, dtype, out_dtype, seed, merge_vision)");
  }
  if (!root["merge_method"]) throw_bad_input(where, "merge_method: missing");
  s.method = root["merge_method"].as<std::string>();
  if (root["base_model"]) s.base_model = resolve(dir, root["base_model"].as<std::string>());
  if (!root["models"] || !root["models"].IsSequence()) throw_bad_input(where, "models: a list of {model: DIR, parameters: {...}}");
  for (const auto& e : root["models"]) {
    ModelEntry mem;
    mem.path = resolve(dir, (e.IsScalar() ? e : e["model"]).as<std::string>());
    mem.name = mem.path.filename().string();
    if (s.base_model && fs::weakly_canonical(mem.path) == fs::weakly_canonical(*s.base_model)) continue;  // mergekit lists the base too
    if (e.IsMap() && e["parameters"]) parse_model_parameters(e["parameters"], where, "models[].parameters", mem.parameters);
    job.models.push_back(mem);
  }
  if (root["parameters"]) parse_global_parameters(root["parameters"], where, "parameters", s);
  for (const char* key : {"out_dtype", "dtype"})
    if (root[key] && !s.out_dtype) {
      const auto d = parse_torch_dtype(root[key].as<std::string>());
      if (!d || !is_floating(*d)) throw_bad_input(where, std::string(key) + ": not a float dtype");
      s.out_dtype = d;
    }
  try {
    if (root["schedule"]) s.schedule = root["schedule"].as<std::string>();
    if (root["seed"]) s.seed = root["seed"].as<uint64_t>();
    if (root["merge_vision"]) s.merge_vision = root["merge_vision"].as<bool>();
    if (root["shard_size_mb"]) s.shard_bytes = root["shard_size_mb"].as<uint64_t>() << 20;
  } catch (const YAML::Exception&) {
    throw_bad_input(where, "seed and shard_size_mb must be non-negative integers, merge_vision true or false");
  }
  validate(s, job.models);
  require_enough_models(s, job.models.size());
  if (s.schedule == "cascade")
    for (auto& e : job.models) e.parameters.try_emplace("weight", ParamSetting::number(1.0));  // 1:1 at every step
  return job;
}

}  // namespace uqmerge::merge
