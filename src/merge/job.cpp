// `uqmerge merge` (see include/uqmerge/merge/job.hpp).
#include "uqmerge/merge/job.hpp"

#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/merge/engine.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace fs = std::filesystem;

size_t run_merge(const MergeJob& job, const fs::path& out, bool overwrite, dist::Communicator& comm) {
  const MergeConfig& s = job.merge;
  if (fs::exists(out) && !overwrite) throw_bad_input(out.string(), "output directory exists (pass --overwrite to replace it)");
  require_replaceable(out, is_model_file);  // before any checkpoint is read

  std::vector<Checkpoint> members;
  for (const auto& mem : job.models) {
    members.push_back(Checkpoint::open(mem.path));
    members.back().require_valid();
  }
  std::optional<Checkpoint> base;
  if (s.base_model) {
    base = Checkpoint::open(*s.base_model);
    base->require_valid();
  }
  std::vector<const Checkpoint*> cands;
  std::vector<size_t> order;
  for (size_t i = 0; i < members.size(); ++i) {
    cands.push_back(&members[i]);
    order.push_back(i);
  }
  Merger merger(cands, job.models, base ? &*base : nullptr, s, /*incremental=*/false, comm);
  std::string card = "# Merged with uqmerge\n\nmethod: `" + s.method + "`\n\n";
  if (base) card += "base model: `" + base->dir().string() + "`\n\n";
  card += "members:\n";
  for (const auto& mem : job.models) card += "- `" + mem.path.string() + "`\n";
  merger.write(out, card, overwrite, &order);
  return merger.tensor_count();
}

}  // namespace uqmerge::merge
