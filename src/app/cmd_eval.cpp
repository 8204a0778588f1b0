// `uqmerge eval -c CONFIG.yaml`: accuracy of each candidate on labelled multiple-choice data —
// the unperturbed input (no AugMix, no prompt sentence, no dropout, J = 1), the option letter
// with the highest probability among the row's own options. Rows without `answer` are skipped;
// a dataset without any label is bad input. Rank 0 writes OUTPUT_DIR/eval.h5 and prints a table.
#include <fmt/format.h>

#include "commands.hpp"
#include "run_common.hpp"
#include "uqmerge/io/results_h5.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::app {

int cmd_eval(const EvalArgs& a) {
  auto comm = dist::make_mpi_communicator();
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  Prepared prep = prepare(cfg);
  for (const auto& ds : prep.datasets) {
    size_t labelled = 0;
    for (size_t i = 0; i < ds.size(); ++i) labelled += ds.row(i).answer >= 0;
    if (!labelled) throw_bad_input(ds.spec().path.string(), "no row has an 'answer': accuracy needs labelled data");
  }
  uq::UqOptions clean = cfg.uq;  // the unperturbed input
  clean.plan.perturbations = 1;
  clean.plan.text = perturb::TextMode::None;
  clean.plan.attention_dropout = 0.0;
  clean.plan.image = false;
  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("eval-rank" + std::to_string(comm->rank())));
  H5Writer* h5 = nullptr;
  std::unique_ptr<H5Writer> owner;
  if (comm->rank() == 0) {
    owner = std::make_unique<H5Writer>(cfg.output_dir / "eval.h5");
    h5 = owner.get();
    h5->attr("/", "schema", std::string("uqmerge-eval"));
    h5->attr("/", "schema_version", int64_t{1});
    h5->attr("/", "ranks", int64_t{comm->size()});
    h5->group("/eval");
    fmt::print("{:<24}", "model");
    for (const auto& d : prep.datasets) fmt::print(" {:>12}", d.name());
    fmt::print(" {:>10}\n", "average");
  }
  for (size_t m = 0; m < prep.checkpoints.size(); ++m) {
    const uq::ModelResult r =
        evaluate_checkpoint(cfg.models[m].name, prep.checkpoints[m], prep.towers[m], cfg, prep.datasets, clean, cache, *comm);
    if (!h5) continue;
    const std::string g = fmt::format("/eval/model_{:03}", m);
    h5->group(g);
    h5->attr(g, "name", cfg.models[m].name);
    double sum = 0;
    fmt::print("{:<24}", cfg.models[m].name);
    for (size_t d = 0; d < prep.datasets.size(); ++d) {
      const auto& ds = prep.datasets[d];
      const int64_t K = r.datasets[d].options;
      std::vector<int64_t> pred, answer;
      int64_t correct = 0, labelled = 0;
      for (size_t i = 0; i < ds.size(); ++i) {
        const int64_t n = static_cast<int64_t>(ds.question(i).options.size());
        const double* p = &r.datasets[d].p_mean[i * static_cast<size_t>(K)];
        const int64_t best = std::max_element(p, p + n) - p;
        pred.push_back(best);
        answer.push_back(ds.row(i).answer);
        if (ds.row(i).answer >= 0) {
          ++labelled;
          correct += best == ds.row(i).answer;
        }
      }
      const double acc = 100.0 * static_cast<double>(correct) / static_cast<double>(labelled);
      sum += acc;
      const std::string dg = g + "/" + ds.name();
      h5->group(dg);
      h5->dataset(dg + "/predicted", pred);
      h5->dataset(dg + "/answer", answer);
      h5->attr(dg, "accuracy", acc);
      h5->attr(dg, "correct", correct);
      h5->attr(dg, "labelled", labelled);
      fmt::print(" {:>12.2f}", acc);
    }
    h5->attr(g, "accuracy_macro", sum / static_cast<double>(prep.datasets.size()));
    fmt::print(" {:>10.2f}\n", sum / static_cast<double>(prep.datasets.size()));
  }
  if (h5) {
    h5->commit();
    fmt::print("results: {}\n", (cfg.output_dir / "eval.h5").string());
  }
  comm->barrier();
  return kExitOk;
}

}  // namespace uqmerge::app
