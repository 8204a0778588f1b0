// `uqmerge zoo --out DIR [--candidates N] [--seed S]`: the built-in demo's world and model zoo
// (zoo/zoo.hpp, docs/demo.md).
#include "commands.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/zoo/zoo.hpp"

namespace uqmerge::app {

int cmd_zoo(const ZooArgs& a) {
  if (a.seed < 0) throw_bad_input("--seed", std::to_string(a.seed) + " is negative: use a seed in 0..2^63-1");
  auto comm = dist::make_mpi_communicator();
  zoo::ZooOptions o;
  o.out = a.out;
  o.candidates = a.candidates;
  o.seed = static_cast<uint64_t>(a.seed);
  o.steps_scale = a.steps_scale;
  o.overwrite = a.overwrite;
  zoo::build_zoo(o, *comm);
  return kExitOk;
}

}  // namespace uqmerge::app
