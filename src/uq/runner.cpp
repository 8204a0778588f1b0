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

  uint64_t total_pairs = 0;
  for (const auto& ds : datasets) {
    const auto [b, e] = dist::block_range(ds.size() * J, comm.rank(), comm.size());
    total_pairs += e - b;
  }
  Progress progress("uq " + name, total_pairs, "evals");
  for (const auto& ds : datasets) {
    const uint64_t did = perturb::dataset_id(ds.name());
    const int64_t S = static_cast<int64_t>(ds.size()), K = static_cast<int64_t>(ds.max_options());
    const std::vector<int64_t> rows = tok.option_tokens(model::option_letters(static_cast<size_t>(K)));
    Accumulator acc(S, K);
    const auto [begin, end] = dist::block_range(static_cast<uint64_t>(S * J), comm.rank(), comm.size());
    for (uint64_t q0 = begin; q0 < end; q0 += static_cast<uint64_t>(opts.batch_size)) {
      const uint64_t q1 = std::min<uint64_t>(end, q0 + static_cast<uint64_t>(opts.batch_size));
      const int64_t B = static_cast<int64_t>(q1 - q0);
      std::vector<at::Tensor> feats(static_cast<size_t>(B));
      std::vector<int64_t> miss;
      std::vector<perturb::Perturbation> perts;
      std::vector<float> miss_pixels;
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t i = (q0 + static_cast<uint64_t>(b)) / static_cast<uint64_t>(J),
                       j = (q0 + static_cast<uint64_t>(b)) % static_cast<uint64_t>(J);
        perts.push_back(perturb::plan(opts.plan, did, i, j));
        std::vector<uint8_t> bytes;
        if (cache.get({tower, did, i, j}, bytes)) {
          feats[b] = torch::from_blob(bytes.data(), {P, Hv}, dt).clone();
          continue;
        }
        model::RgbImage img = ds.image(i);
        if (opts.plan.image) img = perturb::augmix(img, opts.augmix, perts.back().image_seed);
        const std::vector<float> px = pre(img);
        miss_pixels.insert(miss_pixels.end(), px.begin(), px.end());
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
          cache.put({tower, did, q / static_cast<uint64_t>(J), q % static_cast<uint64_t>(J)}, feats[b].data_ptr(), feat_bytes);
        }
      }
      const at::Tensor embeds = model.project(torch::stack(feats));
      std::vector<model::Sequence> seqs;
      model::AttentionDropout drop{opts.plan.attention_dropout, {}};
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t i = (q0 + static_cast<uint64_t>(b)) / static_cast<uint64_t>(J);
        const std::string prompt = model::build_prompt(opts.conv_template, ds.question(i),
                                                       perturb::prompt_parts(opts.plan.text, perts[b].text));
        seqs.push_back({tok.encode_prompt(prompt, style), b});
        drop.seeds.push_back(perts[b].dropout_seed);
      }
      const at::Tensor logits = model.last_logits(seqs, embeds, rows, drop.p > 0 ? &drop : nullptr).to(torch::kDouble);
      for (int64_t b = 0; b < B; ++b) {
        const uint64_t i = (q0 + static_cast<uint64_t>(b)) / static_cast<uint64_t>(J);
        const int64_t n = static_cast<int64_t>(ds.question(i).options.size());
        const at::Tensor l = logits[b].slice(0, 0, n);
        if (!torch::isfinite(l).all().item<bool>())
          throw_bad_input(name, "non-finite option logits on dataset '" + ds.name() + "' row '" + ds.row(i).index +
                                    "': the checkpoint's weights are broken (NaN/Inf)");
        std::vector<double> p(static_cast<size_t>(K), 0.0);
        const at::Tensor sm = torch::softmax(l, 0).contiguous();
        std::memcpy(p.data(), sm.data_ptr<double>(), static_cast<size_t>(n) * sizeof(double));
        acc.add(static_cast<int64_t>(i), p.data());
      }
      evaluations += static_cast<uint64_t>(B);
      progress.advance(static_cast<uint64_t>(B));
    }
    // One allreduce: [p_sum (S*K) | h_sum (S) | count (S)] in fp64.
    std::vector<double> buf(acc.p_sum);
    buf.insert(buf.end(), acc.h_sum.begin(), acc.h_sum.end());
    for (int32_t c : acc.count) buf.push_back(c);
    comm.allreduce_sum(buf.data(), buf.size(), DType::F64);
    std::copy_n(buf.begin(), S * K, acc.p_sum.begin());
    std::copy_n(buf.begin() + S * K, S, acc.h_sum.begin());
    for (int64_t i = 0; i < S; ++i) acc.count[i] = static_cast<int32_t>(std::lround(buf[static_cast<size_t>(S * K + S + i)]));
    std::vector<double> p_mean(acc.p_sum);
    for (double& v : p_mean) v /= static_cast<double>(J);
    result.datasets.push_back({ds.name(), K, finalize_dataset(acc, J), std::move(p_mean)});
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
