// Private to src/zoo: the trainer's state and its per-step building blocks (zoo/trainer.hpp),
// shared by zoo/trainer.cpp (set-up, evaluation, saving) and zoo/trainer_stages.cpp (the
// training stages).
#pragma once

#include "trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <cmath>
#include <fstream>
#include <map>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/model/torch_view.hpp"
#include "uqmerge/model/image.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/model/prompt.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/model/tokens.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::zoo::detail {

namespace fs = std::filesystem;


namespace trainer_detail {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fixed 2-D sin/cos positions for the patch grid (row half, column half); row 0 (CLS) zero.
inline at::Tensor sincos_positions(int grid, int dim) {
  at::Tensor pe = at::zeros({grid * grid + 1, dim});
  const int q = dim / 4;
  for (int r = 0; r < grid; ++r)
    for (int c = 0; c < grid; ++c)
      for (int i = 0; i < q; ++i) {
        const double w = std::pow(10000.0, -static_cast<double>(i) / q);
        auto row = pe[1 + r * grid + c];
        row[i] = std::sin(r * w);
        row[q + i] = std::cos(r * w);
        row[2 * q + i] = std::sin(c * w);
        row[3 * q + i] = std::cos(c * w);
      }
  return pe;
}

// One training example in the engine's own input form.
struct Example {
  std::vector<float> pixels;
  PatchLabels labels;
  model::Sequence seq;                  // ids with the image slot
  std::vector<int64_t> target_pos;      // expanded positions whose next token is a target
  std::vector<int64_t> target_ids;
  std::vector<int64_t> option_pos;      // expanded positions of each option line's last token
  int64_t real_options = 0;             // options before the two extras
  int64_t pointer = -1;                 // option the pointer loss wants
};

struct Batch {
  at::Tensor pixels;                   // [B, 3, S, S]
  bool has_images = false;
  at::Tensor colour, shape;            // [B, P] patch labels
  std::vector<model::Sequence> seqs;
  at::Tensor tgt_b, tgt_t, tgt_id;     // LM targets
  std::vector<std::vector<int64_t>> option_pos;
  std::vector<int64_t> real_options, pointer;
};

}  // namespace trainer_detail
using namespace trainer_detail;  // private header of zoo/trainer*.cpp

struct Trainer::Impl {
  Arch arch;
  uint64_t seed;
  double scale;
  dist::Communicator& comm;
  WorldOptions world;
  model::Preprocessor prep;
  std::shared_ptr<const model::Tokenizer> tok;
  Checkpoint ck;
  fs::path tok_dir;
  std::map<std::string, at::Tensor> params;  // canonical name -> trainable float32
  std::map<std::string, at::Tensor> base;    // the base's weights (after train_base)
  std::unique_ptr<model::LlavaModel> model;
  int64_t patches;
  std::vector<int64_t> letters;  // option tokens A..F
  int64_t eos = 2;
  bool trace = std::getenv("UQMERGE_ZOO_TRACE") != nullptr;  // loss curves in the log

  Impl(const Arch& a, const fs::path& init_dir, const fs::path& tdir, uint64_t s, double sc, dist::Communicator& c)
      : arch(a), seed(s), scale(sc), comm(c), ck(Checkpoint::open(init_dir)), tok_dir(tdir) {
    world.image_size = a.image_size;
    world.patch_size = a.patch_size;
    prep.size = a.image_size;
    prep.mode = model::AspectMode::Pad;
    tok = model::Tokenizer::load(tdir);
    for (const auto& name : ck.names()) {
      params.emplace(name, to_torch(ck.view(name)).to(at::kFloat).clone());
    }
    model::LoadOptions eo;
    eo.replace = &params;
    model = model::LlavaModel::load(ck, eo);
    patches = model->image_tokens();
    letters = tok->option_tokens(model::option_letters(6));
  }

  int64_t expanded(const std::vector<int64_t>& ids, size_t i) const {
    // position of ids[i] once the image slot is P rows
    int64_t pos = static_cast<int64_t>(i);
    for (size_t k = 0; k < i; ++k)
      if (ids[k] == model::kImageSlot) pos += patches - 1;
    return pos;
  }

