// bench/forward: uqmerge's LLaVA forward for uncertainty (vision tower, projector, language
// model, option-row logits at the last position) on a batch of B prompts, with the inputs
// reference_transformers.py builds. Also measures torch.mm's fp32 GFLOP/s on this machine (the
// "peak" the achieved rate is compared with) and RSS after load / after the first forward.
//   bench_forward MODEL_DIR BATCH THREADS REPS        prints "key value" lines
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "uqmerge/model/llava.hpp"

using namespace uqmerge;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double rss_mb() {
  std::ifstream in("/proc/self/statm");
  long total = 0, rss = 0;
  in >> total >> rss;
  return rss * (sysconf(_SC_PAGESIZE) / 1048576.0);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 7) {
    std::fprintf(stderr, "usage: bench_forward MODEL_DIR BATCH THREADS REPS [DEVICE DTYPE]\n");
    return 2;
  }
  const int B = std::stoi(argv[2]), threads = std::stoi(argv[3]), reps = std::stoi(argv[4]);
  const std::string device = argc == 7 ? model::resolve_device(argv[5], 0) : "cpu";
  const DType dtype = argc == 7 ? parse_torch_dtype(argv[6]).value_or(DType::F32) : DType::F32;
  const double rss0 = rss_mb();
  const Checkpoint ck = Checkpoint::open(argv[1]);
  model::LoadOptions opts;
  opts.compute = dtype;
  opts.threads = threads;
  opts.device = device;
  auto model = model::LlavaModel::load(ck, opts);
  const double rss_load = rss_mb() - rss0;
  const ModelConfig& cfg = model->config();
  const int64_t S = cfg.vision->image_size, P = model->image_tokens();

  std::vector<model::Sequence> seqs;
  for (int b = 0; b < B; ++b) {
    const int n = 60 + 10 * (b % 4);
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back((7 * i + 13 * b) % 31000 + 100);
    ids.insert(ids.begin() + 35, model::kImageSlot);
    seqs.push_back({ids, b});
  }
  at::Generator gen = at::detail::createCPUGenerator(0);
  const at::Tensor px = at::randn({B, 3, S, S}, gen);  // moved to the model's device by vision_features
  const std::vector<int64_t> rows{319, 350, 315, 360, 382, 383};

  auto run = [&] { return model->last_logits(seqs, model->project(model->vision_features(px)), rows); };
  const at::Tensor first = run();
  const double rss_fwd = rss_mb() - rss0;
  std::printf("checksum");
  for (int64_t i = 0; i < first.numel(); ++i) std::printf(" %.6f", first.flatten()[i].item<double>());
  std::printf("\n");
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double a = now();
    run();
    best = std::min(best, now() - a);
  }

  // FLOPs of what ran: 2 per multiply-add of every matmul.
  const LlamaConfig& t = cfg.text;
  const ClipVisionConfig& v = *cfg.vision;
  const int64_t vl = v.num_hidden_layers + 1 + cfg.vision_feature_layer;  // layers run
  const double vt = static_cast<double>(v.num_patches() + 1);
  double flops = B * (2.0 * vt * 3 * v.patch_size * v.patch_size * v.hidden_size +  // patch conv
                      vl * (2.0 * vt * (4.0 * v.hidden_size * v.hidden_size + 2.0 * v.hidden_size * v.intermediate_size) +
                            4.0 * vt * vt * v.hidden_size) +
                      2.0 * P * (static_cast<double>(v.hidden_size) * t.hidden_size + 1.0 * t.hidden_size * t.hidden_size));
  const double kv = static_cast<double>(t.num_key_value_heads) * t.head_dim, q = static_cast<double>(t.num_attention_heads) * t.head_dim;
  // All layers but the last run every token; the last computes keys/values for every token and
  // the rest (query, output projection, attention row, MLP) for the last position only.
  const double H = static_cast<double>(t.hidden_size), I = static_cast<double>(t.intermediate_size);
  for (const auto& s : seqs) {
    const double T = static_cast<double>(model->expanded_length(s));
    flops += (t.num_hidden_layers - 1) * (2.0 * T * (H * (2 * q + 2 * kv) + 3.0 * H * I) + 4.0 * T * T * q);
    flops += 2.0 * T * H * 2 * kv + 2.0 * (H * 2 * q + 3.0 * H * I) + 4.0 * T * q;
  }
  // torch.mm peak on this device and dtype, same threads (GPU: 8192^3, synchronised by .item()).
  const int64_t M = device == "cpu" ? 4096 : 8192;
  const auto mo = at::TensorOptions().dtype(model->dtype()).device(at::Device(device));
  const at::Tensor a = at::randn({M, M}, mo), bm = at::randn({M, M}, mo);
  at::mm(a, bm).sum().item<double>();
  double mm_best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const double s0 = now();
    at::mm(a, bm).sum().item<double>();
    mm_best = std::min(mm_best, now() - s0);
  }
  const double peak = 2.0 * M * M * M / mm_best / 1e9;
  std::printf("device %s\ndtype %s\n", device.c_str(), std::string(dtype_name(dtype)).c_str());
  std::printf("threads %d\nbatch %d\nseconds %.4f\nsamples_per_s %.4f\ngflops %.2f\nmm_peak_gflops %.2f\n"
              "fraction_of_peak %.3f\nrss_after_load_mb %.1f\nrss_after_forward_mb %.1f\ncheckpoint_mb %.1f\n",
              at::get_num_threads(), B, best, B / best, flops / best / 1e9, peak, flops / best / 1e9 / peak, rss_load,
              rss_fwd, ck.weights().total_bytes() / 1048576.0);
  return 0;
}
