// uqmerge/merge/job.hpp — `uqmerge merge MERGEKIT.yaml -o OUT`: mergekit's YAML (parsed and
// validated by merge/config.hpp) merged tensor by tensor from zero-copy views into a complete
// Hugging Face directory in the inputs' layout. The vision tower is checked bit-identical
// across inputs and copied (merge_vision: true merges it). The output is built under
// "OUT.tmp" and renamed when complete. Under mpirun the tensors are merged and written in
// parallel by their owner ranks (merge/engine.hpp).
#pragma once

#include <cstddef>
#include <filesystem>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/merge/config.hpp"

namespace uqmerge::merge {

// Merges job's models into `out` (sharded over comm's ranks). Returns the number of tensors written.
size_t run_merge(const MergeJob& job, const std::filesystem::path& out, bool overwrite, dist::Communicator& comm);

}  // namespace uqmerge::merge
