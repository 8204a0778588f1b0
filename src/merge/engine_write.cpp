// Writing a Merger's output directory (see include/uqmerge/merge/engine.hpp): every rank its
// own shards, rank 0 the index, config, tokenizer and processor files; OUT.tmp renamed when complete.
#include "engine_impl.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

void Merger::write(const fs::path& out, const std::string& card, bool overwrite, const std::vector<size_t>* members) {
  torch::NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  Impl& s = *impl_;
  const Checkpoint& ref = *s.ref;
  const int rank = s.comm.rank(), R = s.comm.size();
  const fs::path tmp = fs::path(out.string() + ".tmp");
  if (members && !s.names.empty()) (void)s.resolve(*members, 0);  // parameter errors before anything is created
  if (rank == 0) {
    if (fs::exists(out) && !overwrite) throw_bad_input(out.string(), "output directory exists (pass --overwrite to replace it)");
    require_replaceable(out, is_model_file);  // never delete what is not a model file
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }
  s.comm.barrier();
  // Shard plan: each rank's tensors split into shards of at most shard_bytes, numbered in rank
  // order; every rank computes the same plan.
  ShardPlan plan;
  std::vector<size_t> first_shard(static_cast<size_t>(R) + 1, 0);
  std::vector<std::vector<size_t>> shard_tensors;  // tensor indices per shard
  for (int r = 0; r < R; ++r) {
    first_shard[static_cast<size_t>(r)] = plan.shards.size();
    std::vector<TensorSpec> specs;
    std::vector<size_t> idx;
    for (size_t i = 0; i < s.names.size(); ++i)
      if (s.owner[i] == r) {
        specs.push_back(s.specs[i]);
        idx.push_back(i);
      }
    const ShardPlan part = plan_shards(specs, s.opts.shard_bytes);
    size_t k = 0;
    for (const auto& sh : part.shards) {
      plan.shards.push_back(sh);
      shard_tensors.emplace_back(idx.begin() + static_cast<std::ptrdiff_t>(k),
                                 idx.begin() + static_cast<std::ptrdiff_t>(k + sh.tensors.size()));
      k += sh.tensors.size();
    }
    plan.total_bytes += part.total_bytes;
  }
  first_shard[static_cast<size_t>(R)] = plan.shards.size();
  const size_t nshards = plan.shards.size();
  for (size_t k = 0; k < nshards; ++k)
    plan.shards[k].filename = nshards == 1 ? "model.safetensors"
                                           : fmt::format("model-{:05}-of-{:05}.safetensors", k + 1, nshards);
  // This rank's shards. A failure removes the partial directory (other ranks are aborted).
  struct Cleanup {
    const fs::path& dir;
    bool armed = true;
    ~Cleanup() {
      std::error_code ec;
      if (armed) fs::remove_all(dir, ec);
    }
  } cleanup{tmp};
  Progress progress("write", s.mine.size(), "tensors");
  for (size_t k = first_shard[static_cast<size_t>(rank)]; k < first_shard[static_cast<size_t>(rank) + 1]; ++k) {
    SafetensorsWriter w(tmp / plan.shards[k].filename, plan.shards[k].tensors, Metadata{{"format", "pt"}});
    for (size_t i : shard_tensors[k]) {
      if (members && s.stream_running_sum(i, *members, s.resolve(*members, i), w)) {
        progress.advance();
        continue;
      }
      at::Tensor t = members ? s.merge_one(i, *members, s.resolve(*members, i)) : s.kept.at(i);
      w.write(s.specs[i].name, t.data_ptr(), t.nbytes());
      if (is_vision(s.names[i]) && !s.opts.merge_vision) ref.view(s.names[i]).release();
      progress.advance();
    }
    w.commit();
  }
  if (members) s.note_members(*members);
  cleanup.armed = false;
  s.comm.barrier();
  if (rank == 0) {
    if (plan.needs_index()) write_safetensors_index(tmp, plan);
    // Everything else a loader needs, from the reference: config, tokenizer, processor files.
    for (const auto& e : fs::directory_iterator(ref.dir())) {
      const std::string f = e.path().filename().string();
      const bool weights = e.path().extension() == ".safetensors" || f == "model.safetensors.index.json" ||
                           e.path().extension() == ".bin" || f == "pytorch_model.bin.index.json";
      if (e.is_regular_file() && !weights && f != "README.md") fs::copy_file(e.path(), tmp / f, fs::copy_options::overwrite_existing);
    }
    if (s.opts.out_dtype) {  // keep config.json's torch_dtype truthful
      std::ifstream in(tmp / "config.json");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (const char* key : {"\"torch_dtype\": \"", "\"dtype\": \""}) {
        size_t pos = 0;
        while ((pos = text.find(key, pos)) != std::string::npos) {
          const size_t b = pos + std::strlen(key), e = text.find('"', b);
          text.replace(b, e - b, std::string(dtype_torch_name(*s.opts.out_dtype)));
          pos = b;
        }
      }
      write_file_atomic(tmp / "config.json", text);
    }
    write_file_atomic(tmp / "README.md", card);
    if (fs::exists(out)) fs::remove_all(out);
    fs::rename(tmp, out);
  }
  s.comm.barrier();
  stats_.write_seconds += since(t0);
}

}  // namespace uqmerge::merge
