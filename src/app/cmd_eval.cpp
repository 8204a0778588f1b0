// `uqmerge eval -c CONFIG.yaml`: every candidate's accuracy on labelled data (pipeline/driver.hpp run_eval).
#include "commands.hpp"
#include "uqmerge/pipeline/driver.hpp"

namespace uqmerge::app {

int cmd_eval(const EvalArgs& a) {
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  auto comm = pipeline::make_communicator(cfg);
  pipeline::Session s = pipeline::open_session(cfg, *comm);
  return pipeline::run_eval(s);
}

}  // namespace uqmerge::app
