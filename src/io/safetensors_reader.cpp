// safetensors reading: header validation, zero-copy views, sharded sets
// (see include/uqmerge/io/safetensors.hpp).
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace fs = std::filesystem;
using nlohmann::json;

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Parses JSON, failing on a repeated top-level key (nlohmann would keep the last silently).
json parse_json_object_strict(const char* first, const char* last, const std::string& where,
                              const char* what) {
  std::string dup;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(first, last, cb, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    std::string msg = e.what();
    if (auto pos = msg.find("] "); pos != std::string::npos) msg = msg.substr(pos + 2);
    throw_bad_input(where, std::string(what) + " is not valid JSON (" + msg + ")");
  }
  if (!j.is_object()) throw_bad_input(where, std::string(what) + " is not a JSON object");
  if (!dup.empty()) throw_bad_input(where, std::string(what) + " names '" + dup + "' twice");
  return j;
}

}  // namespace

namespace {

// Streaming (SAX) parse of the header straight into TensorInfo records: no JSON DOM, so
// opening a checkpoint costs microseconds per tensor. Semantic errors stop the parse with a
// message; syntax errors come from nlohmann's lexer.
class HeaderSax final : public json::json_sax_t {
 public:
  explicit HeaderSax(SafetensorsHeader& out) : out_(out) {}
  std::string error;  // set when a handler returned false

  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 2) {
      if (key_ == "__metadata__") {
        in_meta_ = true;
      } else {
        cur_ = TensorInfo{};
        cur_.name = key_;
        have_dtype_ = have_shape_ = false;
        offsets_.clear();
        have_offsets_ = false;
      }
    } else if (depth_ == 3 && !in_meta_ && field_ != Field::Other) {
      return fail(field_error());
    } else if (depth_ == 3 && in_meta_) {
      return fail("__metadata__ value of '" + meta_key_ + "' is not a string");
    }
    return true;
  }
  bool end_object() override {
    if (depth_ == 2) {
      if (in_meta_) {
        in_meta_ = false;
      } else if (!finish_tensor()) {
        return false;
      }
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (depth_ == 2) return fail(in_meta_or_key() ? "__metadata__ is not a JSON object" : tw() + ": entry is not a JSON object");
    if (depth_ == 3 && in_meta_) return fail("__metadata__ value of '" + meta_key_ + "' is not a string");
    if (depth_ == 3 && field_ == Field::Dtype) return fail(tw() + ": missing or non-string 'dtype'");
    if (depth_ == 3 && field_ == Field::Shape) have_shape_ = true;
    if (depth_ == 3 && field_ == Field::Offsets) have_offsets_ = true;
    if (depth_ == 4 && (field_ == Field::Shape || field_ == Field::Offsets)) return fail(field_error());
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      key_ = k;
      if (!seen_.insert(k).second) return fail("header names '" + k + "' twice");
    } else if (depth_ == 2 && in_meta_) {
      meta_key_ = k;
    } else if (depth_ == 2) {
      field_ = k == "dtype" ? Field::Dtype : k == "shape" ? Field::Shape : k == "data_offsets" ? Field::Offsets : Field::Other;
    }
    return true;
  }
  bool string(string_t& v) override {
    if (depth_ == 2 && in_meta_) {
      out_.metadata[meta_key_] = v;
      return true;
    }
    if (depth_ == 2 && field_ == Field::Dtype) {
      const auto d = parse_dtype(v);
      if (!d) return fail(tw() + ": unknown dtype '" + v + "' (known: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
      cur_.dtype = *d;
      have_dtype_ = true;
      return true;
    }
    return other_scalar();
  }
  bool number_unsigned(number_unsigned_t v) override { return unsigned_value(v); }
  bool number_integer(number_integer_t v) override {
    if (v < 0 && depth_ == 3 && !in_meta_ && (field_ == Field::Shape || field_ == Field::Offsets)) return fail(field_error());
    return v < 0 ? other_scalar() : unsigned_value(static_cast<uint64_t>(v));
  }
  bool number_float(number_float_t, const string_t&) override { return other_scalar(); }
  bool boolean(bool) override { return other_scalar(); }
  bool null() override { return other_scalar(); }
  bool binary(binary_t&) override { return other_scalar(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string msg = e.what();
    if (auto pos = msg.find("] "); pos != std::string::npos) msg = msg.substr(pos + 2);
    return fail("header is not valid JSON (" + msg + ")");
  }

 private:
  enum class Field { Dtype, Shape, Offsets, Other };
  bool fail(std::string m) {
    if (error.empty()) error = std::move(m);
    return false;
  }
  std::string tw() const { return "tensor '" + key_ + "'"; }
  bool in_meta_or_key() const { return key_ == "__metadata__"; }
  std::string field_error() const {
    switch (field_) {
      case Field::Shape: return tw() + ": shape entries must be non-negative integers";
      case Field::Offsets: return tw() + ": data_offsets must be non-negative integers";
      case Field::Dtype: return tw() + ": missing or non-string 'dtype'";
      case Field::Other: break;
    }
    return tw() + ": malformed entry";
  }
  // A scalar where the schema wants something else (or an ignored extra field's value).
  bool other_scalar() {
    if (depth_ == 1) return fail(key_ == "__metadata__" ? "__metadata__ is not a JSON object" : tw() + ": entry is not a JSON object");
    if (in_meta_) return fail("__metadata__ value of '" + meta_key_ + "' is not a string");
    if (depth_ == 2 && field_ == Field::Shape) return fail(tw() + ": missing or non-array 'shape'");
    if (depth_ == 2 && field_ == Field::Offsets) return fail(tw() + ": 'data_offsets' must be an array [begin, end]");
    if (field_ != Field::Other) return fail(field_error());
    return true;
  }
  bool unsigned_value(uint64_t v) {
    if (depth_ == 3 && !in_meta_ && field_ == Field::Shape) {
      if (v > static_cast<uint64_t>(INT64_MAX)) huge_ = true;
      cur_.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
      return true;
    }
    if (depth_ == 3 && !in_meta_ && field_ == Field::Offsets) {
      offsets_.push_back(v);
      return true;
    }
    return other_scalar();
  }
  bool finish_tensor() {
    if (!have_dtype_) return fail(tw() + ": missing or non-string 'dtype'");
    if (!have_shape_) return fail(tw() + ": missing or non-array 'shape'");
    if (!have_offsets_ || offsets_.size() != 2) return fail(tw() + ": 'data_offsets' must be an array [begin, end]");
    cur_.begin = offsets_[0];
    cur_.end = offsets_[1];
    out_.tensors.push_back(std::move(cur_));
    huge_shapes_.push_back(huge_);
    huge_ = false;
    return true;
  }

  SafetensorsHeader& out_;
  int depth_ = 0;
  bool in_meta_ = false;
  std::string key_, meta_key_;
  Field field_ = Field::Other;
  std::unordered_set<std::string> seen_;
  TensorInfo cur_;
  bool have_dtype_ = false, have_shape_ = false, have_offsets_ = false, huge_ = false;
  std::vector<uint64_t> offsets_;

 public:
  std::vector<bool> huge_shapes_;  // a dimension above INT64_MAX, per tensor
};

}  // namespace

