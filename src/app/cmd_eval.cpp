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
  require_labelled(prep.datasets);
  const uq::UqOptions clean = clean_options(cfg.uq);
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
    const Accuracy acc = accuracy(prep.datasets, r);
    fmt::print("{:<24}", cfg.models[m].name);
    for (size_t d = 0; d < prep.datasets.size(); ++d) {
      const auto& ds = prep.datasets[d];
      std::vector<int64_t> answer;
      for (size_t i = 0; i < ds.size(); ++i) answer.push_back(ds.row(i).answer);
      const std::string dg = g + "/" + ds.name();
      h5->group(dg);
      h5->dataset(dg + "/predicted", acc.predicted[d]);
      h5->dataset(dg + "/answer", answer);
      h5->attr(dg, "accuracy", acc.percent[d]);
      h5->attr(dg, "correct", acc.correct[d]);
      h5->attr(dg, "labelled", acc.labelled[d]);
      fmt::print(" {:>12.2f}", acc.percent[d]);
    }
    h5->attr(g, "accuracy_macro", acc.macro);
    fmt::print(" {:>10.2f}\n", acc.macro);
  }
  if (h5) {
    h5->commit();
    fmt::print("results: {}\n", (cfg.output_dir / "eval.h5").string());
  }
  comm->barrier();
  return kExitOk;
}

}  // namespace uqmerge::app
