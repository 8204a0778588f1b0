// Hang detection for both backends (see watchdog.hpp).
#include "watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "uqmerge/util/log.hpp"

namespace uqmerge::dist::detail {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

namespace {
double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

Watchdog::Watchdog(int rank, int size) : rank_(rank), size_(size), peers_(static_cast<size_t>(size)) {
  char h[256] = {};
  if (gethostname(h, sizeof h - 1) == 0) host_ = h;
  if (host_.empty()) host_ = "?";
}

Watchdog::~Watchdog() { stop(); }

void Watchdog::start(const fs::path& dir) {
  stop();
  dir_ = dir;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  write_beat();
  stopping_ = false;
  thread_ = std::thread([this] { beat_loop(); });
}

bool Watchdog::peers_visible() {
  const auto now = clock::now();
  for (int r = 0; r < size_; ++r) {
    Peer& p = peers_[static_cast<size_t>(r)];
    if (r == rank_) continue;
    if (!read_peer(r, p)) {
      log::warn("watchdog: rank {}'s heartbeat is not visible under {} (not a file system shared by the nodes?): "
                "hung ranks are found by watchdog.timeout_s ({} s) only",
                r, dir_.string(), opts_.timeout_s);
      peers_enabled_ = false;
      return false;
    }
    p.changed = now;
  }
  peers_enabled_ = true;
  return true;
}

void Watchdog::stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
    std::error_code ec;
    fs::remove(dir_ / ("rank" + std::to_string(rank_)), ec);
    fs::remove(dir_, ec);  // only once empty: the last rank to stop removes it
  }
  peers_enabled_ = false;
}

void Watchdog::enter(const char* op) {
  op_.store(op);
  seq_.fetch_add(1);
  inside_.store(true);
  entered_ = clock::now();
}

void Watchdog::leave() { inside_.store(false); }

void Watchdog::beat_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  const auto period = std::chrono::duration<double>(opts_.heartbeat_s > 0 ? opts_.heartbeat_s : 2.0);
  while (!cv_.wait_for(lk, period, [this] { return stopping_; })) write_beat();
}

void Watchdog::write_beat() {
  // tmp + rename: a reader on another node sees the old line or the new one, never half.
  ++beats_;
  const fs::path f = dir_ / ("rank" + std::to_string(rank_));
  const fs::path tmp = dir_ / ("rank" + std::to_string(rank_) + ".tmp");
  if (FILE* out = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(out, "beat=%llu seq=%llu inside=%d op=%s host=%s pid=%ld\n", static_cast<unsigned long long>(beats_),
                 static_cast<unsigned long long>(seq_.load()), inside_.load() ? 1 : 0, op_.load(), host_.c_str(),
                 static_cast<long>(getpid()));
    std::fclose(out);
    std::error_code ec;
    fs::rename(tmp, f, ec);
  }
}

bool Watchdog::read_peer(int r, Peer& p) const {
  std::ifstream in(dir_ / ("rank" + std::to_string(r)));
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  std::istringstream ss(line);
  std::string tok;
  Peer q = p;
  bool have_beat = false;
  while (ss >> tok) {
    const auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    try {
      if (k == "beat") q.beat = std::stoull(v), have_beat = true;
      else if (k == "seq") q.seq = std::stoull(v);
      else if (k == "inside") q.inside = v == "1";
      else if (k == "op") q.op = v;
      else if (k == "host") q.host = v;
      else if (k == "pid") q.pid = std::stol(v);
    } catch (const std::exception&) {
      return false;
    }
  }
  if (!have_beat) return false;
  if (!p.seen || q.beat != p.beat) q.changed = clock::now();
  q.seen = true;
  p = q;
  return true;
}

std::string Watchdog::describe(int r, const Peer& p) const {
  std::ostringstream s;
  s << "rank " << r << " (host " << p.host << ", pid " << p.pid << "; last heard " << (p.inside ? "in " : "computing after ")
    << p.op << " #" << p.seq << ")";
  return s.str();
}

std::string Watchdog::check() {
  const auto now = clock::now();
  // Cheap for the file system at scale: nothing is read while a wait is short (most complete in
  // milliseconds), then every rank's file at most every max(1 s, stale_s / 10). A peer stopped
  // since this rank's last read is seen unchanged from then, so it is named by 1.5 x stale_s.
  const double waited = seconds(now - entered_);
  const double period = std::max(1.0, opts_.stale_s / 10);
  if (opts_.stale_s <= 0 && opts_.timeout_s <= 0) return {};  // both verdicts off
  const double start = opts_.stale_s > 0 ? opts_.stale_s / 2 : opts_.timeout_s;
  if (waited < start || seconds(now - last_check_) < period) return {};
  last_check_ = now;
  const uint64_t seq = seq_.load();
  const std::string here =
      "rank " + std::to_string(rank_) + "/" + std::to_string(size_) + " waits in " + op_.load() + " #" + std::to_string(seq);
  std::vector<int> stale, behind;
  if (peers_enabled_) {
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      Peer& p = peers_[static_cast<size_t>(r)];
      read_peer(r, p);  // an unreadable file keeps the last state (its counter then does not change)
      if (opts_.stale_s > 0 && waited >= opts_.stale_s && seconds(now - p.changed) >= opts_.stale_s) stale.push_back(r);
      if (p.seq < seq) behind.push_back(r);  // has not entered this collective
    }
  }
  if (!stale.empty()) {
    std::string who;
    for (int r : stale) {
      const Peer& p = peers_[static_cast<size_t>(r)];
      who += (who.empty() ? "" : "; ") + describe(r, p) + " has not beaten for " +
             std::to_string(static_cast<int>(seconds(now - p.changed))) + " s";
    }
    return "watchdog: " + who + " while " + here + ": it is stopped or frozen (SIGSTOP, a wedged node); ending the job "
           "(the resume state is kept: rerun the job once the node is healthy; watchdog.stale_s sets this limit)";
  }
  if (opts_.timeout_s > 0 && waited >= opts_.timeout_s) {
    std::string who;
    for (int r : behind) who += (who.empty() ? "" : "; ") + describe(r, peers_[static_cast<size_t>(r)]);
    const std::string cause =
        who.empty() ? (peers_enabled_ ? "every rank has reached it (a network or library fault)"
                                      : "no heartbeats to tell which rank is missing")
                    : "not reached by " + who + ", alive but stuck (a deadlock, or a step longer than the limit)";
    return "watchdog: " + here + " for " + std::to_string(static_cast<int>(waited)) + " s: " + cause +
           "; ending the job (the resume state is kept; raise watchdog.timeout_s if a step legitimately takes longer)";
  }
  return {};
}

}  // namespace uqmerge::dist::detail
