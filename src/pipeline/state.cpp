// Resume state with Boost.Serialization (see include/uqmerge/pipeline/state.hpp).
#include "uqmerge/pipeline/state.hpp"

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

// Non-intrusive serialisation of the result types (uq/ stays free of Boost).
namespace boost::serialization {
template <class A> void serialize(A& a, uqmerge::uq::SampleUq& s, unsigned) { a & s.total & s.data & s.uq; }
template <class A> void serialize(A& a, uqmerge::uq::MeanStderr& s, unsigned) { a & s.mean & s.stderr_ & s.n; }
template <class A> void serialize(A& a, uqmerge::uq::DatasetUq& d, unsigned) { a & d.samples & d.uq & d.total & d.data; }
template <class A> void serialize(A& a, uqmerge::uq::OverallUq& o, unsigned) { a & o.macro & o.micro; }
template <class A> void serialize(A& a, uqmerge::uq::DatasetResult& d, unsigned) { a & d.name & d.options & d.uq & d.p_mean & d.repeat_uq; }
template <class A> void serialize(A& a, uqmerge::uq::ModelResult& m, unsigned) {
  a & m.model & m.datasets & m.overall & m.seconds & m.evaluations & m.vision_passes;
}
template <class A> void serialize(A& a, uqmerge::pipeline::RunState& s, unsigned) { a & s.config_hash & s.uqmerge_version & s.done & s.merge_seconds; }
}  // namespace boost::serialization

namespace uqmerge::pipeline {

namespace {
constexpr const char* kMagic = "uqmerge-run-state";
constexpr uint32_t kFormat = 2;  // 2: DatasetResult::repeat_uq
}  // namespace

uint64_t config_hash(const std::string& yaml, const std::string& version) {
  // The parsed config re-emitted (comments and layout do not matter), without the keys that
  // cannot change a result: the watchdog's limits may be changed before a resume.
  std::string canonical = yaml;
  try {
    YAML::Node root = YAML::Clone(YAML::Load(yaml));
    if (root.IsMap()) root.remove("watchdog");
    YAML::Emitter e;
    e << root;
    canonical = e.c_str();
  } catch (const YAML::Exception&) {
    // Unparsable text never reaches here (the config parser refused it); hash it as is.
  }
  return hash_name(canonical + '\0' + version);
}

void save_state(const RunState& state, const std::filesystem::path& path) {
  std::ostringstream out(std::ios::binary);
  {
    boost::archive::binary_oarchive ar(out);
    const std::string magic = kMagic;
    uint32_t format = kFormat;
    ar << magic << format << state;
  }
  write_file_atomic(path, out.str());
}

std::optional<RunState> load_state(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::nullopt;
    throw_bad_input(path.string(), "cannot read the resume state (check permissions, or rerun with --restart)");
  }
  RunState s;
  try {
    boost::archive::binary_iarchive ar(in);
    std::string magic;
    uint32_t format = 0;
    ar >> magic >> format;
    if (magic != kMagic || format != kFormat) throw std::runtime_error("not a uqmerge run state of format " + std::to_string(kFormat));
    ar >> s;
  } catch (const std::exception& e) {
    throw_bad_input(path.string(), std::string("corrupt or truncated resume state (") + e.what() +
                                       "): rerun with --restart to start over");
  }
  return s;
}

}  // namespace uqmerge::pipeline
