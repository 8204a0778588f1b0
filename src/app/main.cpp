// uqmerge — command-line entry point. Parses the subcommand, runs it, and is the one place
// where errors are caught: logged as one line with the rank, then exit code 2 (bad input),
// 1 (internal) or 3 (not implemented: kept for subcommands under construction); with several MPI ranks, MPI_Abort ends them all.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/merge/config.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/version.hpp"
#include "uqmerge/zoo/zoo.hpp"


namespace {
// The registry's method names, comma-separated (README.md's list is checked against it by tests/e2e/check_docs.py).
std::string method_list() {
  std::string out;
  for (const auto& n : uqmerge::merge::method_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace uqmerge;
  // Every batch allocates and frees the same activation, mask and logit buffers. glibc's
  // defaults give blocks over its dynamic mmap threshold back to the kernel and trim the heap
  // top on free, so each batch paid a page fault and a kernel zeroing per page again (~12 % of
  // the uncertainty stage's time on the demo models, perf). Keep freed memory in the heap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  if (argc > 1 && std::string(argv[1]) == "zoo") zoo::pin_training_environment(argv);
  CLI::App app{"uqmerge " UQMERGE_VERSION
               " — uncertainty-guided merging of fine-tuned multimodal LLMs (LLaVA-1.5 family).\n"
               "Measures each model's label-free uncertainty, merges them incrementally in descending\n"
               "order of uncertainty, and keeps the merge with the lowest uncertainty."};
  app.set_version_flag("--version", "uqmerge " UQMERGE_VERSION);
  app.require_subcommand(1, 1);
  app.fallthrough(false);

  app::InspectArgs inspect_args;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "Print a checkpoint's architecture, dtypes, parameter counts, shard files and "
                 "every validation problem (exit 2 if any error).");
  inspect->add_option("dir", inspect_args.dir, "Hugging Face model directory, or one .safetensors file")->required();
  inspect->add_option("--vision-tower", inspect_args.vision_tower,
                      "CLIP directory (original LLaVA layout, when mm_vision_tower is not a local path)");
  inspect->add_flag("--tensors", inspect_args.list_tensors, "also list every tensor");

  app::AnswerArgs answer_args;
  CLI::App* answer = app.add_subcommand(
      "answer", "Option distribution (logits, probabilities, chosen letter) of one model for one image and "
                "multiple-choice question, built as the uncertainty stage builds its unperturbed input.");
  answer->add_option("--model", answer_args.model, "Hugging Face model directory")->required();
  answer->add_option("--vision-tower", answer_args.vision_tower, "CLIP directory (original LLaVA layout)");
  answer->add_option("--image", answer_args.image, "image file (PNG, JPEG, ...)")->required();
  answer->add_option("--question", answer_args.question, "question text")->required();
  answer->add_option("--hint", answer_args.hint, "hint line shown before the question");
  answer->add_option("--option", answer_args.options, "an option's text; repeat in letter order (A, B, ...)")->required();
  answer->add_flag("--no-extra-options", answer_args.no_extra_options,
                   "do not append \"I don't know\" and \"None of the above\"");
  answer->add_option("--template", answer_args.conv_template, "conversation template: llava_v1 | vicuna_v1")
      ->capture_default_str();
  answer->add_option("--image-aspect", answer_args.image_aspect, "pad | crop (default: the checkpoint's, else pad)");
  answer->add_option("--dtype", answer_args.dtype, "compute dtype: float32 | bfloat16 | float16")->capture_default_str();
  answer->add_option("--threads", answer_args.threads, "CPU threads (0 = all cores)")->capture_default_str();
  answer->add_flag("--json", answer_args.json, "print JSON");

  app::UqArgs uq_args;
  CLI::App* uq = app.add_subcommand(
      "uq", "Uncertainty of each listed model on each dataset (perturbations: AugMix, prompt text, attention "
            "dropout), as MPI ranks; rank 0 writes OUTPUT_DIR/results.h5.");
  uq->add_option("-c,--config", uq_args.config, "YAML config (docs/config.md)")->required();

  app::RunArgs run_args;
  CLI::App* run = app.add_subcommand(
      "run", "Algorithm 1: every candidate's uncertainty, merges of the first t in descending order of uncertainty, "
             "the merge with the lowest uncertainty written to OUTPUT_DIR/merged, every number to results.h5.");
  run->add_option("-c,--config", run_args.config, "YAML config (docs/config.md)")->required();
  run->add_flag("--overwrite", run_args.overwrite, "replace OUTPUT_DIR/merged from an earlier run");
  run->add_flag("--save-all-steps", run_args.save_all_steps, "also write every step's merged model to OUTPUT_DIR/steps");
  run->add_flag("--restart", run_args.restart,
                "ignore OUTPUT_DIR/state.uqs and start over (by default a rerun resumes from it; SIGTERM/SIGUSR1 stop at "
                "the next evaluation with exit code 75)");

  app::EvalArgs eval_args;
  CLI::App* eval = app.add_subcommand(
      "eval", "Accuracy of each candidate on labelled multiple-choice data (unperturbed input, argmax over the "
              "row's option letters); rank 0 writes OUTPUT_DIR/eval.h5.");
  eval->add_option("-c,--config", eval_args.config, "YAML config (docs/config.md; the uq section's datasets)")->required();

  app::MergeArgs merge_args;
  CLI::App* merge = app.add_subcommand(
      "merge", "Merge checkpoints from a mergekit YAML (" + method_list() + "), without uncertainty.");
  merge->add_option("config", merge_args.config, "mergekit-style YAML")->required();
  merge->add_option("-o,--out", merge_args.out, "output model directory")->required();
  merge->add_flag("--overwrite", merge_args.overwrite, "replace an existing output directory");
  merge->add_option("--backend", merge_args.backend,
                    "auto | mpi | nccl: collectives of the merge (auto = mpi: the merge runs in host memory; nccl stages "
                    "the shards through the GPUs)")
      ->capture_default_str();
  merge->add_option("--stale-s", merge_args.stale_s, "watchdog: a rank without heartbeat this long ends the job (0 = off)")
      ->capture_default_str();
  merge->add_option("--timeout-s", merge_args.timeout_s, "watchdog: a collective incomplete this long ends the job (0 = off)")
      ->capture_default_str();

  app::ZooArgs zoo_args;
  CLI::App* zoo = app.add_subcommand(
      "zoo", "Build the built-in demo: a synthetic visual world (VLMEvalKit TSVs), a SentencePiece tokenizer, a "
             "pretrained vision tower, a base and N instruction-tuned LLaVA candidates trained here on the CPU "
             "(docs/demo.md). Under mpirun the stages are split over the ranks.");
  zoo->add_option("-o,--out", zoo_args.out, "output directory (must be absent or empty unless --overwrite)")->required();
  zoo->add_option("--candidates", zoo_args.candidates, "number of candidates, 2..10 (default 10)");
  zoo->add_option("--seed", zoo_args.seed, "seed of everything: world, data order, initial weights (default 1)");
  zoo->add_option("--steps-scale", zoo_args.steps_scale, "multiply every stage's training steps (tests use < 1)");
  zoo->add_flag("--overwrite", zoo_args.overwrite, "replace a non-empty output directory");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "uqmerge: %s (see uqmerge --help)\n", e.what());
    return kExitBadInput;
  }

  // Subcommands that run as MPI ranks own MPI for the whole process, so an error caught below
  // can still MPI_Abort every rank.
  std::optional<dist::MpiRuntime> mpi;
  try {
    log::init(0, 1);  // MpiRuntime re-initialises the log with the rank
    if (uq->parsed() || run->parsed() || eval->parsed() || merge->parsed() || zoo->parsed()) {
      mpi.emplace(&argc, &argv);
      if (zoo->parsed()) return app::cmd_zoo(zoo_args);
      if (eval->parsed()) return app::cmd_eval(eval_args);
      if (merge->parsed()) return app::cmd_merge(merge_args);
      return uq->parsed() ? app::cmd_uq(uq_args) : app::cmd_run(run_args);
    }
    if (inspect->parsed()) return app::cmd_inspect(inspect_args);
    if (answer->parsed()) return app::cmd_answer(answer_args);
    return kExitBadInput;
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_job(exit_code_for(e));
  }
}
