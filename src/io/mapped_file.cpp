// Read-only file mapping (see include/uqmerge/io/mapped_file.hpp).
#include "uqmerge/io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uqmerge/util/error.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux >= 5.14; older kernels answer EINVAL and we fall back
#endif

namespace uqmerge {

namespace {
// Page-aligned [begin, end) covering [offset, offset + length) inside the mapping.
bool page_range(const MappedFile& f, size_t offset, size_t length, std::byte*& begin, size_t& len) {
  if (f.size() == 0 || length == 0 || offset >= f.size()) return false;
  if (length > f.size() - offset) length = f.size() - offset;
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t a = offset / page * page;
  begin = const_cast<std::byte*>(f.data()) + a;
  len = offset + length - a;
  return true;
}
}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_bad_input(path.string(), std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw_bad_input(path.string(), std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_bad_input(path.string(), "not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw_internal(path.string(), std::string("mmap failed: ") + std::strerror(e));
    }
    f->data_ = static_cast<const std::byte*>(p);
  }
  f->fd_ = fd;
  return f;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::read(size_t offset, size_t length, void* dst) const {
  if (offset > size_ || length > size_ - offset)
    throw_internal(path_.string(), "read of bytes " + std::to_string(offset) + "+" + std::to_string(length) + " past the end (" +
                                       std::to_string(size_) + " bytes)");
  auto* p = static_cast<char*>(dst);
  while (length > 0) {
    const ssize_t n = ::pread(fd_, p, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_bad_input(path_.string(), std::string("read failed: ") + std::strerror(errno));
    if (n == 0) throw_bad_input(path_.string(), "file shrank while being read (was it overwritten during the run?)");
    p += n;
    offset += static_cast<size_t>(n);
    length -= static_cast<size_t>(n);
  }
}

void MappedFile::advise_sequential(size_t offset, size_t length) const {
  std::byte* b;
  size_t n;
  if (page_range(*this, offset, length, b, n)) ::madvise(b, n, MADV_SEQUENTIAL);
}

void MappedFile::populate(size_t offset, size_t length) const {
  std::byte* b;
  size_t n;
  if (!page_range(*this, offset, length, b, n)) return;
  if (::madvise(b, n, MADV_POPULATE_READ) != 0) ::madvise(b, n, MADV_WILLNEED);
}

void MappedFile::release(size_t offset, size_t length) const {
  std::byte* b;
  size_t n;
  if (page_range(*this, offset, length, b, n)) ::madvise(b, n, MADV_DONTNEED);
}

}  // namespace uqmerge
