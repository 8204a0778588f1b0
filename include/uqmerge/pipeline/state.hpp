// uqmerge/pipeline/state.hpp — the resume state of `uqmerge run` (DESIGN §6): every finished
// model evaluation under a key that names what was evaluated ("uq/cand/3", "uq/merge/4,1,7",
// "acc/merge/4,1"), the hash of the config that produced them and the uqmerge version. Rank 0
// rewrites it atomically (Boost.Serialization binary archive, then rename) after each
// evaluation; a rerun with the same config skips every evaluation the state holds. Binary
// archives are tied to the platform (endianness, word size): a state resumes on the cluster
// that wrote it, not elsewhere — results.h5 is the portable record.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "uqmerge/uq/result.hpp"

namespace uqmerge::pipeline {

struct RunState {
  uint64_t config_hash = 0;
  std::string uqmerge_version;
  std::map<std::string, uq::ModelResult> done;
  std::map<std::string, double> merge_seconds;  // member set -> merge + gather time
};

// FNV-1a over the config as parsed (comments and layout aside) without `watchdog:`, and the
// version: any other edit (or another build) changes it.
uint64_t config_hash(const std::string& yaml, const std::string& version);
void save_state(const RunState& state, const std::filesystem::path& path);
// nullopt when absent; a truncated/corrupt file is bad input naming the file and the fix.
std::optional<RunState> load_state(const std::filesystem::path& path);

}  // namespace uqmerge::pipeline
