// uqmerge/io/safetensors.hpp — safetensors files: validated mmap reader with zero-copy views,
// sharded sets through model.safetensors.index.json, and an atomic (sharded) writer.
//
// Format: u64 little-endian header length N, N bytes of JSON (an object: tensor name ->
// {"dtype", "shape", "data_offsets": [begin, end]} relative to the data area, plus an optional
// "__metadata__" string->string map), padded with spaces; then the data area.
// Not here: what the tensors mean (io/checkpoint.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "uqmerge/io/dtype.hpp"
#include "uqmerge/io/mapped_file.hpp"

namespace uqmerge {

constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // as the reference implementation

// "[a, b, c]" — how every message in the project writes a shape.
std::string shape_string(const std::vector<int64_t>& shape);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data area
  uint64_t nbytes() const { return end - begin; }
  int64_t numel() const;
};

using Metadata = std::map<std::string, std::string>;

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in data order (ascending begin)
  Metadata metadata;
  uint64_t data_offset = 0;  // 8 + N
};

// Parses and validates the header of a safetensors file held in `bytes` (the whole file or at
// least its first 8 + N bytes; `file_size` is the real size). Throws a bad-input Error whose
// where-part is `filename`. Pure: the libFuzzer target calls this.
SafetensorsHeader parse_safetensors_header(const std::byte* bytes, size_t available,
                                           uint64_t file_size, const std::string& filename);

// A read-only, typed window onto a tensor's bytes inside a mapped file. Copying a view is cheap
// and keeps the mapping alive. `data` may be unaligned for its dtype (safetensors does not
// promise alignment); `aligned()` says whether typed access is safe.
class TensorView {
 public:
  TensorView() = default;
  TensorView(std::shared_ptr<const MappedFile> file, const TensorInfo* info, const std::byte* data);

  const std::string& name() const { return info_->name; }
  DType dtype() const { return info_->dtype; }
  const std::vector<int64_t>& shape() const { return info_->shape; }
  int64_t numel() const { return info_->numel(); }
  size_t nbytes() const { return static_cast<size_t>(info_->nbytes()); }
  const std::byte* data() const { return data_; }
  bool aligned() const;
  const MappedFile& file() const { return *file_; }
  const std::shared_ptr<const MappedFile>& file_ptr() const { return file_; }
  // Byte offset of the tensor inside its file (for range reads and madvise).
  size_t file_offset() const { return static_cast<size_t>(data_ - file_->data()); }
  void populate() const { file_->populate(file_offset(), nbytes()); }
  void release() const { file_->release(file_offset(), nbytes()); }

 private:
  std::shared_ptr<const MappedFile> file_;
  const TensorInfo* info_ = nullptr;
  const std::byte* data_ = nullptr;
};

class SafetensorsFile {
 public:
  // Maps and validates the file (header only: no tensor byte is read).
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const Metadata& metadata() const { return header_.metadata; }
  uint64_t file_size() const { return file_->size(); }
  const TensorInfo* find(const std::string& name) const;
  // Throws a bad-input Error naming the file when the tensor is absent.
  TensorView view(const std::string& name) const;
  TensorView view(const TensorInfo& info) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> by_name_;
};

// All safetensors files of one model directory, seen as one name -> tensor map:
//   - model.safetensors.index.json present: its weight_map decides (each shard must exist, each
//     tensor must be in the shard the index names, no tensor in two shards, nothing extra);
//   - else model.safetensors, else the single *.safetensors file in the directory.
class SafetensorsSet {
 public:
  static SafetensorsSet open_dir(const std::filesystem::path& dir);
  static SafetensorsSet open_files(const std::vector<std::filesystem::path>& files);

  const std::vector<std::shared_ptr<const SafetensorsFile>>& files() const { return files_; }
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  const SafetensorsFile& file_of(const std::string& name) const;
  TensorView view(const std::string& name) const;
  uint64_t total_bytes() const;  // of tensor data
  // The index.json's metadata (empty without an index).
  const Metadata& index_metadata() const { return index_metadata_; }
  bool has_index() const { return has_index_; }

 private:
  void add(std::shared_ptr<const SafetensorsFile> f);
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::unordered_map<std::string, std::pair<size_t, const TensorInfo*>> where_;
  Metadata index_metadata_;
  bool has_index_ = false;
};

// ---- writing ------------------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;
};

// Writes one safetensors file atomically: the header is fixed at construction (tensors laid out
// by descending alignment, then name, as the Python package does, so every tensor is aligned),
// data arrive by name in any order (pwrite, thread-safe), commit() checks every tensor was
// written, fsyncs and renames "<path>.tmp.<pid>" to `path`. Destroyed without commit, the
// temporary file is removed: no half-written file ever carries the final name.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs, Metadata metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void write(const std::string& name, const void* data, size_t nbytes);
  // Bytes [offset, offset + nbytes) of tensor `name`, from any thread; the ranges of one tensor
  // must not overlap, and commit() requires them to add up to the whole tensor.
  void write_range(const std::string& name, uint64_t offset, const void* data, size_t nbytes);
  void commit();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
  uint64_t data_offset_ = 0;
  std::unordered_map<std::string, TensorInfo> layout_;
  std::unordered_map<std::string, uint64_t> written_;  // bytes written, guarded by mu_
  uint64_t unflushed_ = 0;                             // bytes since the last writeback kick, guarded by mu_
  std::mutex mu_;
  bool committed_ = false;
};

// How tensors split into shard files under a byte budget, HF-style: tensors in the given
// order, a new shard when the next tensor would pass the budget (a tensor larger than the
// budget gets a shard of its own). One shard is named `model.safetensors` (no index);
// several `model-00001-of-0000K.safetensors` plus `model.safetensors.index.json`.
struct ShardPlan {
  struct Shard {
    std::string filename;
    std::vector<TensorSpec> tensors;
    uint64_t bytes = 0;
  };
  std::vector<Shard> shards;
  uint64_t total_bytes = 0;
  bool needs_index() const { return shards.size() > 1; }
};
ShardPlan plan_shards(const std::vector<TensorSpec>& tensors, uint64_t max_shard_bytes,
                      const std::string& prefix = "model");

// Writes `dir/<prefix>.safetensors.index.json` for the plan (metadata.total_size and the
// weight_map), atomically. Rank 0 does this once every shard is committed.
void write_safetensors_index(const std::filesystem::path& dir, const ShardPlan& plan,
                             const std::string& prefix = "model");

}  // namespace uqmerge
