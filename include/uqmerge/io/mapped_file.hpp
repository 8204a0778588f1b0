// uqmerge/io/mapped_file.hpp — a read-only memory map of a whole file (and its descriptor, for
// range reads). Shared by every tensor view cut from it (shared_ptr), so a view keeps its bytes
// alive. Mapping costs no reads: pages come in when touched. Not here: parsing
// (io/safetensors.hpp).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

namespace uqmerge {

class MappedFile {
 public:
  // Throws a bad-input Error naming the file when it cannot be opened.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Hints for a byte range (page-aligned internally); both are no-ops where unsupported.
  void advise_sequential(size_t offset, size_t length) const;
  // Maps the range's pages now, in one call, instead of one fault per page (page cache warm).
  void populate(size_t offset, size_t length) const;
  // Tells the kernel the range is no longer needed so RSS can shrink.
  void release(size_t offset, size_t length) const;
  // Copies bytes [offset, offset + length) into dst with pread, from any thread, without
  // touching the mapping: streaming a large range through a small buffer this way costs no
  // page-table work (mapping and unmapping page-cache pages costs more than a linear merge's
  // arithmetic). Throws a bad-input Error naming the file when it cannot be read (or shrank).
  void read(size_t offset, size_t length, void* dst) const;

 private:
  MappedFile() = default;
  int fd_ = -1;  // kept open for read()
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace uqmerge
