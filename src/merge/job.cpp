// `uqmerge merge` (see include/uqmerge/merge/job.hpp).
#include "uqmerge/merge/job.hpp"

#include <yaml-cpp/yaml.h>

#include <set>

#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/merge/engine.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

namespace {

double scalar_param(const YAML::Node& v, const std::string& where) {
  if (v.IsScalar()) {
    const std::string s = v.as<std::string>();
    if (s == "true") return 1.0;
    if (s == "false") return 0.0;
    try {
      return v.as<double>();
    } catch (const YAML::Exception&) {
    }
  }
  throw_bad_input(where, "must be a number (per-layer gradients and filters are not supported yet)");
}

fs::path resolve(const fs::path& base, const std::string& p) {
  const fs::path x(p);
  return x.is_relative() ? base / x : x;
}

}  // namespace

MergeSpec load_merge_yaml(const fs::path& path) {
  MergeSpec s;
  s.source = path;
  const std::string where = path.string();
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
                                    "tokenizer_source", "tokenizer", "seed", "merge_vision", "shard_size_mb", "chat_template"};
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (!valid.count(k)) throw_bad_input(where, k + ": unknown key (slices are not supported; valid: merge_method, base_model, models, parameters, dtype, out_dtype, seed, merge_vision)");
  }
  if (!root["merge_method"]) throw_bad_input(where, "merge_method: missing");
  s.method = root["merge_method"].as<std::string>();
  const Method& m = find_method(s.method);
  if (root["base_model"]) s.base_model = resolve(dir, root["base_model"].as<std::string>());
  if (m.needs_base() && !s.base_model)
    throw_bad_input(where, "base_model: '" + s.method + "' works on task vectors and needs a base_model");
  if (!root["models"] || !root["models"].IsSequence()) throw_bad_input(where, "models: a list of {model: DIR, parameters: {...}}");
  std::set<std::string> per_model, global_names;
  for (const auto& p : m.params()) (p.per_model ? per_model : global_names).insert(p.name);
  std::set<fs::path> seen;
  for (const auto& e : root["models"]) {
    MergeSpec::Member mem;
    mem.path = resolve(dir, (e.IsScalar() ? e : e["model"]).as<std::string>());
    if (s.base_model && fs::weakly_canonical(mem.path) == fs::weakly_canonical(*s.base_model)) continue;  // mergekit lists the base too
    if (!seen.insert(fs::weakly_canonical(mem.path)).second)
      throw_bad_input(where, "models: '" + mem.path.string() + "' is listed twice (remove the duplicate, or give it twice the weight)");
    if (e.IsMap() && e["parameters"])
      for (const auto& kv : e["parameters"]) {
        const std::string k = kv.first.as<std::string>();
        if (!per_model.count(k))
          throw_bad_input(where, "models[].parameters." + k + ": not a per-model parameter of " + s.method);
        mem.params[k] = scalar_param(kv.second, where + ": models[].parameters." + k);
      }
    s.models.push_back(mem);
  }
  if (s.models.size() < std::max<size_t>(2, m.min_models()) && !(s.base_model && s.models.size() >= m.min_models() && m.needs_base()))
    throw_bad_input(where, "models: " + std::to_string(s.models.size()) + " model(s); a merge needs at least 2 inputs");
  if (root["parameters"])
    for (const auto& kv : root["parameters"]) {
      const std::string k = kv.first.as<std::string>();
      if (k == "rescale") {
        const std::string v = kv.second.as<std::string>();
        if (v == "true") s.rescale = "l1";       // mergekit >= 0.1: L1-norm matching
        else if (v == "false") s.rescale = "none";
        else if (v == "density" || v == "l1" || v == "none") s.rescale = v;
        else throw_bad_input(where, "parameters.rescale: '" + v + "' (valid: density, l1, none, true, false)");
        continue;
      }
      if (!global_names.count(k) && !per_model.count(k))
        throw_bad_input(where, "parameters." + k + ": not a parameter of " + s.method);
      s.global[k] = scalar_param(kv.second, where + ": parameters." + k);
    }
  for (const char* key : {"out_dtype", "dtype"})
    if (root[key] && !s.out_dtype) {
      const auto d = parse_torch_dtype(root[key].as<std::string>());
      if (!d || !is_floating(*d)) throw_bad_input(where, std::string(key) + ": not a float dtype");
      s.out_dtype = d;
    }
  if (root["seed"]) s.seed = root["seed"].as<uint64_t>();
  if (root["merge_vision"]) s.merge_vision = root["merge_vision"].as<bool>();
  if (root["shard_size_mb"]) s.shard_bytes = root["shard_size_mb"].as<uint64_t>() << 20;
  // Range checks on every resolved value.
  for (const auto& mem : s.models)
    for (const auto& [k, v] : mem.params) {
      if (k == "density" && !(v >= 0 && v <= 1)) throw_bad_input(where, "density " + std::to_string(v) + " outside [0, 1]");
      if ((k == "epsilon" || k == "gamma") && !(v >= 0 && v < 1)) throw_bad_input(where, k + " " + std::to_string(v) + " outside [0, 1)");
    }
  return s;
}

size_t run_merge(const MergeSpec& s, const fs::path& out, bool overwrite, dist::Communicator& comm) {
  if (fs::exists(out) && !overwrite) throw_bad_input(out.string(), "output directory exists (pass --overwrite to replace it)");
  std::vector<Checkpoint> members;
  for (const auto& mem : s.models) {
    members.push_back(Checkpoint::open(mem.path));
    members.back().require_valid();
  }
  std::optional<Checkpoint> base;
  if (s.base_model) {
    base = Checkpoint::open(*s.base_model);
    base->require_valid();
  }
  std::vector<const Checkpoint*> cands;
  std::vector<std::map<std::string, double>> params;
  std::vector<size_t> order;
  for (size_t i = 0; i < members.size(); ++i) {
    cands.push_back(&members[i]);
    params.push_back(s.models[i].params);
    order.push_back(i);
  }
  EngineOptions o;
  o.source = s.source.string();
  o.method = s.method;
  o.global = s.global;
  o.rescale = s.rescale;
  o.out_dtype = s.out_dtype;
  o.seed = s.seed;
  o.merge_vision = s.merge_vision;
  o.shard_bytes = s.shard_bytes;
  Merger merger(cands, params, base ? &*base : nullptr, o, comm);
  std::string card = "# Merged with uqmerge\n\nmethod: `" + s.method + "`\n\n";
  if (base) card += "base model: `" + base->dir().string() + "`\n\n";
  card += "members:\n";
  for (const auto& mem : s.models) card += "- `" + mem.path.string() + "`\n";
  merger.write(out, card, overwrite, &order);
  return merger.tensor_count();
}

}  // namespace uqmerge::merge
