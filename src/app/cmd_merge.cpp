// `uqmerge merge MERGEKIT.yaml -o OUT`: merge checkpoints without uncertainty.
#include <fmt/format.h>

#include "commands.hpp"
#include "uqmerge/merge/job.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::app {

int cmd_merge(const MergeArgs& a) {
  const merge::MergeSpec spec = merge::load_merge_yaml(a.config);
  const size_t n = merge::run_merge(spec, a.out, a.overwrite);
  fmt::print("merged {} tensors with {} into {}\n", n, spec.method, a.out);
  return kExitOk;
}

}  // namespace uqmerge::app
