// One run per output directory (see include/uqmerge/io/output_lock.hpp).
#include "uqmerge/io/output_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace {
std::string holder_text() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string s = "host " + std::string(host) + ", pid " + std::to_string(getpid());
  if (const char* job = std::getenv("SLURM_JOB_ID")) s += ", Slurm job " + std::string(job);
  return s;
}
}  // namespace

OutputLock::OutputLock(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path path = dir / ".uqmerge.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_bad_input(path.string(), std::string("cannot create the run lock: ") + std::strerror(errno));
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (fcntl(fd_, F_SETLK, &fl) != 0) {
    const int err = errno;
    char buf[512] = {};
    const ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EACCES || err == EAGAIN) {
      std::string who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown holder";
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      throw_bad_input(dir.string(), "another uqmerge run is using this output directory (" + who +
                                        "): wait for it to finish, or set another output_dir");
    }
    throw_bad_input(path.string(), std::string("cannot lock the output directory: ") + std::strerror(err) +
                                       " (a file system without POSIX locks: run one job per output_dir)");
  }
  const std::string who = holder_text() + "\n";
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, who.data(), who.size(), 0) != static_cast<ssize_t>(who.size()))
    throw_bad_input(path.string(), std::string("cannot write the run lock: ") + std::strerror(errno));
}

OutputLock::~OutputLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the lock; the file stays (its text names the last holder)
}

}  // namespace uqmerge
