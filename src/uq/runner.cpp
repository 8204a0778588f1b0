// Distributed uncertainty evaluation of one model (see include/uqmerge/uq/runner.hpp).
#include "uqmerge/uq/runner.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "uqmerge/dist/sharding.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/progress.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::uq {

namespace {
// The vision cache's dataset id for the blank image (no dataset hashes to it in practice).
constexpr uint64_t kBlankImageId = 0x626c616e6b000000ull;  // "blank"
}  // namespace

ModelResult evaluate_model(const std::string& name, const model::LlavaModel& model, const model::Tokenizer& tok,
                           model::ImageStyle style, uint64_t tower, const std::vector<data::Dataset>& datasets,
                           const UqOptions& opts, VisionCache& cache, dist::Communicator& comm) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const ModelConfig& cfg = model.config();
  if (!cfg.vision) throw_bad_input(name, "a text-only checkpoint has no vision tower: uncertainty needs a LLaVA model");
  model::Preprocessor pre;
  pre.size = static_cast<int>(cfg.vision->image_size);
  pre.mode = model::parse_aspect_mode(opts.image_aspect.empty() ? cfg.image_aspect_ratio : opts.image_aspect);
  const int64_t J = opts.plan.perturbations;
  if (J < 1) throw_bad_input("uq.perturbations", "must be at least 1");
  ModelResult result;
  result.model = name;
  uint64_t vision_passes = 0, evaluations = 0;
  const int64_t P = model.image_tokens(), Hv = cfg.vision->hidden_size;
  const at::ScalarType dt = model.dtype();
  const size_t feat_bytes = static_cast<size_t>(P * Hv) * at::elementSize(dt);

  // Draw indices 0 .. JR-1 per sample: repeat r is r*J .. r*J + J-1 (perturb/plan.hpp).
  const int64_t R = opts.plan.repeats, JR = J * R;
  if (R < 1) throw_bad_input("uq.repeats", "must be at least 1");
  uint64_t total_pairs = 0;
  for (const auto& ds : datasets) {
    const auto [b, e] = dist::block_range(ds.size() * JR, comm.rank(), comm.size());
    total_pairs += e - b;
  }
  Progress progress("uq " + name, total_pairs, "evals");
  for (const auto& ds : datasets) {
    const uint64_t did = perturb::dataset_id(ds.name());
    const int64_t S = static_cast<int64_t>(ds.size()), K = static_cast<int64_t>(ds.max_options());
    const std::vector<int64_t> rows = tok.option_tokens(model::option_letters(static_cast<size_t>(K)));
    std::vector<Accumulator> accs(static_cast<size_t>(R), Accumulator(S, K));  // one per repeat
    const auto [begin, end] = dist::block_range(static_cast<uint64_t>(S * JR), comm.rank(), comm.size());
    // Cached vision features: one entry per (sample, draw); the blank control's one image, once.
    const auto feature_key = [&](uint64_t i, uint64_t j) -> CacheKey {
      if (opts.blank_images) return {tower, kBlankImageId, 0, 0};
      return {tower, did, i, j};
    };
    for (uint64_t q0 = begin; q0 < end; q0 += static_cast<uint64_t>(opts.batch_size)) {
      const uint64_t q1 = std::min<uint64_t>(end, q0 + static_cast<uint64_t>(opts.batch_size));
      const int64_t B = static_cast<int64_t>(q1 - q0);
      std::vector<at::Tensor> feats(static_cast<size_t>(B));
      std::vector<int64_t> miss;
      std::vector<perturb::Perturbation> perts;
      std::vector<float> miss_pixels;
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t i = (q0 + static_cast<uint64_t>(b)) / static_cast<uint64_t>(JR),
                       j = (q0 + static_cast<uint64_t>(b)) % static_cast<uint64_t>(JR);
        perts.push_back(perturb::plan(opts.plan, did, i, j));
        std::vector<uint8_t> bytes;
        if (cache.get(feature_key(i, j), bytes)) {
          feats[b] = torch::from_blob(bytes.data(), {P, Hv}, dt).clone();
          continue;
        }
        if (opts.blank_images) {
          if (!miss.empty()) continue;  // one blank image per batch: every sample's features are the same
          miss_pixels.assign(static_cast<size_t>(3 * pre.size * pre.size), 0.0f);
        } else {
          model::RgbImage img = ds.image(i);
          if (opts.plan.image) img = perturb::augmix(img, opts.augmix, perts.back().image_seed);
          const std::vector<float> px = pre(img);
          miss_pixels.insert(miss_pixels.end(), px.begin(), px.end());
        }
        miss.push_back(b);
      }
      if (!miss.empty()) {
        const at::Tensor px = torch::from_blob(miss_pixels.data(), {static_cast<int64_t>(miss.size()), 3, pre.size, pre.size},
                                               torch::kFloat32);
        const at::Tensor vf = model.vision_features(px).contiguous();
        vision_passes += miss.size();
        for (size_t m = 0; m < miss.size(); ++m) {
          const int64_t b = miss[m];
          const uint64_t q = q0 + static_cast<uint64_t>(b);
          feats[b] = vf[static_cast<int64_t>(m)].clone();
          cache.put(feature_key(q / static_cast<uint64_t>(JR), q % static_cast<uint64_t>(JR)), feats[b].data_ptr(), feat_bytes);
        }
      }
      if (opts.blank_images)
        for (auto& f : feats)
          if (!f.defined()) f = feats[static_cast<size_t>(miss.empty() ? 0 : miss[0])];  // the shared blank features
      const at::Tensor embeds = model.project(torch::stack(feats));
      std::vector<model::Sequence> seqs;
      model::AttentionDropout drop{opts.plan.attention_dropout, {}};
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t i = (q0 + static_cast<uint64_t>(b)) / static_cast<uint64_t>(JR);
        const std::string prompt = model::build_prompt(opts.conv_template, ds.question(i),
                                                       perturb::prompt_parts(opts.plan.text, perts[b].text));
        seqs.push_back({tok.encode_prompt(prompt, style), b});
        drop.seeds.push_back(perts[b].dropout_seed);
      }
      const at::Tensor logits = model.last_logits(seqs, embeds, rows, drop.p > 0 ? &drop : nullptr).to(torch::kDouble);
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t q = q0 + static_cast<uint64_t>(b), i = q / static_cast<uint64_t>(JR);
        const size_t r = static_cast<size_t>((q % static_cast<uint64_t>(JR)) / static_cast<uint64_t>(J));
        const int64_t n = static_cast<int64_t>(ds.question(i).options.size());
        const at::Tensor l = logits[b].slice(0, 0, n);
        if (!torch::isfinite(l).all().item<bool>())
          throw_bad_input(name, "non-finite option logits on dataset '" + ds.name() + "' row '" + ds.row(i).index +
                                    "': the checkpoint's weights are broken (NaN/Inf)");
        std::vector<double> p(static_cast<size_t>(K), 0.0);
        const at::Tensor sm = torch::softmax(l, 0).contiguous();
        std::memcpy(p.data(), sm.data_ptr<double>(), static_cast<size_t>(n) * sizeof(double));
        accs[r].add(static_cast<int64_t>(i), p.data());
      }
      evaluations += static_cast<uint64_t>(B);
      progress.advance(static_cast<uint64_t>(B));
    }
    // One allreduce: per repeat [p_sum (S*K) | h_sum (S) | count (S)] in fp64.
    std::vector<double> buf;
    for (const Accumulator& acc : accs) {
      buf.insert(buf.end(), acc.p_sum.begin(), acc.p_sum.end());
      buf.insert(buf.end(), acc.h_sum.begin(), acc.h_sum.end());
      for (int32_t c : acc.count) buf.push_back(c);
    }
    comm.allreduce_sum(buf.data(), buf.size(), DType::F64);
    std::vector<double> p_mean(static_cast<size_t>(S * K), 0.0), repeat_uq;
    std::vector<DatasetUq> per_repeat;
    auto it = buf.begin();
    for (Accumulator& acc : accs) {
      std::copy_n(it, S * K, acc.p_sum.begin());
      std::copy_n(it + S * K, S, acc.h_sum.begin());
      for (int64_t i = 0; i < S; ++i) acc.count[i] = static_cast<int32_t>(std::lround(it[S * K + S + i]));
      it += S * K + 2 * S;
      for (size_t v = 0; v < p_mean.size(); ++v) p_mean[v] += acc.p_sum[v] / static_cast<double>(JR);
      per_repeat.push_back(finalize_dataset(acc, J));
    }
    DatasetUq dq = per_repeat[0];
    if (R > 1) {  // each sample's terms: the mean over the repeats
      std::vector<double> u(static_cast<size_t>(S)), t(u), a(u);
      for (int64_t i = 0; i < S; ++i) {
        SampleUq m;
        for (const DatasetUq& r : per_repeat) {
          const SampleUq& x = r.samples[static_cast<size_t>(i)];
          m.total += x.total / static_cast<double>(R);
          m.data += x.data / static_cast<double>(R);
          m.uq += x.uq / static_cast<double>(R);
        }
        dq.samples[static_cast<size_t>(i)] = m;
        u[static_cast<size_t>(i)] = m.uq, t[static_cast<size_t>(i)] = m.total, a[static_cast<size_t>(i)] = m.data;
      }
      dq.uq = mean_stderr(u);
      dq.total = mean_stderr(t);
      dq.data = mean_stderr(a);
      for (const DatasetUq& r : per_repeat)
        for (const SampleUq& x : r.samples) repeat_uq.push_back(x.uq);
    }
    result.datasets.push_back({ds.name(), K, std::move(dq), std::move(p_mean), std::move(repeat_uq)});
  }
  progress.finish();
  double counters[2] = {static_cast<double>(vision_passes), static_cast<double>(evaluations)};
  comm.allreduce_sum(counters, 2, DType::F64);
  result.vision_passes = static_cast<uint64_t>(counters[0]);
  result.evaluations = static_cast<uint64_t>(counters[1]);
  std::vector<DatasetUq> all;
  for (const auto& d : result.datasets) all.push_back(d.uq);
  result.overall = overall(all);
  result.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return result;
}

}  // namespace uqmerge::uq
