// uqmerge/io/output_lock.hpp — one run per output directory. The holder keeps an exclusive
// POSIX record lock (fcntl F_SETLK) on OUTPUT_DIR/.uqmerge.lock for its whole life and writes
// who it is there (host, pid, Slurm job id); a second run on the same directory fails at once
// with bad input naming that holder. The kernel drops the lock when the holder dies (no stale
// locks after a crash or SIGKILL). POSIX locks work across hosts on NFS (lockd/NFSv4), Lustre
// (mounted with flock or localflock: localflock only locks within one node) and GPFS; on a file
// system without them the lock is node-local (docs/decisions.md). Torch-free.
#pragma once

#include <filesystem>
#include <string>

namespace uqmerge {

class OutputLock {
 public:
  // Creates `dir` if needed and takes the lock; bad input naming the holder when it is taken.
  explicit OutputLock(const std::filesystem::path& dir);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace uqmerge
