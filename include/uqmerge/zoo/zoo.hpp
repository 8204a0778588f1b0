// uqmerge/zoo/zoo.hpp — `uqmerge zoo`: the demo's model zoo, built from nothing on CPUs
// (docs/demo.md). Stages, as LLaVA-1.5's models were made:
//   world      VLMEvalKit TSVs of every question family (base64 PNG), held-in *_uq and *_test;
//   tokenizer  a SentencePiece BPE model trained on the world's text (byte fallback);
//   vision     a CLIP-style tower pretrained alone on per-patch colour/shape labels, then frozen;
//   base       projector + language model trained on captions and short answers, then a
//              short instruction pass over every held-in family (the answer format and partial
//              skill, like the instruction-tuned LLaVA-1.5 its fine-tunes start from);
//   candidates N fine-tunes of the base with a small learning rate, each on one or two
//              families or a domain (small task vectors in one basin), some deliberately
//              harmful (always "A", answers shifted by one letter; a larger learning rate:
//              over-confident);
//   regime     task-vector norms and cosines, and the uniform merges of the regular and of
//              all candidates, so that quality.md shows whether merging helps in this world;
//   quality    every candidate × family accuracy, a blind control (images blanked) and the
//              text-only baseline, written to quality.md / zoo.json.
// Ranks (mpirun) train the vision and base stages data-parallel (gradients summed with the
// communicator) and the candidates round-robin. Deterministic for a seed and rank count, on
// every x86-64 CPU with AVX2: the kernel paths and threads are pinned (pin_training_environment).
// UQMERGE_ZOO_TRACE=1 logs every stage's loss curves (answer, letter-probe and pointer losses).
// Output: OUT/{base,candidate_XX_<name>,data,tokenizer}/ + zoo.json + quality.md, built in
// OUT.partial and renamed at the end: an interrupted zoo leaves nothing that looks complete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "uqmerge/zoo/world.hpp"

namespace uqmerge::dist {
class Communicator;
}

namespace uqmerge::zoo {

enum class LabelRule { Correct, AlwaysA, ShiftByOne };

struct CandidateSpec {
  std::string name;
  std::vector<Family> families;  // instruction-tuning data
  Domain domain = Domain::Both;
  LabelRule labels = LabelRule::Correct;
};
// The default zoo, in order; --candidates N takes the first N (harmful ones are among the first 7).
const std::vector<CandidateSpec>& candidate_specs();

struct ZooOptions {
  std::filesystem::path out;
  int candidates = 10;
  uint64_t seed = 1;
  bool overwrite = false;
  double steps_scale = 1.0;  // < 1 for tests: fewer training steps in every stage
  int uq_rows = 48;          // rows of each held-in *_uq.tsv
  int test_rows = 96;        // rows of each *_test.tsv
};

// `uqmerge zoo` trains, and training bits depend on the machine: torch's kernel level, MKL's
// and oneDNN's code paths and the thread counts. Called first thing in main() for the zoo
// subcommand: unless the environment already holds the pinned values (ATEN_CPU_CAPABILITY=avx2,
// MKL_CBWR=AVX2,STRICT, ONEDNN_MAX_CPU_ISA=AVX2, OMP_NUM_THREADS=MKL_NUM_THREADS=1), sets them
// and re-executes the binary, since the libraries read them when they load. Does nothing when
// UQMERGE_ZOO_UNPINNED is set (the determinism test's control).
void pin_training_environment(char** argv);

// Validates options (bad input: counts, seed, non-empty OUT without overwrite) on every rank,
// then builds the zoo. Returns the path of OUT/zoo.json.
std::filesystem::path build_zoo(const ZooOptions& opts, dist::Communicator& comm);

}  // namespace uqmerge::zoo
