// `uqmerge uq -c CONFIG.yaml`: every candidate's uncertainty (pipeline/driver.hpp run_uq).
#include "commands.hpp"
#include "uqmerge/pipeline/driver.hpp"

namespace uqmerge::app {

int cmd_uq(const UqArgs& a) {
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  auto comm = pipeline::make_communicator(cfg);
  pipeline::Session s = pipeline::open_session(cfg, *comm);
  return pipeline::run_uq(s);
}

}  // namespace uqmerge::app
