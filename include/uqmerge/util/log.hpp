// uqmerge/util/log.hpp — rank-aware logging to stderr.
//
// Every line carries time, rank and level: "[07:31:02.114] [rank 1/4] WARN  message".
// Rank 0 logs at info, other ranks at warn unless asked (UQMERGE_LOG_LEVEL=debug|info|warn|
// error for all ranks; UQMERGE_LOG_ALL_RANKS=1 lowers the other ranks to rank 0's level).
// Colour only when stderr is a terminal and NO_COLOR is unset: Slurm logs stay plain.
// Not here: progress bars (util/progress.hpp).
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace uqmerge::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Called once per process after the rank is known (the CLI does it). Reads the environment
// variables above. Before init the process logs as rank 0 of 1.
void init(int rank, int size);
void set_level(Level level);
Level level();
bool enabled(Level level);
// Parses "debug|info|warn|error" (case-insensitive); throws a bad-input Error otherwise.
Level parse_level(std::string_view text);

void write(Level level, std::string_view message);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Info)) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Warn)) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Error)) write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}

// The rank given to init (0 before).
int rank();

}  // namespace uqmerge::log
