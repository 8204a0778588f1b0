// Atomic file output (see include/uqmerge/io/atomic_file.hpp).
#include "uqmerge/io/atomic_file.hpp"

#include <algorithm>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace fs = std::filesystem;

fs::path temp_path_for(const fs::path& path) {
  return fs::path(path.string() + ".tmp." + std::to_string(::getpid()));
}

void commit_file(int fd, const fs::path& tmp, const fs::path& path) {
  auto fail = [&](const char* what) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw_bad_input(path.string(), std::string(what) + ": " + std::strerror(e) +
                                       (e == ENOSPC ? " (free disk space or choose another output_dir)" : ""));
  };
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw_bad_input(path.string(), std::string("close failed: ") + std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw_bad_input(path.string(), std::string("rename failed: ") + std::strerror(e));
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw_bad_input(path.string(), std::string("cannot create: ") + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw_bad_input(path.string(), std::string("write failed: ") + std::strerror(e) +
                                         (e == ENOSPC ? " (disk full: free space or choose another output_dir)" : ""));
    }
    off += static_cast<size_t>(n);
  }
  commit_file(fd, tmp, path);
}

bool is_model_file(const std::filesystem::directory_entry& e) {
  if (!e.is_regular_file()) return false;
  const std::string name = e.path().filename().string(), ext = e.path().extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".json" || ext == ".model" || ext == ".jinja" ||
         name == "README.md" || name == "merges.txt" || name == "vocab.txt";
}

bool is_model_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (!is_model_file(e)) return false;
  return !ec;
}

void require_replaceable(const std::filesystem::path& dir,
                         const std::function<bool(const std::filesystem::directory_entry&)>& owned) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return;
  if (!std::filesystem::is_directory(dir, ec))
    throw_bad_input(dir.string(), "exists and is not a directory: remove it or choose another output");
  std::vector<std::string> foreign;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (!owned(e)) foreign.push_back(e.path().filename().string() + (e.is_directory() ? "/" : ""));
  if (ec) throw_bad_input(dir.string(), "cannot list the directory: " + ec.message());
  if (foreign.empty()) return;
  std::sort(foreign.begin(), foreign.end());
  std::string list;
  for (size_t i = 0; i < foreign.size() && i < 5; ++i) list += (i ? ", " : "") + foreign[i];
  if (foreign.size() > 5) list += ", ... (" + std::to_string(foreign.size()) + " in all)";
  throw_bad_input(dir.string(), "--overwrite replaces only uqmerge's own output, but this directory also holds " + list +
                                    ": move them away or choose another output directory");
}

}  // namespace uqmerge
