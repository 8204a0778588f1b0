// Sharded merging (see include/uqmerge/merge/engine.hpp).
#include "uqmerge/merge/engine.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "uqmerge/dist/sharding.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/io/torch_view.hpp"
#include "uqmerge/merge/sum_kernel.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/progress.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
bool is_vision(const std::string& n) { return n.rfind("vision.", 0) == 0; }
constexpr uint64_t kAlign = 64;  // byte alignment of each tensor in the gathered buffer
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }
}  // namespace

struct Merger::Impl {
  std::vector<const Checkpoint*> cands;
  std::vector<std::map<std::string, double>> params;
  const Checkpoint* base = nullptr;
  const Checkpoint* ref = nullptr;
  EngineOptions opts;
  dist::Communicator& comm;
  const Method& method;
  // Output tensors (the reference's own files), their specs and owners.
  std::vector<std::string> names;
  std::vector<TensorSpec> specs;
  std::vector<int> owner;
  std::vector<size_t> mine;  // indices of the tensors this rank owns
  // Kept results of compute(), by tensor index; during compute() the previous call's results,
  // whose memory the kernel reuses (fresh pages cost a fault and a zeroing each, which on a VM
  // is slower than the merge itself).
  std::map<size_t, at::Tensor> kept, spare;
  // Running sums (running_sum() methods) of the members in `sum_members`.
  std::map<size_t, at::Tensor> sums;
  std::vector<size_t> sum_members;
  // Resident copies of owned tensors: (candidate, tensor index) -> tensor in the stored dtype.
  std::map<std::pair<size_t, size_t>, at::Tensor> resident;
  uint64_t resident_bytes = 0;
  Stats* stats = nullptr;

  Impl(std::vector<const Checkpoint*> c, std::vector<std::map<std::string, double>> p, const Checkpoint* b, EngineOptions o,
       dist::Communicator& cm)
      : cands(std::move(c)), params(std::move(p)), base(b), opts(std::move(o)), comm(cm), method(find_method(opts.method)) {}

  // Model m's tensor i: resident copy, else a zero-copy view of the mapping (kept resident
  // when the budget allows, its pages then released).
  at::Tensor input(size_t m, size_t i) {
    auto it = resident.find({m, i});
    if (it != resident.end()) return it->second;
    const Checkpoint& ck = *cands[m];
    const TensorView v = ck.view(names[i]);
    stats->bytes_read += v.nbytes();
    if (resident_bytes + v.nbytes() <= opts.resident_bytes) {
      at::Tensor copy = to_torch(v).clone();
      v.release();
      resident_bytes += copy.nbytes();
      stats->resident_bytes = resident_bytes;
      resident.emplace(std::make_pair(m, i), copy);
      return copy;
    }
    v.populate();  // one call maps the range instead of a fault per page (faulting in parallel
                   // from the kernel's threads measured slower)
    return to_torch(v);
  }
  void release(size_t m, size_t i) {
    if (!resident.count({m, i})) cands[m]->view(names[i]).release();
  }

  Params resolve(const std::vector<size_t>& members) const {
    Params p;
    const auto& g = opts.global;
    p.normalize = g.count("normalize") ? g.at("normalize") != 0 : method.default_normalize();
    p.lambda = g.count("lambda") ? g.at("lambda") : 1.0;
    p.filter_wise = g.count("filter_wise") && g.at("filter_wise") != 0;
    p.rescale = opts.rescale.empty() ? method.default_rescale()
              : opts.rescale == "density" ? Rescale::Density
              : opts.rescale == "l1"      ? Rescale::L1
                                          : Rescale::None;
    for (const auto& spec : method.params()) {
      if (!spec.per_model) continue;
      std::vector<double>* dst = spec.name == "weight" ? &p.weight : spec.name == "density" ? &p.density
                               : spec.name == "gamma" ? &p.gamma : spec.name == "epsilon" ? &p.epsilon : nullptr;
      if (!dst) continue;
      for (size_t m : members) {
        const auto& mp = params[m];
        if (mp.count(spec.name)) dst->push_back(mp.at(spec.name));
        else if (g.count(spec.name)) dst->push_back(g.at(spec.name));
        else if (spec.default_value) dst->push_back(*spec.default_value);
        else
          throw_bad_input(opts.source, "model '" + cands[m]->dir().string() + "': parameter '" + spec.name + "' is required by " +
                                           opts.method);
      }
    }
    return p;
  }

