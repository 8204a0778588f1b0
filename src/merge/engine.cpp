// Sharded merging (see include/uqmerge/merge/engine.hpp): ownership, reading, merging and
// gathering; writing the output directory is merge/engine_write.cpp.
#include "engine_impl.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

namespace {
std::vector<ParamMap> parameters_of(const std::vector<ModelEntry>& entries) {
  std::vector<ParamMap> p;
  for (const auto& e : entries) p.push_back(e.parameters);
  return p;
}
}  // namespace

Merger::Merger(std::vector<const Checkpoint*> candidates, const std::vector<ModelEntry>& entries, const Checkpoint* base,
               const MergeConfig& cfg, bool incremental, dist::Communicator& comm)
    : impl_(std::make_unique<Impl>(std::move(candidates), parameters_of(entries), base, cfg, incremental, comm)) {
  Impl& s = *impl_;
  s.stats = &stats_;
  UQ_CHECK(!s.cands.empty() && s.cands.size() == s.params.size(), "merger needs candidates and one parameter set each");
  s.ref = base ? base : s.cands[0];
  const Checkpoint& ref = *s.ref;
  std::vector<const Checkpoint*> all = s.cands;
  if (base) all.push_back(base);
  for (const Checkpoint* ck : all) {
    if (ck->config().arch != ref.config().arch)
      throw_bad_input(ck->dir().string(), std::string("architecture ") + std::string(architecture_name(ck->config().arch)) +
                                              " differs from " + ref.dir().string() + "'s " +
                                              std::string(architecture_name(ref.config().arch)) + ": merge checkpoints of one architecture");
    for (const auto& n : ref.names())
      if (ref.weights().contains(ref.source_name(n))) {
        if (!ck->has(n))
          throw_bad_input(ck->dir().string(), "missing tensor '" + ck->source_name(n) + "' that " + ref.dir().string() + " has");
        if (ck->info(n).shape != ref.info(n).shape)
          throw_bad_input(ck->file_of(n).path().string(),
                          "tensor '" + ck->source_name(n) + "' has shape " + shape_string(ck->info(n).shape) + " but " +
                              shape_string(ref.info(n).shape) + " in " + ref.file_of(n).path().string() +
                              ": the checkpoints are not the same architecture");
      }
  }
  // Output tensors: the reference's own files (an original-layout CLIP directory stays separate).
  std::vector<uint64_t> bytes;
  for (const auto& n : ref.names()) {
    const std::string src = ref.source_name(n);
    if (!ref.weights().contains(src)) continue;
    s.names.push_back(n);
    s.specs.push_back({src, s.opts.out_dtype ? *s.opts.out_dtype : ref.info(n).dtype, ref.info(n).shape});
    bytes.push_back(s.specs.back().nbytes());
  }
  s.check_settings();
  s.owner = dist::assign_by_bytes(bytes, comm.size());
  for (size_t i = 0; i < s.names.size(); ++i)
    if (s.owner[i] == comm.rank()) {
      s.mine.push_back(i);
      stats_.owned_bytes += bytes[i];
    }
  stats_.owned_tensors = s.mine.size();
  // The vision tower is frozen in LLaVA fine-tuning: bit-identical everywhere, else refused.
  // Each rank checks the tensors it owns.
  if (!s.opts.merge_vision)
    for (size_t i : s.mine) {
      const std::string& n = s.names[i];
      if (!is_vision(n)) continue;
      const TensorView rv = ref.view(n);
      for (const Checkpoint* ck : all) {
        if (ck == &ref) continue;
        const TensorView v = ck->view(n);
        if (v.nbytes() != rv.nbytes() || std::memcmp(v.data(), rv.data(), v.nbytes()) != 0)
          throw_bad_input(ck->dir().string(), "vision tower tensor '" + ck->source_name(n) + "' differs from " + ref.dir().string() +
                                                  "'s: the vision towers are not the same (set merge_vision: true to merge them)");
        v.release();
      }
      rv.release();
    }
}

Merger::~Merger() = default;

const Checkpoint& Merger::reference() const { return *impl_->ref; }
size_t Merger::tensor_count() const { return impl_->names.size(); }

void Merger::compute(const std::vector<size_t>& members) {
  torch::NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  Impl& s = *impl_;
  for (size_t m : members) UQ_CHECK(m < s.cands.size(), "member index out of range");
  s.spare = std::move(s.kept);
  s.kept.clear();
  for (size_t i : s.mine) s.kept[i] = s.merge_one(i, members, s.resolve(members, i));
  s.spare.clear();
  s.note_members(members);
  stats_.read_merge_seconds += since(t0);
}

std::map<std::string, at::Tensor> Merger::gather() {
  const auto t0 = std::chrono::steady_clock::now();
  Impl& s = *impl_;
  // Layout: rank 0's owned tensors, then rank 1's, ...; each tensor 64-byte aligned.
  const int R = s.comm.size();
  std::vector<std::vector<size_t>> by_rank(static_cast<size_t>(R));
  for (size_t i = 0; i < s.names.size(); ++i)
    if (!is_vision(s.names[i]) || s.opts.merge_vision) by_rank[static_cast<size_t>(s.owner[i])].push_back(i);
  std::vector<size_t> counts(static_cast<size_t>(R), 0);
  std::vector<uint64_t> offset(s.names.size(), 0);
  uint64_t total = 0;
  for (int r = 0; r < R; ++r) {
    const uint64_t start = total;
    for (size_t i : by_rank[static_cast<size_t>(r)]) {
      offset[i] = total;
      total += align_up(s.specs[i].nbytes());
    }
    counts[static_cast<size_t>(r)] = total - start;
  }
  auto buffer = std::shared_ptr<std::byte[]>(new std::byte[std::max<uint64_t>(total, 1)]);
  for (size_t i : by_rank[static_cast<size_t>(s.comm.rank())]) {
    const at::Tensor& t = s.kept.at(i);
    std::memcpy(buffer.get() + offset[i], t.data_ptr(), t.nbytes());
  }
  uint64_t mine_off = 0;
  for (int r = 0; r < s.comm.rank(); ++r) mine_off += counts[static_cast<size_t>(r)];
  s.comm.allgatherv(buffer.get() + mine_off, buffer.get(), counts, DType::U8);
  std::map<std::string, at::Tensor> out;
  for (int r = 0; r < R; ++r)
    for (size_t i : by_rank[static_cast<size_t>(r)]) {
      const TensorSpec& spec = s.specs[i];
      out.emplace(s.names[i], at::from_blob(buffer.get() + offset[i], spec.shape, [buffer](void*) {},
                                            at::TensorOptions().dtype(torch_scalar_type(spec.dtype))));
    }
  stats_.gather_seconds += since(t0);
  return out;
}

}  // namespace uqmerge::merge
