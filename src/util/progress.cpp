// Progress reporting (see include/uqmerge/util/progress.hpp).
#include "uqmerge/util/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "uqmerge/util/log.hpp"

namespace uqmerge {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 10) return fmt::format("{:.1f}s", s);
  auto t = static_cast<uint64_t>(std::llround(s));
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  if (t < 86400) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  return fmt::format("{}d{:02}h", t / 86400, (t % 86400) / 3600);
}

Progress::Progress(std::string label, uint64_t total, std::string unit, ProgressOptions opts)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), opts_(std::move(opts)) {
  if (!opts_.now) {
    opts_.now = [] {
      using namespace std::chrono;
      return duration<double>(steady_clock::now().time_since_epoch()).count();
    };
  }
  tty_ = opts_.tty >= 0 ? opts_.tty == 1 : isatty(fileno(opts_.out)) != 0;
  active_ = opts_.all_ranks || log::rank() == 0;
  start_ = last_emit_ = opts_.now();
}

Progress::~Progress() { finish(); }

std::string Progress::line() const {
  const double elapsed = opts_.now() - start_;
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string s = fmt::format("{}: {}/{} {}", label_, done_, total_, unit_);
  if (rate > 0) s += fmt::format("  {:.3g} {}/s", rate, unit_);
  s += "  elapsed " + format_duration(elapsed);
  if (done_ < total_) {
    s += "  ETA ";
    s += rate > 0 ? format_duration(static_cast<double>(total_ - done_) / rate) : "?";
  }
  return s;
}

void Progress::emit(bool final_line) {
  if (!active_) return;
  const std::string text = line();
  if (tty_)
    fmt::print(opts_.out, "\r\033[K{}{}", text, final_line ? "\n" : "");
  else
    fmt::print(opts_.out, "{}\n", text);
  std::fflush(opts_.out);
}

void Progress::advance(uint64_t n) {
  done_ += n;
  if (done_ >= total_) {
    finish();
    return;
  }
  const double t = opts_.now();
  const double gap = tty_ ? 0.2 : opts_.interval_s;
  if (t - last_emit_ >= gap) {
    last_emit_ = t;
    emit(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  emit(true);
}

}  // namespace uqmerge
