// Private to src/app: one function per subcommand. Each returns the process exit code and
// throws uqmerge::Error for failures (caught once in main.cpp).
#pragma once

#include <optional>
#include <string>

namespace uqmerge::app {

struct InspectArgs {
  std::string dir;
  std::optional<std::string> vision_tower;
  bool list_tensors = false;
};
int cmd_inspect(const InspectArgs& args);

}  // namespace uqmerge::app
