// Private to src/app: one function per subcommand. Each returns the process exit code and
// throws uqmerge::Error for failures (caught once in main.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace uqmerge::app {

struct InspectArgs {
  std::string dir;
  std::optional<std::string> vision_tower;
  bool list_tensors = false;
};
int cmd_inspect(const InspectArgs& args);

struct AnswerArgs {
  std::string model;
  std::optional<std::string> vision_tower;
  std::string image;
  std::string question;
  std::string hint;
  std::vector<std::string> options;
  bool no_extra_options = false;   // skip "I don't know" / "None of the above"
  std::string conv_template = "llava_v1";
  std::string image_aspect;        // empty: the checkpoint's image_aspect_ratio (default pad)
  std::string dtype = "float32";
  int threads = 0;
  bool json = false;
};
int cmd_answer(const AnswerArgs& args);

struct UqArgs {
  std::string config;
};
int cmd_uq(const UqArgs& args);  // needs an active MpiRuntime

struct MergeArgs {
  std::string config, out;
  bool overwrite = false;
  std::string backend = "auto";  // auto (= mpi: the merge runs in host memory) | mpi | nccl
  double stale_s = 30, timeout_s = 1800;  // the watchdog (dist::WatchdogOptions)
};
int cmd_merge(const MergeArgs& args);

struct RunArgs {
  std::string config;
  bool overwrite = false;
  bool save_all_steps = false;
  bool restart = false;
};
int cmd_run(const RunArgs& args);  // needs an active MpiRuntime

struct EvalArgs {
  std::string config;
};
int cmd_eval(const EvalArgs& args);  // needs an active MpiRuntime

struct ZooArgs {
  std::string out;
  int candidates = 10;
  long long seed = 1;
  double steps_scale = 1.0;
  bool overwrite = false;
};
int cmd_zoo(const ZooArgs& args);  // needs an active MpiRuntime

}  // namespace uqmerge::app