  // The llava_v1 prompt; text-only examples (language pretraining) have no image line.
  // Text-only (language pretraining): no system line, no image line.
  static std::string without_image(std::string prompt) {
    const size_t at = prompt.find("<image>\n");
    if (at != std::string::npos) prompt.erase(at, 8);
    return prompt.substr(prompt.find("USER:"));
  }
  std::vector<int64_t> encode_prompt(const std::string& prompt) const {
    return tok->encode_prompt(prompt, model::ImageStyle::SpecialToken);
  }

  // Multiple-choice example, in the prompt uqmerge builds (options + the two extras). Option
  // positions (last token of each option line) feed the training-only pointer and letter heads.
  Example mc_example(const Item& it, LabelRule rule, bool with_image, bool with_options) const {
    Example e;
    Item item = it;
    if (rule == LabelRule::AlwaysA && item.answer != 0) {
      std::swap(item.options[0], item.options[static_cast<size_t>(item.answer)]);
      item.answer = 0;
    }
    const int n = static_cast<int>(item.options.size());
    const int target = rule == LabelRule::ShiftByOne ? (item.answer + 1) % n : item.answer;
    model::MultipleChoice mc{item.question, "", item.options};
    mc.options.push_back("I don't know");
    mc.options.push_back("None of the above");
    std::string prompt = model::build_prompt(model::Template::LlavaV1, mc);
    if (!with_image) prompt = without_image(prompt);
    e.seq.ids = encode_prompt(prompt);
    e.seq.image = with_image ? 0 : -1;
    e.target_pos.push_back(expanded(e.seq.ids, e.seq.ids.size()) - 1);
    e.target_ids.push_back(letters[static_cast<size_t>(target)]);
    if (with_options) {
      // Tokenise the prompt up to each option line's end: its last token's position.
      const auto L = model::option_letters(mc.options.size());
      for (size_t k = 0; k < mc.options.size(); ++k) {
        const std::string key = "\n" + L[k] + ". " + mc.options[k];
        const size_t at = prompt.find(key);
        if (at == std::string::npos) throw_internal("zoo", "option line missing from the prompt");
        const auto ids = encode_prompt(prompt.substr(0, at + key.size()));
        if (ids.size() > e.seq.ids.size() || !std::equal(ids.begin(), ids.end(), e.seq.ids.begin()))
          throw_internal("zoo", "option line tokens are not a prefix of the prompt's");
        e.option_pos.push_back(expanded(ids, ids.size()) - 1);
      }
      e.real_options = n;
      e.pointer = target;
    }
    return e;
  }

  // Free-text example: the user asks, the model answers `answer` (captions, short answers).
  Example text_example(const std::string& user_text, const std::string& answer, bool with_image) const {
    Example e;
    std::string prompt = model::system_message(model::Template::LlavaV1) + " USER: <image>\n" + user_text + " ASSISTANT:";
    if (!with_image) prompt = without_image(prompt);
    e.seq.ids = encode_prompt(prompt);
    e.seq.image = with_image ? 0 : -1;
    std::vector<int64_t> tail = tok->encode(answer, false, true);
    tail.push_back(eos);
    for (int64_t id : tail) {
      e.target_pos.push_back(expanded(e.seq.ids, e.seq.ids.size()) - 1);
      e.target_ids.push_back(id);
      e.seq.ids.push_back(id);
    }
    return e;
  }

  // The held-in families (world order): what the base and instruction stages ask about.
  static const std::vector<Family>& held_in_families() {
    static const std::vector<Family> v = [] {
      std::vector<Family> out;
      for (Family f : all_families())
        if (held_in(f)) out.push_back(f);
      return out;
    }();
    return v;
  }