  // --- The weighted-sum kernel (linear): raw inputs in, output dtype out, one pass. -----------
  bool kernel_applies(size_t i, size_t n_members) const {
    return method.running_sum() && !base && n_members > 1 && kernels::sum_kernel_supports(specs[i].dtype) &&
           (!is_vision(names[i]) || opts.merge_vision);
  }
  // A kernel input: memory (a resident copy, a running sum) or a byte range of a checkpoint
  // file that the kernel's threads read chunk by chunk with pread into their own small buffers.
  // Reading through the mapping instead (populate, then release to keep RSS down) spent more
  // time mapping and unmapping page-cache pages than the merge took (docs/benchmarks.md).
  struct SumInput {
    kernels::SumTerm term;                         // data: memory, or unused when `file` is set
    std::shared_ptr<const MappedFile> file;        // read from here when set
    uint64_t offset = 0;                           // byte offset of element 0 in `file`
  };
  static SumInput memory_input(const at::Tensor& t, DType dtype, float weight) { return {{t.data_ptr(), dtype, weight}, nullptr, 0}; }
  // Model m's tensor i with weight w as a kernel input, appended to `in` (a resident copy stays
  // alive in `hold`); false when its element type is one the kernel does not take (fp64).
  bool sum_input(size_t m, size_t i, float w, std::vector<at::Tensor>& hold, std::vector<SumInput>& in) {
    const TensorView v = cands[m]->view(names[i]);
    if (!kernels::sum_kernel_supports(v.dtype())) return false;
    if (resident.count({m, i}) || resident_bytes + v.nbytes() <= opts.resident_bytes) {
      at::Tensor x = input(m, i);  // resident (copied in now if new)
      in.push_back(memory_input(x, v.dtype(), w));
      hold.push_back(std::move(x));
    } else {
      stats->bytes_read += v.nbytes();
      in.push_back({{nullptr, v.dtype(), w}, v.file_ptr(), v.file_offset()});
    }
    return true;
  }
  bool sum_inputs(size_t i, const std::vector<size_t>& members, const Params& p, std::vector<at::Tensor>& hold,
                  std::vector<SumInput>& in) {
    for (size_t k = 0; k < members.size(); ++k)
      if (!sum_input(members[k], i, static_cast<float>(p.weight[k]), hold, in)) return false;
    return true;
  }
  float sum_divisor(const std::vector<size_t>& members, const Params& p) const {
    double wsum = 0;
    for (size_t k = 0; k < members.size(); ++k) wsum += p.weight[k];
    return static_cast<float>(method.running_sum_divisor(wsum, p));
  }
  // Runs fn(terms at begin, begin, length) over [0, n) in chunks of kSumGrain elements, chunk c
  // on intra-op thread c mod T: the threads stream through neighbouring addresses (contiguous
  // halves, as parallel_for splits, ran slower than one thread on a 2-core VM: twice the
  // DRAM streams). File inputs are read into per-thread buffers that stay in L2.
  static constexpr int64_t kSumGrain = 1 << 17;
  template <class Fn>
  static void sum_chunks(const std::vector<SumInput>& in, int64_t n, Fn&& fn) {
    const int64_t chunks = (n + kSumGrain - 1) / kSumGrain;
    const int64_t T = std::min<int64_t>(at::get_num_threads(), chunks);
    at::parallel_for(0, T, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<std::vector<std::byte>> bufs;
      if (bufs.size() < in.size()) bufs.resize(in.size());
      std::vector<kernels::SumTerm> t(in.size());
      for (int64_t tid = b; tid < e; ++tid)
        for (int64_t c = tid; c < chunks; c += T) {
          const int64_t s = c * kSumGrain, len = std::min(kSumGrain, n - s);
          for (size_t k = 0; k < in.size(); ++k) {
            const size_t es = dtype_size(in[k].term.dtype);
            t[k] = in[k].term;
            if (in[k].file) {
              auto& buf = bufs[k];
              if (buf.size() < static_cast<size_t>(kSumGrain) * es) buf.resize(static_cast<size_t>(kSumGrain) * es);
              in[k].file->read(in[k].offset + static_cast<uint64_t>(s) * es, static_cast<size_t>(len) * es, buf.data());
              t[k].data = buf.data();
            } else {
              t[k].data = static_cast<const char*>(in[k].term.data) + s * static_cast<int64_t>(es);
            }
          }
          fn(t, s, len);
        }
    });
  }
  // out[0, n) (dtype od) = the kernel's sum of the inputs; false when a value is not finite.
  // stream: non-temporal stores (a result tensor; not for an in-place running sum).
  static bool parallel_sum(const std::vector<SumInput>& in, float divisor, void* out, DType od, int64_t n, bool stream) {
    std::atomic<bool> ok{true};
    sum_chunks(in, n, [&](const std::vector<kernels::SumTerm>& t, int64_t s, int64_t len) {
      if (!kernels::weighted_sum(t.data(), t.size(), divisor, static_cast<char*>(out) + s * static_cast<int64_t>(dtype_size(od)),
                                 od, len, stream))
        ok = false;
    });
    return ok;
  }
  [[noreturn]] void throw_not_finite(size_t i) const {
    throw_bad_input(names[i], "merged tensor has NaN/Inf values (an input checkpoint holds non-finite weights, or the "
                              "parameters overflow the output dtype)");
  }

  // Memory for tensor i's result in the output dtype: the previous compute()'s when nothing
  // else holds it, else new.
  at::Tensor output_buffer(size_t i) {
    const auto st = torch_scalar_type(specs[i].dtype);
    auto it = spare.find(i);
    if (it != spare.end()) {
      at::Tensor t = std::move(it->second);
      spare.erase(it);
      if (t.use_count() == 1 && t.scalar_type() == st && t.is_contiguous() && t.sizes() == at::IntArrayRef(specs[i].shape)) return t;
    }
    return torch::empty(specs[i].shape, torch::TensorOptions().dtype(st));
  }

  // A running-sum merge (linear) of several members straight into the output dtype; undefined
  // when the kernel does not apply (the caller takes the tensor path).
  at::Tensor running_sum_kernel(size_t i, const std::vector<size_t>& members, const Params& p) {
    std::vector<at::Tensor> hold;
    std::vector<SumInput> in;
    if (!kernel_applies(i, members.size()) || !sum_inputs(i, members, p, hold, in)) return {};
    at::Tensor out = output_buffer(i);
    const bool ok = parallel_sum(in, sum_divisor(members, p), out.data_ptr(), specs[i].dtype, out.numel(), /*stream=*/true);
    if (!ok) throw_not_finite(i);
    return out;
  }

  // The same merge written into `w` chunk by chunk from every intra-op thread (no tensor-sized
  // buffer: each chunk goes from L2 to the page cache). False when the kernel does not apply.
  bool stream_running_sum(size_t i, const std::vector<size_t>& members, const Params& p, SafetensorsWriter& w) {
    std::vector<at::Tensor> hold;
    std::vector<SumInput> in;
    if (incremental() || !kernel_applies(i, members.size()) || !sum_inputs(i, members, p, hold, in)) return false;
    const DType od = specs[i].dtype;
    const size_t osz = dtype_size(od);
    const float divisor = sum_divisor(members, p);
    std::atomic<bool> ok{true};
    sum_chunks(in, static_cast<int64_t>(specs[i].nbytes() / osz), [&](const std::vector<kernels::SumTerm>& t, int64_t s, int64_t len) {
      thread_local std::vector<std::byte> buf;
      buf.resize(static_cast<size_t>(kSumGrain) * osz);
      if (!kernels::weighted_sum(t.data(), t.size(), divisor, buf.data(), od, len)) ok = false;
      w.write_range(specs[i].name, static_cast<uint64_t>(s) * osz, buf.data(), static_cast<size_t>(len) * osz);
    });
    if (!ok) throw_not_finite(i);
    return true;
  }

  // One pass over the raw bits (exponent all ones = Inf/NaN): torch's isfinite on half types
  // takes several full passes and temporaries.
  static bool all_finite(const at::Tensor& t) {
    const auto count = static_cast<size_t>(t.numel());
    auto none_special = [&](const auto* bits, auto mask) {
      using U = std::remove_cv_t<std::remove_pointer_t<decltype(bits)>>;
      U bad = 0;
      for (size_t k = 0; k < count; ++k) bad |= static_cast<U>((bits[k] & mask) == mask);
      return bad == 0;
    };
    switch (t.scalar_type()) {
      case torch::kHalf: return none_special(static_cast<const uint16_t*>(t.data_ptr()), uint16_t{0x7C00});
      case torch::kBFloat16: return none_special(static_cast<const uint16_t*>(t.data_ptr()), uint16_t{0x7F80});
      case torch::kFloat32: return none_special(static_cast<const uint32_t*>(t.data_ptr()), uint32_t{0x7F800000u});
      default: return torch::isfinite(t).all().item<bool>();
    }
  }

  void check_finite(size_t i, const at::Tensor& out) const {
    if (!all_finite(out.contiguous())) throw_not_finite(i);
  }

  // The merged tensor i of `members` in the output dtype (vision: the reference's, copied).
  at::Tensor merge_one(size_t i, const std::vector<size_t>& members, const Params& p) {
    const std::string& n = names[i];
    const TensorSpec& spec = specs[i];
    at::Tensor result;
    bool borrowed = false;  // result views a mapping or the resident store
    if (is_vision(n) && !opts.merge_vision) {
      return to_torch(ref->view(n)).to(torch_scalar_type(spec.dtype)).contiguous();  // checked identical, copied
    } else if (members.size() == 1 && !base) {
      result = input(members[0], i);
      borrowed = true;
    } else if (incremental()) {
      // Extend the running sum when `members` continues the previous call's list.
      const bool extends = members.size() == sum_members.size() + 1 &&
                           std::equal(sum_members.begin(), sum_members.end(), members.begin());
      at::Tensor& acc = sums[i];
      size_t from = extends ? sum_members.size() : 0;
      if (!extends || !acc.defined()) {
        const at::Tensor x0 = input(members[0], i);
        acc = torch::zeros(x0.sizes(), torch::TensorOptions().dtype(x0.scalar_type() == torch::kFloat64 ? torch::kFloat64
                                                                                                         : torch::kFloat32));
        from = 0;
      }
      const bool fp32 = acc.scalar_type() == torch::kFloat32;
      for (size_t k = from; k < members.size(); ++k) {
        std::vector<at::Tensor> hold;
        std::vector<SumInput> in{memory_input(acc, DType::F32, 1.f)};
        if (fp32 && sum_input(members[k], i, static_cast<float>(p.weight[k]), hold, in)) {
          // acc = (0 + acc) + w x: step by step the same bits as one merge of all members
          parallel_sum(in, 1.f, acc.data_ptr(), DType::F32, acc.numel(), /*stream=*/false);
        } else {
          method.accumulate(acc, input(members[k], i), p.weight[k]);
          release(members[k], i);
        }
      }
      if (fp32 && kernels::sum_kernel_supports(spec.dtype)) {
        at::Tensor out = output_buffer(i);
        if (!parallel_sum({memory_input(acc, DType::F32, 1.f)}, sum_divisor(members, p), out.data_ptr(), spec.dtype, out.numel(), /*stream=*/true))
          throw_not_finite(i);
        return out;
      }
      double wsum = 0;
      for (size_t k = 0; k < members.size(); ++k) wsum += p.weight[k];
      result = acc.clone();
      method.finish(result, wsum, p);
    } else if (at::Tensor k = running_sum_kernel(i, members, p); k.defined()) {
      return k;
    } else {
      TensorGroup g;
      g.name = n;
      if (base) g.base = to_torch(base->view(n));
      for (size_t m : members) g.models.push_back(input(m, i));
      result = method.merge_into(g, p, opts.seed, torch_scalar_type(spec.dtype));
      for (size_t m : members) release(m, i);
      if (base) base->view(n).release();
    }
    at::Tensor out = result.to(torch_scalar_type(spec.dtype)).contiguous();
    if (borrowed && out.data_ptr() == result.data_ptr()) out = out.clone();
    if (borrowed) release(members[0], i);
    check_finite(i, out);
    return out;
  }

  bool incremental() const { return opts.incremental && method.running_sum() && !base; }
  void note_members(const std::vector<size_t>& members) {
    if (incremental()) sum_members = members;
  }
};

