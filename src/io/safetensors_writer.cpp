// safetensors writing: atomic single files, shard plans and the index
// (see include/uqmerge/io/safetensors.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace fs = std::filesystem;

uint64_t TensorSpec::nbytes() const {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    UQ_CHECK(d >= 0, "negative dimension in tensor '" + name + "'");
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

namespace {
[[noreturn]] void io_fail(const fs::path& path, const char* what, int e) {
  throw_bad_input(path.string(), std::string(what) + ": " + std::strerror(e) +
                                     (e == ENOSPC ? " (disk full: free space or choose another output directory)" : ""));
}
}  // namespace

SafetensorsWriter::SafetensorsWriter(fs::path path, std::vector<TensorSpec> specs, Metadata metadata)
    : path_(std::move(path)), tmp_(temp_path_for(path_)) {
  // Layout: larger element sizes first, then by name -> every tensor starts aligned.
  std::stable_sort(specs.begin(), specs.end(), [](const TensorSpec& a, const TensorSpec& b) {
    const size_t sa = dtype_size(a.dtype), sb = dtype_size(b.dtype);
    return sa != sb ? sa > sb : a.name < b.name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = md;
  }
  uint64_t offset = 0;
  for (const auto& s : specs) {
    if (s.name == "__metadata__" || s.name.empty())
      throw_internal(path_.string(), "invalid tensor name '" + s.name + "'");
    if (layout_.count(s.name)) throw_internal(path_.string(), "tensor '" + s.name + "' added twice");
    TensorInfo t{s.name, s.dtype, s.shape, offset, offset + s.nbytes()};
    offset = t.end;
    header[s.name] = {{"dtype", std::string(dtype_name(s.dtype))}, {"shape", s.shape},
                      {"data_offsets", {t.begin, t.end}}};
    layout_.emplace(s.name, std::move(t));
    written_[s.name] = 0;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data area starts 8-byte aligned
  data_offset_ = 8 + text.size();
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  text.insert(0, prefix);

  if (path_.has_parent_path()) fs::create_directories(path_.parent_path());
  fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail(path_, "cannot create", errno);
  const uint64_t total = data_offset_ + offset;
  // Reserve the whole file now: a full disk fails here, before any compute is spent on it.
  if (total > 0) {
    const int r = ::posix_fallocate(fd_, 0, static_cast<off_t>(total));
    if (r == ENOSPC || r == EFBIG || r == EDQUOT) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_.c_str());
      io_fail(path_, "cannot reserve space", r);
    }
    if (r != 0 && ::ftruncate(fd_, static_cast<off_t>(total)) != 0) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_.c_str());
      io_fail(path_, "cannot size", e);
    }
  }
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::pwrite(fd_, text.data() + off, text.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_fail(path_, "write failed", errno);
    off += static_cast<size_t>(n);
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (!committed_ && fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t nbytes) {
  auto it = layout_.find(name);
  if (it == layout_.end()) throw_internal(path_.string(), "tensor '" + name + "' was not declared");
  if (nbytes != it->second.nbytes())
    throw_internal(path_.string(), "tensor '" + name + "' expects " + std::to_string(it->second.nbytes()) +
                                       " bytes, got " + std::to_string(nbytes));
  write_range(name, 0, data, nbytes);
}

void SafetensorsWriter::write_range(const std::string& name, uint64_t offset, const void* data, size_t nbytes) {
  auto it = layout_.find(name);
  if (it == layout_.end()) throw_internal(path_.string(), "tensor '" + name + "' was not declared");
  if (offset > it->second.nbytes() || nbytes > it->second.nbytes() - offset)
    throw_internal(path_.string(), "bytes " + std::to_string(offset) + "+" + std::to_string(nbytes) + " outside tensor '" + name +
                                       "' (" + std::to_string(it->second.nbytes()) + " bytes)");
  const char* p = static_cast<const char*>(data);
  uint64_t off = data_offset_ + it->second.begin + offset;
  size_t left = nbytes;
  while (left > 0) {
    const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_fail(path_, "write failed", errno);
    p += n;
    off += static_cast<uint64_t>(n);
    left -= static_cast<size_t>(n);
  }
  std::lock_guard<std::mutex> lock(mu_);
  written_[name] += nbytes;
  // Start the disk writes of what is written so far every 64 MiB, so that commit()'s fsync
  // finds most of the file on its way to disk instead of all of it (Linux; elsewhere fsync
  // does it all).
  unflushed_ += nbytes;
  if (unflushed_ >= (uint64_t{64} << 20)) {
    unflushed_ = 0;
#ifdef __linux__
    ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
  }
}

void SafetensorsWriter::commit() {
  if (committed_) return;
  for (const auto& [name, bytes] : written_)
    if (bytes != layout_.at(name).nbytes())
      throw_internal(path_.string(), "commit with " + std::to_string(bytes) + " of tensor '" + name + "''s " +
                                         std::to_string(layout_.at(name).nbytes()) + " bytes written");
  committed_ = true;  // commit_file closes fd_ (and removes the temp file on failure)
  commit_file(fd_, tmp_, path_);
  fd_ = -1;
}

ShardPlan plan_shards(const std::vector<TensorSpec>& tensors, uint64_t max_shard_bytes,
                      const std::string& prefix) {
  ShardPlan plan;
  for (const auto& t : tensors) {
    const uint64_t b = t.nbytes();
    if (plan.shards.empty() || (plan.shards.back().bytes + b > max_shard_bytes && !plan.shards.back().tensors.empty()))
      plan.shards.emplace_back();
    plan.shards.back().tensors.push_back(t);
    plan.shards.back().bytes += b;
    plan.total_bytes += b;
  }
  if (plan.shards.empty()) plan.shards.emplace_back();
  const size_t k = plan.shards.size();
  for (size_t i = 0; i < k; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu", i + 1, k);
    plan.shards[i].filename = k == 1 ? prefix + ".safetensors" : prefix + buf + ".safetensors";
  }
  return plan;
}

void write_safetensors_index(const fs::path& dir, const ShardPlan& plan, const std::string& prefix) {
  nlohmann::json weight_map = nlohmann::json::object();  // sorted by name, as transformers writes it
  for (const auto& s : plan.shards)
    for (const auto& t : s.tensors) weight_map[t.name] = s.filename;
  nlohmann::ordered_json j;
  j["metadata"] = {{"total_size", plan.total_bytes}};
  j["weight_map"] = weight_map;
  write_file_atomic(dir / (prefix + ".safetensors.index.json"), j.dump(2) + "\n");
}

}  // namespace uqmerge
