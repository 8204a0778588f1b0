// `uqmerge merge` (see include/uqmerge/merge/job.hpp).
#include "uqmerge/merge/job.hpp"

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/io/torch_view.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/progress.hpp"

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

size_t run_merge(const MergeSpec& s, const fs::path& out, bool overwrite) {
  torch::NoGradGuard ng;
  const Method& m = find_method(s.method);
  if (fs::exists(out) && !overwrite)
    throw_bad_input(out.string(), "output directory exists (pass --overwrite to replace it)");
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
  const Checkpoint& ref = base ? *base : members[0];
  // Same architecture and shapes everywhere.
  for (const auto& ck : members) {
    if (ck.config().arch != ref.config().arch)
      throw_bad_input(ck.dir().string(), std::string("architecture ") + std::string(architecture_name(ck.config().arch)) +
                                             " differs from " + ref.dir().string() + "'s " + std::string(architecture_name(ref.config().arch)));
    for (const auto& n : ref.names())
      if (ref.weights().contains(ref.source_name(n))) {
        if (!ck.has(n)) throw_bad_input(ck.dir().string(), "missing tensor '" + ck.source_name(n) + "' that " + ref.dir().string() + " has");
        if (ck.info(n).shape != ref.info(n).shape)
          throw_bad_input(ck.file_of(n).path().string(), "tensor '" + ck.source_name(n) + "' has shape " +
                                                             shape_string(ck.info(n).shape) + " but " + shape_string(ref.info(n).shape) +
                                                             " in " + ref.file_of(n).path().string() +
                                                             ": the checkpoints are not the same architecture");
      }
  }
  // Parameters per tensor (no gradients yet: the same for every tensor).
  Params p;
  p.normalize = s.global.count("normalize") ? s.global.at("normalize") != 0 : m.default_normalize();
  p.lambda = s.global.count("lambda") ? s.global.at("lambda") : 1.0;
  p.filter_wise = s.global.count("filter_wise") && s.global.at("filter_wise") != 0;
  p.rescale = s.rescale.empty() ? m.default_rescale() : s.rescale == "density" ? Rescale::Density : s.rescale == "l1" ? Rescale::L1 : Rescale::None;
  for (const auto& spec : m.params()) {
    if (!spec.per_model) continue;
    std::vector<double>* dst = spec.name == "weight" ? &p.weight : spec.name == "density" ? &p.density
                             : spec.name == "gamma" ? &p.gamma : spec.name == "epsilon" ? &p.epsilon : nullptr;
    if (!dst) continue;
    for (size_t i = 0; i < s.models.size(); ++i) {
      const auto& mp = s.models[i].params;
      if (mp.count(spec.name)) dst->push_back(mp.at(spec.name));
      else if (s.global.count(spec.name)) dst->push_back(s.global.at(spec.name));
      else if (spec.default_value) dst->push_back(*spec.default_value);
      else throw_bad_input(s.source.string(), "models[" + std::to_string(i) + "]: parameter '" + spec.name + "' is required by " + s.method);
    }
  }
  // Output tensors: the reference's own files (an original-layout CLIP directory stays separate).
  std::vector<std::string> names;
  std::vector<TensorSpec> specs;
  for (const auto& n : ref.names()) {
    const std::string src = ref.source_name(n);
    if (!ref.weights().contains(src)) continue;
    names.push_back(n);
    specs.push_back({src, s.out_dtype ? *s.out_dtype : ref.info(n).dtype, ref.info(n).shape});
  }
  const fs::path tmp = fs::path(out.string() + ".tmp." + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  struct Cleanup {
    fs::path p;
    bool keep = false;
    ~Cleanup() {
      if (!keep) fs::remove_all(p);
    }
  } cleanup{tmp};
  const ShardPlan plan = plan_shards(specs, s.shard_bytes);
  std::map<std::string, size_t> shard_of;
  std::vector<std::unique_ptr<SafetensorsWriter>> writers;
  for (size_t k = 0; k < plan.shards.size(); ++k) {
    writers.push_back(std::make_unique<SafetensorsWriter>(tmp / plan.shards[k].filename, plan.shards[k].tensors,
                                                          Metadata{{"format", "pt"}}));
    for (const auto& t : plan.shards[k].tensors) shard_of[t.name] = k;
  }
  Progress progress("merge", names.size(), "tensors");
  for (size_t t = 0; t < names.size(); ++t) {
    const std::string& n = names[t];
    const bool vision = n.rfind("vision.", 0) == 0;
    at::Tensor result;
    if (vision && !s.merge_vision) {
      // Frozen in LLaVA fine-tuning: must be bit-identical; copied.
      const TensorView rv = ref.view(n);
      for (const auto& ck : members) {
        const TensorView v = ck.view(n);
        if (v.nbytes() != rv.nbytes() || std::memcmp(v.data(), rv.data(), v.nbytes()) != 0)
          throw_bad_input(ck.dir().string(), "vision tower tensor '" + ck.source_name(n) + "' differs from " + ref.dir().string() +
                                                 "'s: the vision towers are not the same (set merge_vision: true to merge them)");
      }
      result = to_torch(rv);
    } else {
      TensorGroup g;
      g.name = n;
      if (base) g.base = to_torch(base->view(n));
      for (const auto& ck : members) g.models.push_back(to_torch(ck.view(n)));
      result = m.merge(g, p, s.seed);
    }
    const TensorSpec& spec = specs[t];
    const at::Tensor outt = result.to(torch_scalar_type(spec.dtype)).contiguous();
    if (!torch::isfinite(outt.to(torch::kFloat32)).all().item<bool>())
      throw_bad_input(n, "merged tensor has NaN/Inf values (an input checkpoint holds non-finite weights, or the parameters overflow the output dtype)");
    writers[shard_of.at(spec.name)]->write(spec.name, outt.data_ptr(), outt.nbytes());
    // Drop the inputs' pages of this tensor: RSS stays at what one tensor needs, not the sum
    // of every checkpoint (the page cache keeps them for the next reader).
    for (const auto& ck : members) ck.view(n).release();
    if (base) base->view(n).release();
    progress.advance();
  }
  for (auto& w : writers) w->commit();
  if (plan.needs_index()) write_safetensors_index(tmp, plan);
  // Everything else a loader needs, from the reference: config, tokenizer, processor files.
  for (const auto& e : fs::directory_iterator(ref.dir())) {
    const std::string f = e.path().filename().string();
    const bool weights = e.path().extension() == ".safetensors" || f == "model.safetensors.index.json" ||
                         e.path().extension() == ".bin" || f == "pytorch_model.bin.index.json";
    if (e.is_regular_file() && !weights && f != "README.md") fs::copy_file(e.path(), tmp / f, fs::copy_options::overwrite_existing);
  }
  if (s.out_dtype) {  // keep config.json's torch_dtype truthful
    std::ifstream in(tmp / "config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char* key : {"\"torch_dtype\": \"", "\"dtype\": \""}) {
      const size_t pos = text.find(key);
      if (pos == std::string::npos) continue;
      const size_t b = pos + std::strlen(key), e = text.find('"', b);
      text.replace(b, e - b, std::string(dtype_torch_name(*s.out_dtype)));
    }
    write_file_atomic(tmp / "config.json", text);
  }
  std::string card = "# Merged with uqmerge\n\nmethod: `" + s.method + "`\n\n";
  if (base) card += "base model: `" + base->dir().string() + "`\n\n";
  card += "members:\n";
  for (const auto& mem : s.models) card += "- `" + mem.path.string() + "`\n";
  write_file_atomic(tmp / "README.md", card);
  if (fs::exists(out)) fs::remove_all(out);
  fs::rename(tmp, out);
  cleanup.keep = true;
  return names.size();
}

}  // namespace uqmerge::merge
