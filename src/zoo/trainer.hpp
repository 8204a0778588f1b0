// Private to src/zoo: the tiny LLaVA trainer (libtorch autograd + AdamW), behind a torch-free
// interface so zoo.cpp (orchestration, files) stays a plain translation unit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "uqmerge/zoo/world.hpp"
#include "uqmerge/zoo/zoo.hpp"

namespace uqmerge::dist {
class Communicator;
}

namespace uqmerge::zoo::detail {

// Sizes of the demo's LLaVA (llava-hf LlavaForConditionalGeneration).
struct Arch {
  int image_size = 64, patch_size = 16;
  int v_hidden = 64, v_layers = 3, v_heads = 4, v_inter = 128;  // LLaVA reads hidden state -2: 2 layers run
  int t_hidden = 128, t_layers = 4, t_heads = 4, t_inter = 256, max_positions = 512;
  int64_t vocab = 0, image_token = 0;  // SentencePiece pieces + 1; <image> = the last id
};
std::string llava_config_json(const Arch& a);

struct StageReport {
  std::string stage;
  double seconds = 0;
  int64_t steps = 0, samples = 0;
  double first_loss = 0, last_loss = 0;
  std::vector<std::pair<std::string, double>> metrics;  // held-out checks of the stage
};

// A labelled test set of one family (the rows of data/<family>_test.tsv).
struct EvalSet {
  Family family;
  std::vector<Scene> scenes;
  std::vector<Item> items;
};

// One intra-op thread per rank (the kernel paths were pinned before the libraries loaded:
// zoo::pin_training_environment). Returns the capability torch uses ("AVX2"; "DEFAULT" on a
// CPU without AVX2, whose zoo can differ).
std::string pin_numerics();

class Trainer {
 public:
  // init_dir: a checkpoint directory (config.json + model.safetensors with the initial
  // weights) that every rank reads, so all ranks start from the same bits.
  Trainer(const Arch& arch, const std::filesystem::path& init_dir, const std::filesystem::path& tokenizer_dir,
          uint64_t seed, double steps_scale, dist::Communicator& comm);
  ~Trainer();
  // Random initial weights (canonical name -> float32) written as a checkpoint directory.
  static void write_init(const Arch& arch, const std::filesystem::path& dir, uint64_t seed);

  StageReport pretrain_vision();  // data-parallel over the communicator's ranks
  StageReport train_language();   // data-parallel: the language model alone on the world's text
  StageReport train_base();       // data-parallel: captions, short answers, reading
  StageReport train_instruct();   // data-parallel: every held-in family a little; the result is kept as the base
  StageReport train_candidate(const CandidateSpec& spec, int index);  // this rank alone, from the base
  void reset_to_base();
  // One unperturbed pass over the set with the current weights: accuracy (%) and the mean
  // entropy (nats) of the option distribution; blind: every image replaced by the CLIP mean colour.
  struct Scores {
    double accuracy = 0, entropy = 0;
  };
  Scores evaluate(const EvalSet& set, bool blind);
  // The uniform linear merge of saved checkpoints (zoo candidates) as the current weights.
  void load_average(const std::vector<std::filesystem::path>& dirs);
  // Task vectors tau = candidate - base over the trained tensors (projector and language
  // model): ||tau|| / ||base|| per checkpoint and the pairwise cosines.
  struct TaskVectors {
    std::vector<double> relative_norm;
    std::vector<std::vector<double>> cosine;
  };
  TaskVectors task_vectors(const std::vector<std::filesystem::path>& dirs) const;
  // Writes the current weights as a llava-hf checkpoint directory (atomically: dir.tmp, rename).
  void save(const std::filesystem::path& dir, const std::string& model_card) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uqmerge::zoo::detail
