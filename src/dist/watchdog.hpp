// Private to src/dist: hang detection shared by the MPI and NCCL backends.
//
// Every collective is numbered (the same number on every rank: collectives run in one order
// everywhere). While a rank waits for one to complete it calls check() from its polling loop.
// Two verdicts end the job:
//   * stale heartbeat — once watch(dir) has started them, a thread of each rank rewrites
//     DIR/rank<r> every heartbeat_s (a beat counter, the collective it is in or last left, host,
//     pid). A peer whose counter has not changed for stale_s while this rank waits is stopped or
//     frozen (SIGSTOP, a swapped-out or wedged node): the verdict names it. Staleness is judged
//     by the reader's clock from changes of the counter, so clocks of other nodes do not matter.
//   * timeout — a collective still incomplete after timeout_s whatever the heartbeats (a peer
//     alive but stuck in compute or a deadlock, a network that drops traffic): the verdict names
//     the ranks whose heartbeat shows they have not reached this collective.
// The heartbeat thread touches only files (MPI stays FUNNELED). Torch-, MPI- and CUDA-free.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "uqmerge/dist/communicator.hpp"

namespace uqmerge::dist::detail {

class Watchdog {
 public:
  Watchdog(int rank, int size);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_options(const WatchdogOptions& o) { opts_ = o; }
  // Writes this rank's first heartbeat under dir and starts the thread. The caller then
  // synchronises the ranks and calls peers_visible(): false (another node's files are not
  // visible: dir is not on a shared file system) turns heartbeat verdicts off.
  void start(const std::filesystem::path& dir);
  bool peers_visible();
  void disable_peers() { peers_enabled_ = false; }
  void stop();  // ends the thread and removes this rank's file

  // Around each collective: enter() numbers it, leave() marks it complete.
  void enter(const char* op);
  void leave();
  // From the polling loop of the current collective (cheap: reads the peers' files only once the
  // wait passes stale_s / 2, then every max(1 s, stale_s / 10)).
  // Empty, or the one-line reason to end the job.
  std::string check();

 private:
  struct Peer {
    uint64_t beat = 0, seq = 0;
    bool seen = false, inside = false;
    std::string op, host;
    long pid = 0;
    std::chrono::steady_clock::time_point changed{};
  };
  void beat_loop();
  void write_beat();
  bool read_peer(int r, Peer& p) const;
  std::string describe(int r, const Peer& p) const;

  const int rank_, size_;
  WatchdogOptions opts_;
  std::filesystem::path dir_;
  std::string host_;
  std::atomic<uint64_t> seq_{0};
  std::atomic<const char*> op_{"startup"};
  std::atomic<bool> inside_{false};
  uint64_t beats_ = 0;
  std::chrono::steady_clock::time_point entered_{}, last_check_{};
  std::vector<Peer> peers_;
  bool peers_enabled_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// Numbers one collective for the watchdog for its scope.
struct Watched {
  Watched(Watchdog& w, const char* op) : w_(w) { w_.enter(op); }
  ~Watched() { w_.leave(); }
  Watchdog& w_;
};

// Polls done() until it is true, calling w.check() between polls; a verdict goes to fail()
// (which must not return). Never sleeps: MPI progresses a nonblocking collective only inside
// MPI calls (a sleep would stall a large transfer); it yields the core instead, as a blocking
// MPI call does when ranks oversubscribe the node.
template <typename Done, typename Fail>
void wait_polling(Done&& done, Watchdog& w, Fail&& fail) {
  while (!done()) {
    if (std::string verdict = w.check(); !verdict.empty()) fail(verdict);
    std::this_thread::yield();
  }
}

}  // namespace uqmerge::dist::detail