SafetensorsHeader parse_safetensors_header(const std::byte* bytes, size_t available,
                                           uint64_t file_size, const std::string& where) {
  if (file_size < 8 || available < 8)
    throw_bad_input(where, "truncated: " + std::to_string(file_size) +
                               " bytes, too short for a safetensors header (re-download or re-save the file)");
  const uint64_t n = read_u64_le(bytes);
  if (n > kSafetensorsMaxHeader)
    throw_bad_input(where, "header length " + std::to_string(n) +
                               " exceeds the 100 MB limit: not a safetensors file, or corrupt");
  if (n > file_size - 8)
    throw_bad_input(where, "header length " + std::to_string(n) + " larger than the file (" +
                               std::to_string(file_size) +
                               " bytes): truncated or not a safetensors file (re-download it)");
  if (n > available - 8) throw_internal(where, "header not fully available to the parser");
  if (n == 0 || static_cast<char>(bytes[8]) != '{')
    throw_bad_input(where, "header is not a JSON object (does not start with '{'): not a safetensors file");

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const char* first = reinterpret_cast<const char*>(bytes + 8);
  HeaderSax sax(h);
  if (!json::sax_parse(first, first + n, &sax, json::input_format_t::json, /*strict=*/true))
    throw_bad_input(where, sax.error.empty() ? "header is not valid JSON" : sax.error);

  const uint64_t data_size = file_size - h.data_offset;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const TensorInfo& t = h.tensors[i];
    const std::string tw = "tensor '" + t.name + "'";
    // numel * size must not overflow: 128-bit product, capped.
    unsigned __int128 bytes_needed = dtype_size(t.dtype);
    bool huge = sax.huge_shapes_[i];
    for (int64_t d : t.shape) {
      bytes_needed *= static_cast<uint64_t>(d);
      if (bytes_needed > (static_cast<unsigned __int128>(1) << 64)) huge = true, bytes_needed = 0;
    }
    if (t.begin > t.end)
      throw_bad_input(where, tw + ": data_offsets begin " + std::to_string(t.begin) + " > end " +
                                 std::to_string(t.end));
    if (huge || bytes_needed != t.end - t.begin)
      throw_bad_input(where, tw + ": shape " + shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) +
                                 " needs " +
                                 (huge ? std::string("more than 2^64") : std::to_string(static_cast<uint64_t>(bytes_needed))) +
                                 " bytes but data_offsets span " + std::to_string(t.end - t.begin));
    if (t.end > data_size)
      throw_bad_input(where, tw + " ends at data byte " + std::to_string(t.end) + " but the file has only " +
                                 std::to_string(data_size) +
                                 " data bytes: truncated, or offsets out of range (re-download the file)");
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* prev = nullptr;
  for (const auto& t : h.tensors) {
    if (t.begin == t.end) continue;  // empty tensors occupy no bytes
    if (prev && t.begin < prev->end)
      throw_bad_input(where, "tensors '" + prev->name + "' and '" + t.name + "' overlap (bytes " +
                                 std::to_string(prev->begin) + "-" + std::to_string(prev->end) + " and " +
                                 std::to_string(t.begin) + "-" + std::to_string(t.end) + ")");
    prev = &t;
  }
  return h;
}

