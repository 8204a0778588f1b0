// HDF5 writer (see include/uqmerge/io/results_h5.hpp).
#include "uqmerge/io/results_h5.hpp"

#include <hdf5.h>

#include <functional>

#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/util/error.hpp"

#define CHECK_H5(expr, what)                                                                        \
  ([&] {                                                                                            \
    const auto uq_h5_ = (expr);                                                                     \
    if (uq_h5_ < 0)                                                                                 \
      ::uqmerge::throw_bad_input(path_.string(), std::string("HDF5 ") + (what) + " failed (" __FILE__ \
                                 ":" + std::to_string(__LINE__) + "): disk full or not writable?");  \
    return uq_h5_;                                                                                  \
  }())

namespace uqmerge {

namespace fs = std::filesystem;

H5Writer::H5Writer(fs::path path) : path_(std::move(path)), tmp_(temp_path_for(path_)) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as codes, reported by CHECK_H5
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path());
  file_ = CHECK_H5(H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create");
}

H5Writer::~H5Writer() {
  if (file_ >= 0) H5Fclose(file_);
  if (!committed_) fs::remove(tmp_);
}

int64_t H5Writer::open_object(const std::string& path) {
  return CHECK_H5(H5Oopen(file_, path.c_str(), H5P_DEFAULT), "open " + path);
}

void H5Writer::group(const std::string& path) {
  std::string cur;
  size_t pos = 1;
  while (pos <= path.size()) {
    const size_t next = path.find('/', pos);
    cur = path.substr(0, next == std::string::npos ? path.size() : next);
    if (H5Lexists(file_, cur.c_str(), H5P_DEFAULT) <= 0) {
      const hid_t g = CHECK_H5(H5Gcreate2(file_, cur.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group " + cur);
      H5Gclose(g);
    }
    if (next == std::string::npos) break;
    pos = next + 1;
  }
}

void H5Writer::attr(const std::string& path, const std::string& name, const std::string& value) {
  const hid_t obj = open_object(path);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t a = CHECK_H5(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
  CHECK_H5(H5Awrite(a, type, value.empty() ? "" : value.c_str()), "write " + name);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  H5Oclose(obj);
}

namespace {
// One scalar attribute of a fixed HDF5 type (file and memory representation).
void scalar_attr(int64_t obj, const std::string& name, hid_t file_type, hid_t mem_type, const void* value,
                 const std::function<int64_t(int64_t, const std::string&)>& check) {
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t a = check(H5Acreate2(obj, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
  check(H5Awrite(a, mem_type, value), "write " + name);
  H5Aclose(a);
  H5Sclose(space);
}
}  // namespace

void H5Writer::attr(const std::string& path, const std::string& name, double value) {
  const hid_t obj = open_object(path);
  scalar_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, [&](int64_t r, const std::string& w) { return CHECK_H5(r, w); });
  H5Oclose(obj);
}

void H5Writer::attr(const std::string& path, const std::string& name, int64_t value) {
  const hid_t obj = open_object(path);
  scalar_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, [&](int64_t r, const std::string& w) { return CHECK_H5(r, w); });
  H5Oclose(obj);
}

void H5Writer::write_dataset(const std::string& path, int64_t file_type, int64_t mem_type, const void* data,
                             const std::vector<uint64_t>& dims) {
  std::vector<hsize_t> d(dims.begin(), dims.end());
  const hid_t space = H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr);
  const hid_t ds = CHECK_H5(H5Dcreate2(file_, path.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                            "dataset " + path);
  if (data) CHECK_H5(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + path);
  H5Dclose(ds);
  H5Sclose(space);
}

void H5Writer::dataset(const std::string& path, const std::vector<double>& data, const std::vector<uint64_t>& dims) {
  write_dataset(path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data.empty() ? nullptr : data.data(), dims);
}

void H5Writer::dataset(const std::string& path, const std::vector<int64_t>& data) { dataset(path, data, {data.size()}); }

void H5Writer::dataset(const std::string& path, const std::vector<int64_t>& data, const std::vector<uint64_t>& dims) {
  write_dataset(path, H5T_STD_I64LE, H5T_NATIVE_INT64, data.empty() ? nullptr : data.data(), dims);
}

void H5Writer::dataset(const std::string& path, const std::vector<uint64_t>& data, const std::vector<uint64_t>& dims) {
  write_dataset(path, H5T_STD_U64LE, H5T_NATIVE_UINT64, data.empty() ? nullptr : data.data(), dims);
}

void H5Writer::dataset_f16(const std::string& path, const std::vector<uint16_t>& bits, const std::vector<uint64_t>& dims) {
  // HDF5 1.10 has no predefined half type: derive one from IEEE single (sign bit 15, 5-bit
  // exponent at 10 with bias 15, 10-bit mantissa), the layout numpy's float16 maps to.
  const hid_t f16 = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(f16, 15, 10, 5, 0, 10);
  H5Tset_size(f16, 2);
  H5Tset_ebias(f16, 15);
  write_dataset(path, f16, f16, bits.empty() ? nullptr : bits.data(), dims);
  H5Tclose(f16);
}

void H5Writer::commit() {
  CHECK_H5(H5Fflush(file_, H5F_SCOPE_GLOBAL), "flush");
  CHECK_H5(H5Fclose(file_), "close");
  file_ = -1;
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) throw_bad_input(path_.string(), "cannot rename the finished results file into place: " + ec.message());
  committed_ = true;
}

}  // namespace uqmerge
