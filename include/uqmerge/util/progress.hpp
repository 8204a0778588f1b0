// uqmerge/util/progress.hpp — progress with rate and ETA for long loops (model evaluations,
// merges). On a terminal it redraws one line (at most 5 times a second); otherwise (Slurm logs,
// pipes) it prints a whole line every `interval_s` seconds and at the end, never a '\r'.
// Only the process whose log rank is 0 prints unless `all_ranks` is set.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace uqmerge {

struct ProgressOptions {
  std::FILE* out = stderr;
  int tty = -1;               // -1: ask isatty(out); 0/1: force (tests)
  double interval_s = 30.0;   // non-terminal: seconds between lines
  bool all_ranks = false;
  std::function<double()> now;  // seconds, monotonic; default steady_clock (tests inject)
};

class Progress {
 public:
  Progress(std::string label, uint64_t total, std::string unit = "it", ProgressOptions opts = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(uint64_t n = 1);
  // Prints the final line (idempotent; the destructor calls it).
  void finish();

  uint64_t done() const { return done_; }
  // "12/40 it  3.1 it/s  elapsed 4s  ETA 9s" — the text of the current line.
  std::string line() const;

 private:
  void emit(bool final_line);

  std::string label_;
  uint64_t total_;
  std::string unit_;
  ProgressOptions opts_;
  bool tty_ = false;
  bool active_ = true;  // prints at all (rank filter)
  bool finished_ = false;
  uint64_t done_ = 0;
  double start_ = 0, last_emit_ = 0;
};

// "0.4s", "42s", "3m05s", "2h03m", "3d04h" — for ETAs and summaries.
std::string format_duration(double seconds);

}  // namespace uqmerge
