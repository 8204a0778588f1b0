// Private to src/merge: the state of a Merger (include/uqmerge/merge/engine.hpp), shared by
// merge/engine.cpp (ownership, reading, merging, gathering) and merge/engine_write.cpp (writing
// the output directory).
#pragma once

#include "uqmerge/merge/engine.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "uqmerge/dist/sharding.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/model/torch_view.hpp"
#include "uqmerge/merge/sum_kernel.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/progress.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

namespace engine_detail {
inline double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
inline bool is_vision(const std::string& n) { return n.rfind("vision.", 0) == 0; }
constexpr uint64_t kAlign = 64;  // byte alignment of each tensor in the gathered buffer
inline uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }
}  // namespace engine_detail
using namespace engine_detail;  // private header of merge/engine*.cpp

struct Merger::Impl {
  std::vector<const Checkpoint*> cands;
  std::vector<ParamMap> params;
  const Checkpoint* base = nullptr;
  const Checkpoint* ref = nullptr;
  MergeConfig opts;
  bool incremental_ = false;  // keep running sums between compute() calls
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

  Impl(std::vector<const Checkpoint*> c, std::vector<ParamMap> p, const Checkpoint* b, MergeConfig o,
       bool inc, dist::Communicator& cm)
      : cands(std::move(c)), params(std::move(p)), base(b), opts(std::move(o)), incremental_(inc), comm(cm),
        method(find_method(opts.method)) {}

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

  // Filters that match no tensor and gradients longer than the layers are bad input: mergekit
  // would quietly ignore the one and interpolate the other past the last layer.
  void check_settings() const {
    const Impl& s = *this;
    const int64_t layers = s.ref->config().text.num_hidden_layers;
    auto check = [&](const std::string& where, const std::string& key, const ParamSetting& ps) {
      for (const auto& c : ps.conds) {
        if (static_cast<int64_t>(c.values.size()) > std::max<int64_t>(layers, 1))
          throw_bad_input(s.opts.source, where + key + ": a gradient of " + std::to_string(c.values.size()) +
                                             " values for a model of " + std::to_string(layers) +
                                             " layers (give at most one value per layer)");
        if (!c.filter.empty() &&
            std::none_of(s.specs.begin(), s.specs.end(), [&](const TensorSpec& t) { return t.name.find(c.filter) != std::string::npos; }))
          throw_bad_input(s.opts.source, where + key + ": filter '" + c.filter + "' matches no tensor of " + s.ref->dir().string() +
                                             " (filters are substrings of the checkpoint's tensor names, e.g. self_attn, mlp)");
      }
    };
    for (const auto& [k, ps] : s.opts.global) check("parameters.", k, ps);
    for (size_t m = 0; m < s.params.size(); ++m)
      for (const auto& [k, ps] : s.params[m]) check("model '" + s.cands[m]->dir().string() + "': parameters.", k, ps);
  }

  // Tensor i's position among the layers for gradients (mergekit: layer k of L at k / (L - 1),
  // 1 when L = 1; embeddings, norms, head and projector at 0).
  double layer_t(size_t i) const {
    const std::string& n = names[i];
    const ModelConfig& c = ref->config();
    auto position = [&](const std::string& prefix, int64_t layers) -> std::optional<double> {
      if (n.rfind(prefix, 0) != 0) return std::nullopt;
      const int64_t k = std::stoll(n.substr(prefix.size()));
      return layers > 1 ? static_cast<double>(k) / static_cast<double>(layers - 1) : 1.0;
    };
    if (auto t = position("lm.layers.", c.text.num_hidden_layers)) return *t;
    if (c.vision)
      if (auto t = position("vision.encoder.layers.", c.vision->num_hidden_layers)) return *t;
    return 0.0;
  }

  // The parameters of tensor i (filters match its checkpoint name, gradients its layer).
  Params resolve(const std::vector<size_t>& members, size_t i) const {
    const std::string& tensor = specs[i].name;
    const double t = layer_t(i);
    auto global = [&](const std::string& k) -> std::optional<double> {
      auto it = opts.global.find(k);
      return it == opts.global.end() ? std::nullopt : it->second.at(tensor, t);
    };
    Params p;
    p.normalize = global("normalize").value_or(method.default_normalize() ? 1.0 : 0.0) != 0;
    p.lambda = global("lambda").value_or(1.0);
    p.filter_wise = global("filter_wise").value_or(0.0) != 0;
    p.t = global("t").value_or(0.5);
    p.rescale = opts.rescale.empty() ? method.default_rescale()
              : opts.rescale == "density" ? Rescale::Density
              : opts.rescale == "l1"      ? Rescale::L1
                                          : Rescale::None;
    for (const auto& spec : method.params()) {
      if (!spec.per_model) {
        if (spec.name == "rescale") continue;  // opts.rescale
        std::optional<double> v = global(spec.name);
        if (!v) v = spec.default_value;
        if (!v) throw_bad_input(opts.source, "parameter '" + spec.name + "' is required by " + opts.method + " (for tensor '" + tensor + "')");
        p.shared[spec.name] = *v;
        continue;
      }
      std::vector<double>* dst = spec.name == "weight" ? &p.weight : spec.name == "density" ? &p.density
                               : spec.name == "gamma" ? &p.gamma : spec.name == "epsilon" ? &p.epsilon
                               : spec.name == "scale" ? &p.scale : nullptr;
      if (!dst) continue;
      for (size_t m : members) {
        std::optional<double> v;
        if (auto it = params[m].find(spec.name); it != params[m].end()) v = it->second.at(tensor, t);
        if (!v) v = global(spec.name);
        if (!v) v = spec.default_value;
        if (!v)
          throw_bad_input(opts.source, "model '" + cands[m]->dir().string() + "': parameter '" + spec.name + "' is required by " +
                                           opts.method);
        dst->push_back(*v);
      }
    }
    return p;
  }

  // --- The weighted-sum kernel (linear): raw inputs in, output dtype out, one pass. -----------
  bool kernel_applies(size_t i, size_t n_members) const {
    return method.running_sum() && opts.schedule != "cascade" && !base && n_members > 1 && kernels::sum_kernel_supports(specs[i].dtype) &&
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
    } else if (members.size() == 1 && !base && method.single_is_identity()) {
      result = input(members[0], i);
      borrowed = true;
    } else if (opts.schedule == "cascade") {
      // The release's schedule: step k = a 1:1 linear merge of step k-1's result with member k
      // in the output dtype, as mergekit computes it there (sum rounded, then halved and
      // rounded): round(round(a + b) / 2). sums[i] holds the previous step's result.
      const at::ScalarType dt = torch_scalar_type(spec.dtype);
      const bool extends = incremental_ && members.size() == sum_members.size() + 1 &&
                           std::equal(sum_members.begin(), sum_members.end(), members.begin());
      at::Tensor& acc = sums[i];
      size_t from = extends && acc.defined() ? sum_members.size() : 1;
      if (from == 1) {
        acc = input(members[0], i).to(dt).clone();
        release(members[0], i);
      }
      for (size_t k = from; k < members.size(); ++k) {
        const at::Tensor sum = (acc.to(torch::kFloat32) + input(members[k], i).to(dt).to(torch::kFloat32)).to(dt);
        acc = (sum.to(torch::kFloat32) / 2).to(dt);
        release(members[k], i);
      }
      check_finite(i, acc);
      return acc;
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

  bool incremental() const { return incremental_ && method.running_sum() && !base; }
  void note_members(const std::vector<size_t>& members) {
    if (incremental() || (incremental_ && opts.schedule == "cascade")) sum_members = members;
  }
};

}  // namespace uqmerge::merge
