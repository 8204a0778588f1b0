// Rank-aware logging (see include/uqmerge/util/log.hpp).
#include "uqmerge/util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "uqmerge/util/error.hpp"

namespace uqmerge::log {

namespace {
struct State {
  int rank = 0;
  int size = 1;
  std::atomic<int> level{static_cast<int>(Level::Info)};
  bool colour = false;
  std::mutex mu;  // one line at a time from threads of this process
};
State& state() {
  static State s;
  return s;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::Debug: return "DEBUG";
    case Level::Info: return "INFO ";
    case Level::Warn: return "WARN ";
    case Level::Error: return "ERROR";
  }
  return "?";
}
const char* level_colour(Level l) {
  switch (l) {
    case Level::Debug: return "\033[2m";
    case Level::Info: return "";
    case Level::Warn: return "\033[33m";
    case Level::Error: return "\033[31m";
  }
  return "";
}
}  // namespace

Level parse_level(std::string_view text) {
  std::string t(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "debug") return Level::Debug;
  if (t == "info") return Level::Info;
  if (t == "warn" || t == "warning") return Level::Warn;
  if (t == "error") return Level::Error;
  throw_bad_input("log level", "unknown level '" + std::string(text) +
                                   "' (valid: debug, info, warn, error)");
}

void init(int rank, int size) {
  State& s = state();
  s.rank = rank;
  s.size = size;
  Level lvl = rank == 0 ? Level::Info : Level::Warn;
  if (const char* all = std::getenv("UQMERGE_LOG_ALL_RANKS"); all && std::string(all) == "1")
    lvl = Level::Info;
  if (const char* env = std::getenv("UQMERGE_LOG_LEVEL"); env && *env) lvl = parse_level(env);
  s.level = static_cast<int>(lvl);
  s.colour = isatty(STDERR_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

void set_level(Level level) { state().level = static_cast<int>(level); }
Level level() { return static_cast<Level>(state().level.load()); }
bool enabled(Level l) { return static_cast<int>(l) >= state().level.load(); }
int rank() { return state().rank; }

void write(Level l, std::string_view message) {
  State& s = state();
  using clock = std::chrono::system_clock;
  const auto now = clock::now();
  const std::time_t t = clock::to_time_t(now);
  const int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::string line = fmt::format("[{:02}:{:02}:{:02}.{:03}] [rank {}/{}] {}{}{} {}\n", tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, ms, s.rank, s.size,
                                 s.colour ? level_colour(l) : "", level_name(l),
                                 s.colour && *level_colour(l) ? "\033[0m" : "", message);
  std::lock_guard<std::mutex> lock(s.mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace uqmerge::log
