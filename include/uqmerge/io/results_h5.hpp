// uqmerge/io/results_h5.hpp — a small HDF5 writer for results.h5 (schema: docs/results-h5.md):
// groups, string/number attributes, 1-D/2-D float64 and 1-D int64 datasets. The file is built
// under a temporary name and renamed on commit(): a results.h5 that exists is complete.
// HDF5 calls are checked (CHECK_H5) and fail with the file name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace uqmerge {

class H5Writer {
 public:
  explicit H5Writer(std::filesystem::path path);
  ~H5Writer();  // without commit(): closes and deletes the temporary file
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // Paths are absolute HDF5 paths ("/uq/model_000"); parents are created as needed.
  void group(const std::string& path);
  void attr(const std::string& path, const std::string& name, const std::string& value);
  void attr(const std::string& path, const std::string& name, double value);
  void attr(const std::string& path, const std::string& name, int64_t value);
  void dataset(const std::string& path, const std::vector<double>& data, const std::vector<uint64_t>& dims);
  void dataset(const std::string& path, const std::vector<int64_t>& data);
  void dataset(const std::string& path, const std::vector<int64_t>& data, const std::vector<uint64_t>& dims);
  void dataset(const std::string& path, const std::vector<uint64_t>& data, const std::vector<uint64_t>& dims);
  // IEEE half precision (bit patterns, e.g. from float_to_f16): h5py/numpy read it as float16.
  void dataset_f16(const std::string& path, const std::vector<uint16_t>& bits, const std::vector<uint64_t>& dims);
  void commit();

 private:
  int64_t open_object(const std::string& path);
  // One dataset of `dims`: file type, memory type (HDF5 ids) and the data (nullptr: none).
  void write_dataset(const std::string& path, int64_t file_type, int64_t mem_type, const void* data,
                     const std::vector<uint64_t>& dims);
  std::filesystem::path path_, tmp_;
  int64_t file_ = -1;
  bool committed_ = false;
};

}  // namespace uqmerge