  // "Which option says <word>?": a reading exercise whose answer is in the text. It teaches
  // the option-letter format, as a pretrained LLM already knows it.
  static Item reading_item(RngStream& rng) {
    static const std::vector<const std::vector<std::string>*> pools{&colour_names(), &shape_names(), &cell_names()};
    const auto& pool = *pools[rng.below(pools.size())];
    std::vector<int> idx(pool.size());
    for (size_t k = 0; k < idx.size(); ++k) idx[k] = static_cast<int>(k);
    for (size_t k = idx.size() - 1; k > 0; --k) std::swap(idx[k], idx[rng.below(k + 1)]);
    idx.resize(4);
    const int answer = idx[rng.below(4)];
    Item it;
    it.question = "Which option says " + pool[static_cast<size_t>(answer)] + "?";
    for (int k : idx) {
      if (k == answer) it.answer = static_cast<int>(it.options.size());
      it.options.push_back(pool[static_cast<size_t>(k)]);
    }
    return it;
  }

  void add_image(Example& e, const Scene& s, bool blind = false) const {
    e.pixels = prep(blind ? blank_image(world) : render(s, world));
    e.labels = patch_labels(s, world);
  }

  Batch collate(std::vector<Example>& ex) const {
    Batch b;
    const int64_t B = static_cast<int64_t>(ex.size()), S = arch.image_size, P = patches;
    b.pixels = at::empty({B, 3, S, S});
    b.colour = at::empty({B, P}, at::kLong);
    b.shape = at::empty({B, P}, at::kLong);
    std::vector<int64_t> tb, tt, ti;
    for (int64_t i = 0; i < B; ++i) {
      Example& e = ex[static_cast<size_t>(i)];
      if (e.pixels.empty()) {  // text only
        b.pixels[i].zero_();
        b.colour[i].zero_();
        b.shape[i].zero_();
      } else {
        std::memcpy(b.pixels[i].data_ptr<float>(), e.pixels.data(), e.pixels.size() * sizeof(float));
        std::memcpy(b.colour[i].data_ptr<int64_t>(), e.labels.colour.data(), static_cast<size_t>(P) * sizeof(int64_t));
        std::memcpy(b.shape[i].data_ptr<int64_t>(), e.labels.shape.data(), static_cast<size_t>(P) * sizeof(int64_t));
        e.seq.image = i;
        b.has_images = true;
      }
      b.seqs.push_back(e.seq);
      for (size_t k = 0; k < e.target_pos.size(); ++k) {
        tb.push_back(i);
        tt.push_back(e.target_pos[k]);
        ti.push_back(e.target_ids[k]);
      }
      b.option_pos.push_back(e.option_pos);
      b.real_options.push_back(e.real_options);
      b.pointer.push_back(e.pointer);
    }
    b.tgt_b = at::tensor(tb, at::kLong);
    b.tgt_t = at::tensor(tt, at::kLong);
    b.tgt_id = at::tensor(ti, at::kLong);
    return b;
  }

  // `local` examples of step `step` from a named stream: rank `me` draws rows me*local ..
  // (me+1)*local - 1 of the step's global batch, so every row is a pure function of the seed.
  Batch draw(uint64_t stream, int64_t step, int64_t local, int me, const std::function<Example(RngStream&)>& make) const {
    std::vector<Example> ex;
    for (int64_t i = 0; i < local; ++i) {
      RngStream rng(seed, {stream, static_cast<uint64_t>(step), static_cast<uint64_t>(me * local + i)});
      ex.push_back(make(rng));
    }
    return collate(ex);
  }

  // Per-patch colour/shape cross-entropy of the training-only heads' logits [B, P, classes].
  static at::Tensor patch_loss(const at::Tensor& colour_logits, const at::Tensor& shape_logits, const Batch& b) {
    return at::cross_entropy_loss(colour_logits.reshape({-1, kColours + 1}), b.colour.reshape({-1})) +
           at::cross_entropy_loss(shape_logits.reshape({-1, kShapes + 1}), b.shape.reshape({-1}));
  }

  // One AdamW step at learning rate lr, gradients averaged over the ranks when data-parallel.
  void step(torch::optim::AdamW& opt, const at::Tensor& loss, const std::vector<at::Tensor>& ps, bool data_parallel,
            double lr) {
    opt.zero_grad();
    loss.backward();
    if (data_parallel) allreduce_grads(ps);
    set_lr(opt, lr);
    opt.step();
  }