// ---- TensorView ---------------------------------------------------------------------------

TensorView::TensorView(std::shared_ptr<const MappedFile> file, const TensorInfo* info,
                       const std::byte* data)
    : file_(std::move(file)), info_(info), data_(data) {}

bool TensorView::aligned() const {
  return reinterpret_cast<uintptr_t>(data_) % dtype_size(info_->dtype) == 0;
}

// ---- SafetensorsFile ----------------------------------------------------------------------

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  auto f = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  f->file_ = MappedFile::open(path);
  f->header_ = parse_safetensors_header(f->file_->data(), f->file_->size(), f->file_->size(),
                                        path.string());
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->by_name_[f->header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::view(const TensorInfo& info) const {
  return TensorView(file_, &info, file_->data() + header_.data_offset + info.begin);
}

TensorView SafetensorsFile::view(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw_bad_input(path().string(), "no tensor named '" + name + "'");
  return view(*t);
}

// ---- SafetensorsSet -----------------------------------------------------------------------

void SafetensorsSet::add(std::shared_ptr<const SafetensorsFile> f) {
  const size_t idx = files_.size();
  for (const auto& t : f->tensors()) {
    auto [it, inserted] = where_.emplace(t.name, std::make_pair(idx, &t));
    if (!inserted)
      throw_bad_input(f->path().string(), "tensor '" + t.name + "' is also in " +
                                              files_[it->second.first]->path().string() +
                                              ": the same tensor in two shards (remove one copy)");
  }
  files_.push_back(std::move(f));
}

SafetensorsSet SafetensorsSet::open_files(const std::vector<fs::path>& files) {
  SafetensorsSet s;
  for (const auto& p : files) s.add(SafetensorsFile::open(p));
  return s;
}

SafetensorsSet SafetensorsSet::open_dir(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw_bad_input(dir.string(), "not a directory");
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    if (fs::exists(dir / "model.safetensors")) return open_files({dir / "model.safetensors"});
    std::vector<fs::path> found;
    bool has_bin = false;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".safetensors") found.push_back(e.path());
      if (e.path().extension() == ".bin") has_bin = true;
    }
    if (found.size() == 1) return open_files(found);
    if (found.empty())
      throw_bad_input(dir.string(), std::string("no model.safetensors or model.safetensors.index.json") +
                                        (has_bin ? " (found PyTorch .bin weights: re-save the model with "
                                                   "save_pretrained(..., safe_serialization=True))"
                                                 : ""));
    throw_bad_input(dir.string(), std::to_string(found.size()) +
                                      " .safetensors files but no model.safetensors.index.json to say "
                                      "which tensors each holds");
  }
  // Read the index.
  std::string text;
  {
    auto m = MappedFile::open(index);
    text.assign(reinterpret_cast<const char*>(m->data()), m->size());
  }
  const json j = parse_json_object_strict(text.data(), text.data() + text.size(), index.string(), "index");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object())
    throw_bad_input(index.string(), "no 'weight_map' object (tensor name -> shard file)");
  SafetensorsSet s;
  s.has_index_ = true;
  if (auto md = j.find("metadata"); md != j.end() && md->is_object())
    for (auto it = md->begin(); it != md->end(); ++it)
      s.index_metadata_[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  std::map<std::string, std::vector<std::string>> by_shard;  // sorted: deterministic file order
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      throw_bad_input(index.string(), "weight_map entry for '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw_bad_input(index.string(), "weight_map names shard '" + shard + "' which is not a plain file name");
    by_shard[shard].push_back(it.key());
  }
  for (const auto& [shard, names] : by_shard) {
    const fs::path p = dir / shard;
    if (!fs::exists(p))
      throw_bad_input(index.string(), "names shard '" + shard + "' (" + std::to_string(names.size()) +
                                          " tensors) which does not exist: copy the missing shard into " +
                                          dir.string());
    auto f = SafetensorsFile::open(p);
    for (const auto& n : names)
      if (!f->find(n))
        throw_bad_input(index.string(), "lists tensor '" + n + "' in shard '" + shard +
                                            "' but that file does not contain it");
    if (f->tensors().size() != names.size())
      for (const auto& t : f->tensors())
        if (std::find(names.begin(), names.end(), t.name) == names.end()) {
          auto other = wm->find(t.name);
          throw_bad_input(p.string(), "holds tensor '" + t.name + "' that the index " +
                                          (other == wm->end() ? std::string("does not list")
                                                              : "assigns to shard '" + other->get<std::string>() + "'") +
                                          ": the same tensor in two shards, or a stale index");
        }
    s.add(std::move(f));
  }
  return s;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [n, _] : where_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

const TensorInfo& SafetensorsSet::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end())
    throw_bad_input(files_.empty() ? std::string("checkpoint") : files_[0]->path().parent_path().string(),
                    "missing tensor '" + name + "'");
  return *it->second.second;
}

const SafetensorsFile& SafetensorsSet::file_of(const std::string& name) const {
  info(name);  // throws when absent
  return *files_[where_.at(name).first];
}

TensorView SafetensorsSet::view(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) info(name);  // throws the missing-tensor error
  return files_[it->second.first]->view(*it->second.second);
}

uint64_t SafetensorsSet::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [_, w] : where_) n += w.second->nbytes();
  return n;
}

}  // namespace uqmerge
