// `uqmerge run -c CONFIG.yaml`: Algorithm 1 (pipeline/driver.hpp).
#include "commands.hpp"
#include "uqmerge/pipeline/driver.hpp"

namespace uqmerge::app {

int cmd_run(const RunArgs& a) {
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  auto comm = pipeline::make_communicator(cfg);
  pipeline::Session s = pipeline::open_session(cfg, *comm);
  return pipeline::run_algorithm(s, {a.overwrite, a.save_all_steps, a.restart});
}

}  // namespace uqmerge::app
