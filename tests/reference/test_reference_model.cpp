// The LLaVA forward pass against transformers' LlavaForConditionalGeneration on tiny random
// checkpoints (made by make_llava_logits.py into UQMERGE_REF_DIR/llava): vision features,
// projected image embeddings, full logits and last-position option logits, max abs diff
// <= 1e-4 in fp32. Also: attention-dropout reproducibility and batch independence.
#include <cstdlib>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "uqmerge/model/torch_view.hpp"
#include "uqmerge/model/llava.hpp"
#include "../cuda_test.hpp"

namespace uqmerge::model {
namespace {

namespace fs = std::filesystem;

fs::path ref_dir() {
  const char* d = std::getenv("UQMERGE_REF_DIR");
  if (!d) throw std::runtime_error("UQMERGE_REF_DIR not set (run through ctest)");
  return fs::path(d) / "llava";
}

nlohmann::json cases() {
  std::ifstream in(ref_dir() / "cases.json");
  return nlohmann::json::parse(in);
}

struct Case {
  std::string name;
  std::unique_ptr<LlavaModel> model;
  std::shared_ptr<const SafetensorsFile> ref;
  std::vector<Sequence> seqs;
  at::Tensor tensor(const std::string& n) const { return to_torch(ref->view(n)).clone(); }
};

Case load(const std::string& name, const nlohmann::json& info, DType compute = DType::F32, const std::string& device = "cpu") {
  Case c;
  c.name = name;
  const fs::path dir = ref_dir() / name;
  const Checkpoint ck = Checkpoint::open(dir);  // original layout: mm_vision_tower "clip" is relative
  model::LoadOptions opts;
  opts.compute = compute;
  opts.device = device;
  c.model = LlavaModel::load(ck, opts);
  c.ref = SafetensorsFile::open(dir / "reference.safetensors");
  const at::Tensor ids = c.tensor("input_ids"), lengths = c.tensor("lengths"), rows = c.tensor("image_rows");
  const int64_t image_token = info["image_token"].get<int64_t>();
  for (int64_t b = 0; b < ids.size(0); ++b) {
    Sequence s;
    s.image = rows[b].item<int64_t>();
    for (int64_t t = 0; t < lengths[b].item<int64_t>(); ++t) {
      const int64_t id = ids[b][t].item<int64_t>();
      if (id == image_token) {
        if (s.ids.empty() || s.ids.back() != kImageSlot) s.ids.push_back(kImageSlot);
      } else {
        s.ids.push_back(id);
      }
    }
    c.seqs.push_back(s);
  }
  return c;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU).to(at::kDouble) - b.to(at::kCPU).to(at::kDouble)).abs().max().item<double>();
}

TEST(ReferenceModel, MatchesTransformersInFp32) {
  const auto all = cases();
  ASSERT_GE(all.size(), 5u);
  for (auto it = all.begin(); it != all.end(); ++it) {
    SCOPED_TRACE(it.key());
    Case c = load(it.key(), it.value());
    EXPECT_EQ(c.model->image_tokens(), it.value()["image_tokens"].get<int64_t>());
    const at::Tensor vis = c.model->vision_features(c.tensor("pixel_values"));
    const double dv = max_diff(vis, c.tensor("vision"));
    const at::Tensor emb = c.model->project(vis);
    const double de = max_diff(emb, c.tensor("image_embeds"));
    const at::Tensor full = c.model->full_logits(c.seqs, emb);
    const at::Tensor ref = c.tensor("logits"), lengths = c.tensor("lengths");
    double dl = 0, dlast = 0;
    const std::vector<int64_t> rows{0, 3, 17, 42};
    const at::Tensor last = c.model->last_logits(c.seqs, emb, rows);
    for (int64_t b = 0; b < ref.size(0); ++b) {
      const int64_t n = lengths[b].item<int64_t>();
      ASSERT_EQ(c.model->expanded_length(c.seqs[b]), n);
      dl = std::max(dl, max_diff(full[b].slice(0, 0, n), ref[b].slice(0, 0, n)));
      dlast = std::max(dlast, max_diff(last[b], ref[b][n - 1].index_select(0, at::tensor(rows))));
    }
    std::printf("[%s] max |diff| vision %.2e, image embeds %.2e, logits %.2e, option logits %.2e\n",
                it.key().c_str(), dv, de, dl, dlast);
    EXPECT_LE(dv, 1e-5);
    EXPECT_LE(de, 1e-5);
    EXPECT_LE(dl, 1e-4);
    EXPECT_LE(dlast, 1e-4);
  }
}