Merger::Merger(std::vector<const Checkpoint*> candidates, std::vector<std::map<std::string, double>> params,
               const Checkpoint* base, EngineOptions opts, dist::Communicator& comm)
    : impl_(std::make_unique<Impl>(std::move(candidates), std::move(params), base, std::move(opts), comm)) {
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
  const Params p = s.resolve(members);
  s.spare = std::move(s.kept);
  s.kept.clear();
  for (size_t i : s.mine) s.kept[i] = s.merge_one(i, members, p);
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

void Merger::write(const fs::path& out, const std::string& card, bool overwrite, const std::vector<size_t>* members) {
  torch::NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  Impl& s = *impl_;
  const Checkpoint& ref = *s.ref;
  const int rank = s.comm.rank(), R = s.comm.size();
  const fs::path tmp = fs::path(out.string() + ".tmp");
  std::optional<Params> p;
  if (members) p = s.resolve(*members);  // parameter errors before anything is created
  if (rank == 0) {
    if (fs::exists(out) && !overwrite) throw_bad_input(out.string(), "output directory exists (pass --overwrite to replace it)");
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
      if (members && s.stream_running_sum(i, *members, *p, w)) {
        progress.advance();
        continue;
      }
      at::Tensor t = members ? s.merge_one(i, *members, *p) : s.kept.at(i);
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