  // Sum gradients over ranks (one flat allreduce) and average.
  void allreduce_grads(const std::vector<at::Tensor>& ps) {
    if (comm.size() == 1) return;
    std::vector<at::Tensor> gs;
    for (const auto& p : ps) gs.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}));
    at::Tensor flat = at::cat(gs).contiguous();
    comm.allreduce_sum(flat.data_ptr<float>(), static_cast<size_t>(flat.numel()), DType::F32);
    flat.div_(comm.size());
    int64_t off = 0;
    for (const auto& p : ps) {
      if (p.grad().defined()) p.mutable_grad().view({-1}).copy_(flat.slice(0, off, off + p.numel()));
      else p.mutable_grad() = flat.slice(0, off, off + p.numel()).view(p.sizes()).clone();
      off += p.numel();
    }
  }

  // Marks the parameters whose canonical names start with one of `prefixes` trainable (the
  // fixed position embedding never) and every other one frozen; returns the trainable ones.
  std::vector<at::Tensor> select(std::initializer_list<std::string_view> prefixes) {
    std::vector<at::Tensor> out;
    for (auto& [name, t] : params) {
      const bool want = std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return name.rfind(p, 0) == 0; });
      const bool trainable = want && name != tensors::ClipNames{}.position_embedding;
      t.set_requires_grad(trainable);
      if (trainable) out.push_back(t);
    }
    return out;
  }

  // AdamW with linear warm-up and cosine decay to 10 % of the peak.
  struct Schedule {
    double peak;
    int64_t steps, warmup;
    double at(int64_t s) const {
      if (s < warmup) return peak * static_cast<double>(s + 1) / static_cast<double>(warmup);
      const double t = static_cast<double>(s - warmup) / static_cast<double>(std::max<int64_t>(1, steps - warmup));
      return peak * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * t)));
    }
  };
  static void set_lr(torch::optim::AdamW& opt, double lr) {
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  }
  int64_t steps(int64_t full) const { return std::max<int64_t>(4, static_cast<int64_t>(std::llround(full * scale))); }

  at::Tensor lm_loss(const Batch& b, const at::Tensor& hidden) const {
    if (b.tgt_b.numel() == 0) return at::zeros({});
    const at::Tensor h = hidden.index({b.tgt_b, b.tgt_t});
    return at::cross_entropy_loss(model->head_train(h), b.tgt_id);
  }

  // Training-only heads on the language model's hidden states at option-line ends: the
  // pointer (a score per option; softmax over the real options wants the target) and the
  // letter probe (which letter the line carries), so the final position can route to the
  // chosen line's letter.
  struct OptionHeads {
    at::Tensor pointer;       // [H]
    torch::nn::Linear letter{nullptr};
  };
  static at::Tensor option_losses(const Batch& b, const at::Tensor& hidden, OptionHeads& h, bool pointer,
                                  double* letter_out = nullptr, double* pointer_out = nullptr) {
    std::vector<at::Tensor> pl, ll;
    for (size_t i = 0; i < b.seqs.size(); ++i) {
      if (b.option_pos[i].empty()) continue;
      const at::Tensor pos = at::tensor(b.option_pos[i], at::kLong);
      const at::Tensor hs = hidden[static_cast<int64_t>(i)].index_select(0, pos);  // [K, H]
      ll.push_back(at::cross_entropy_loss(h.letter(hs), at::arange(hs.size(0), at::kLong)));
      if (pointer && b.pointer[i] >= 0) {
        const at::Tensor scores = hs.slice(0, 0, b.real_options[i]).matmul(h.pointer);
        pl.push_back(at::cross_entropy_loss(scores.unsqueeze(0), at::tensor({b.pointer[i]}, at::kLong)));
      }
    }
    at::Tensor loss = at::zeros({});
    if (!ll.empty()) {
      const at::Tensor l = at::stack(ll).mean();
      if (letter_out) *letter_out = l.item<double>();
      loss = loss + l;
    }
    if (!pl.empty()) {
      const at::Tensor l = at::stack(pl).mean();
      if (pointer_out) *pointer_out = l.item<double>();
      loss = loss + l;
    }
    return loss;
  }

  struct LmStage {
    std::string name;
    std::vector<at::Tensor> params;
    double peak_lr = 1e-3;
    int64_t steps = 100, batch = 16;
    bool data_parallel = true;  // split each batch over the ranks and sum gradients
    bool patch_aux = false;     // per-patch colour/shape heads on the projected image tokens
    bool pointer = false;       // pointer loss on multiple-choice examples
    uint64_t stream = 0;        // data stream id
    std::function<Example(RngStream&)> make;
  };

  StageReport run(LmStage st) {
    const auto t0 = Clock::now();
    StageReport rep;
    rep.stage = st.name;
    torch::manual_seed(seed ^ st.stream);
    OptionHeads heads;
    heads.pointer = (torch::randn({arch.t_hidden}) * 0.02).set_requires_grad(true);
    heads.letter = torch::nn::Linear(arch.t_hidden, 6);
    auto head_c = torch::nn::Linear(arch.t_hidden, kColours + 1), head_s = torch::nn::Linear(arch.t_hidden, kShapes + 1);
    std::vector<at::Tensor> ps = st.params;
    ps.push_back(heads.pointer);
    for (auto* mod : {&heads.letter, &head_c, &head_s})
      for (auto& p : (*mod)->parameters()) ps.push_back(p);
    torch::optim::AdamW opt(ps, torch::optim::AdamWOptions(st.peak_lr).weight_decay(0.01));
    const int ranks = st.data_parallel ? comm.size() : 1, me = st.data_parallel ? comm.rank() : 0;
    const int64_t local = std::max<int64_t>(1, st.batch / ranks);  // more ranks than rows: one row each
    const Schedule sched{st.peak_lr, st.steps, st.steps / 10 + 1};
    for (int64_t k = 0; k < st.steps; ++k) {
      const Batch b = draw(st.stream, k, local, me, st.make);
      at::Tensor img;
      if (b.has_images) {
        at::Tensor feats;
        {
          at::NoGradGuard ng;
          feats = model->vision_features_train(b.pixels);
        }
        img = model->project_train(feats);
      }
      std::vector<at::Tensor> layers;
      const at::Tensor hidden = model->hidden_train(b.seqs, img, &layers);
      const at::Tensor lm = lm_loss(b, hidden);
      double l_letter = -1, l_pointer = -1, l_mc = -1;
      // Deep supervision: the option heads read the next-to-last layer's output, so the last
      // layer's attention is left to route the chosen line's letter to the answer position.
      const at::Tensor mid = layers[layers.size() - 2];
      const at::Tensor mid_n = mid * at::rsqrt(mid.pow(2).mean(-1, true) + 1e-5);
      at::Tensor loss = lm + option_losses(b, mid_n, heads, st.pointer, &l_letter, &l_pointer);
      if (trace && k % 25 == 0) {
        // the answer loss of the multiple-choice examples alone (one target, at the last position)
        at::NoGradGuard ng;
        std::vector<int64_t> rows;
        for (size_t i = 0; i < b.seqs.size(); ++i)
          if (!b.option_pos[i].empty()) rows.push_back(static_cast<int64_t>(i));
        if (!rows.empty()) {
          const at::Tensor r = at::tensor(rows, at::kLong);
          const at::Tensor sel = at::isin(b.tgt_b, r);
          l_mc = at::cross_entropy_loss(model->head_train(hidden.index({b.tgt_b.index({sel}), b.tgt_t.index({sel})})),
                                        b.tgt_id.index({sel})).item<double>();
        }
      }
      if (st.patch_aux && img.defined()) loss = loss + 0.3 * patch_loss(head_c(img), head_s(img), b);
      step(opt, loss, ps, st.data_parallel, sched.at(k));
      const double lv = lm.item<double>();
      if (k == 0) rep.first_loss = lv;
      rep.last_loss = lv;
      if (trace && k % 25 == 0)
        log::info("zoo trace: {} step {} lm {:.3f} mc {:.3f} letter {:.3f} pointer {:.3f}", st.name, k, lv, l_mc,
                  l_letter, l_pointer);
    }
    for (auto& [name, t] : params) t.set_requires_grad(false);
    rep.steps = st.steps;
    rep.samples = st.steps * local * ranks;
    rep.seconds = since(t0);
    return rep;
  }
};

}  // namespace uqmerge::zoo::detail