TEST(ReferenceModel, BFloat16ComputeIsClose) {
  const auto all = cases();
  Case c = load("bf16_storage", all["bf16_storage"], DType::BF16);
  EXPECT_EQ(c.model->dtype(), at::kBFloat16);
  const at::Tensor emb = c.model->project(c.model->vision_features(c.tensor("pixel_values")));
  const at::Tensor last = c.model->last_logits(c.seqs, emb, {});
  const at::Tensor ref = c.tensor("logits"), lengths = c.tensor("lengths");
  for (int64_t b = 0; b < ref.size(0); ++b) {
    const at::Tensor r = ref[b][lengths[b].item<int64_t>() - 1];
    // bf16 keeps 8 bits of mantissa: a loose bound relative to the logits' spread.
    EXPECT_LE(max_diff(last[b], r), 0.05 * (r.abs().max().item<double>() + 1)) << b;
  }
}

// The engine on a GPU in bf16 against transformers' fp32 logits, every reference checkpoint:
// bf16 keeps 8 mantissa bits, so the bound is relative to each row's logit range (as above).
// Skipped where torch sees no CUDA device (tests/cuda_test.hpp); everything else runs on the CPU.
TEST(ReferenceModel, Bf16MatchesTransformers_CUDA) {
  UQMERGE_SKIP_WITHOUT_CUDA(torch::cuda::device_count());
  const std::string device = "cuda";
  const auto all = cases();
  for (auto it = all.begin(); it != all.end(); ++it) {
    SCOPED_TRACE(it.key());
    Case c = load(it.key(), it.value(), DType::BF16, model::resolve_device(device, 0));
    const at::Tensor emb = c.model->project(c.model->vision_features(c.tensor("pixel_values")));
    const at::Tensor last = c.model->last_logits(c.seqs, emb, {});
    const at::Tensor ref = c.tensor("logits"), lengths = c.tensor("lengths");
    double worst = 0;
    for (int64_t b = 0; b < ref.size(0); ++b) {
      const at::Tensor r = ref[b][lengths[b].item<int64_t>() - 1];
      const double d = max_diff(last[b], r), bound = 0.05 * (r.abs().max().item<double>() + 1);
      worst = std::max(worst, d / bound);
      EXPECT_LE(d, bound) << b;
    }
    std::printf("[%s on %s, bf16] worst |diff| / bound %.3f\n", it.key().c_str(), device.c_str(), worst);
  }
}

TEST(ReferenceModel, BatchMatchesOneByOne) {
  const auto all = cases();
  Case c = load("gqa_new_names", all["gqa_new_names"]);
  const at::Tensor emb = c.model->project(c.model->vision_features(c.tensor("pixel_values")));
  const std::vector<int64_t> rows{1, 2, 3};
  const at::Tensor batch = c.model->last_logits(c.seqs, emb, rows);
  AttentionDropout drop{0.1, {11, 22, 33}};
  const at::Tensor batch_d = c.model->last_logits(c.seqs, emb, rows, &drop);
  for (size_t b = 0; b < c.seqs.size(); ++b) {
    const at::Tensor one = c.model->last_logits({c.seqs[b]}, emb, rows);
    EXPECT_LE(max_diff(one[0], batch[b]), 1e-5) << b;
    AttentionDropout d1{0.1, {drop.seeds[b]}};
    const at::Tensor one_d = c.model->last_logits({c.seqs[b]}, emb, rows, &d1);
    EXPECT_LE(max_diff(one_d[0], batch_d[b]), 1e-5) << "dropout masks must not depend on the batch";
  }
}

TEST(ReferenceModel, AttentionDropoutIsSeededAndReal) {
  const auto all = cases();
  Case c = load("mha_legacy", all["mha_legacy"]);
  const at::Tensor emb = c.model->project(c.model->vision_features(c.tensor("pixel_values")));
  const std::vector<int64_t> rows{0, 1, 2, 3, 4, 5};
  const at::Tensor plain = c.model->last_logits(c.seqs, emb, rows);
  AttentionDropout zero{0.0, {1, 2, 3}};
  EXPECT_EQ(max_diff(c.model->last_logits(c.seqs, emb, rows, &zero), plain), 0.0);
  AttentionDropout a{0.1, {1, 2, 3}}, b{0.1, {4, 5, 6}};
  const at::Tensor la = c.model->last_logits(c.seqs, emb, rows, &a);
  EXPECT_EQ(max_diff(c.model->last_logits(c.seqs, emb, rows, &a), la), 0.0) << "same seeds, same logits";
  EXPECT_GT(max_diff(c.model->last_logits(c.seqs, emb, rows, &b), la), 1e-4) << "other seeds, other masks";
  EXPECT_GT(max_diff(la, plain), 1e-4) << "dropout changes the output";
}

}  // namespace
}  // namespace uqmerge::model
