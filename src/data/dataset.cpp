// Multiple-choice datasets (see include/uqmerge/data/dataset.hpp).
#include "uqmerge/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::data {

namespace fs = std::filesystem;

namespace {
constexpr uint64_t kSubsample = 0x7375627300000001ull, kPad = 0x7061640000000002ull;

std::string at_line(const std::string& where, size_t line) { return where + ":" + std::to_string(line); }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw_bad_input(p.string(), "cannot open dataset file (missing or unreadable)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int answer_index(const std::string& a, size_t n, const std::string& where) {
  if (a.size() == 1 && a[0] >= 'A' && a[0] < 'A' + static_cast<int>(n)) return a[0] - 'A';
  throw_bad_input(where, "answer '" + a + "' is not one of the row's option letters");
}
}  // namespace

bool is_missing(std::string_view c) {
  static const std::set<std::string_view> na{"",     "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN",
                                              "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL",
                                              "NaN",  "None", "n/a", "nan", "null"};
  return na.count(c) != 0;
}

std::vector<std::vector<std::string>> parse_tsv(std::string_view t, const std::string& where) {
  std::vector<std::vector<std::string>> recs;
  std::vector<std::string> rec;
  std::string field;
  size_t i = 0, line = 1, rec_line = 1;
  bool any = false;
  while (i < t.size()) {
    const char c = t[i];
    if (c == '"' && field.empty()) {  // quoted field
      ++i;
      for (;;) {
        if (i >= t.size()) throw_bad_input(at_line(where, rec_line), "unterminated quoted field");
        if (t[i] == '"') {
          if (i + 1 < t.size() && t[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (t[i] == '\n') ++line;
        field += t[i++];
      }
      any = true;
      continue;
    }
    if (c == '\t') {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
      ++i;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ++i;
      ++i;
      if (any || !field.empty()) {
        rec.push_back(std::move(field));
        recs.push_back(std::move(rec));
      }
      rec.clear();
      field.clear();
      any = false;
      rec_line = ++line;
    } else {
      field += c;
      any = true;
      ++i;
    }
  }
  if (any || !field.empty()) {
    rec.push_back(std::move(field));
    recs.push_back(std::move(rec));
  }
  return recs;
}

// Only base64 characters (either alphabet), line breaks/spaces, and at most two trailing '='.
static bool is_base64_text(std::string_view s) {
  size_t pad = 0;
  for (char ch : s) {
    const bool b64 = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                     ch == '/' || ch == '-' || ch == '_';
    if (ch == '=') ++pad;
    else if (ch == '\n' || ch == '\r' || ch == ' ') continue;
    else if (!b64 || pad) return false;
  }
  return pad <= 2;
}

std::vector<uint8_t> base64_decode(std::string_view s, const std::string& where) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    t['-'] = 62;  // URL-safe alphabet too
    t['_'] = 63;
    return t;
  }();
  std::vector<uint8_t> out;
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char ch : s) {
    if (ch == '=') {
      ++pad;
      continue;
    }
    if (ch == '\n' || ch == '\r' || ch == ' ') continue;
    const int v = table[static_cast<uint8_t>(ch)];
    if (v < 0 || pad) throw_bad_input(where, "image is not valid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  if (pad > 2 || bits >= 6) throw_bad_input(where, "image is not valid base64 (truncated)");
  return out;
}

std::vector<Row> parse_rows(std::string_view text, bool jsonl, const std::string& where) {
  std::vector<Row> rows;
  if (jsonl) {
    size_t line = 0, start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view l = text.substr(start, end - start);
      start = end + 1;
      ++line;
      if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      const std::string w = at_line(where, line);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(l);
      } catch (const nlohmann::json::exception& e) {
        throw_bad_input(w, std::string("not a JSON object (") + e.what() + ")");
      }
      if (!j.is_object()) throw_bad_input(w, "not a JSON object");
      auto str = [&](const char* k) -> std::string {
        auto it = j.find(k);
        if (it == j.end() || it->is_null()) return "";
        if (it->is_string()) return it->get<std::string>();
        if (it->is_number()) return it->dump();
        throw_bad_input(w, std::string("'") + k + "' must be a string");
      };
      Row r;
      r.line = line;
      r.index = str("index");
      if (r.index.empty()) r.index = std::to_string(line - 1);
      r.question = str("question");
      r.hint = str("hint");
      r.category = str("category");
      if (auto it = j.find("options"); it != j.end()) {
        if (!it->is_array()) throw_bad_input(w, "'options' must be a list of strings");
        for (const auto& o : *it) {
          if (!o.is_string()) throw_bad_input(w, "'options' must be a list of strings");
          r.options.push_back(o.get<std::string>());
        }
      } else {
        for (char c = 'A'; c <= 'Z'; ++c) {
          const std::string v = str(std::string(1, c).c_str());
          if (is_missing(v)) break;
          r.options.push_back(v);
        }
      }
      std::string img = str("image");
      if (img.empty()) img = str("image_path");
      r.image_path = img;
      const std::string ans = str("answer");
      if (!ans.empty()) r.answer = answer_index(ans, r.options.size(), w);
      rows.push_back(std::move(r));
    }
    return rows;
  }
  const auto recs = parse_tsv(text, where);
  if (recs.empty()) throw_bad_input(where, "empty dataset file");
  const auto& header = recs[0];
  std::unordered_map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* req : {"question"})
    if (!col.count(req)) throw_bad_input(where, std::string("no '") + req + "' column (VLMEvalKit TSV: index, question, hint, A, B, ..., answer, image)");
  if (!col.count("image") && !col.count("image_path"))
    throw_bad_input(where, "no 'image' or 'image_path' column");
  std::vector<size_t> letters;
  for (char c = 'A'; c <= 'Z' && col.count(std::string(1, c)); ++c) letters.push_back(col[std::string(1, c)]);
  for (size_t k = 1; k < recs.size(); ++k) {
    const auto& f = recs[k];
    const std::string w = at_line(where, k + 1);
    if (f.size() != header.size())
      throw_bad_input(w, "row has " + std::to_string(f.size()) + " fields, the header " + std::to_string(header.size()) +
                             " (malformed row: a tab or newline inside an unquoted field?)");
    auto cell = [&](const char* name) -> std::string {
      auto it = col.find(name);
      if (it == col.end()) return "";
      const std::string& v = f[it->second];
      return is_missing(v) ? "" : v;
    };
    Row r;
    r.line = k + 1;
    r.index = cell("index");
    if (r.index.empty()) r.index = std::to_string(k - 1);
    r.question = cell("question");
    r.hint = cell("hint");
    r.category = cell("category");
    for (size_t c : letters) {
      if (is_missing(f[c])) continue;  // VLMEvalKit skips NaN options
      r.options.push_back(f[c]);
    }
    const std::string img = cell("image");
    if (!img.empty()) {
      if (img.size() <= 64) r.image_ref = img;
      else r.image_b64 = img;
    } else {
      r.image_path = cell("image_path");
    }
    const std::string ans = cell("answer");
    if (!ans.empty()) r.answer = answer_index(ans, r.options.size(), w);
    rows.push_back(std::move(r));
  }
  return rows;
}

Dataset Dataset::load(const DatasetSpec& spec, uint64_t seed) {
  const std::string where = spec.path.string();
  const std::string ext = spec.path.extension().string();
  if (ext != ".tsv" && ext != ".jsonl")
    throw_bad_input(where, "unknown dataset format '" + ext + "' (VLMEvalKit .tsv or .jsonl)");
  Dataset d;
  d.spec_ = spec;
  d.all_rows_ = parse_rows(read_all(spec.path), ext == ".jsonl", where);
  if (d.all_rows_.empty()) throw_bad_input(where, "no rows");
  for (size_t i = 0; i < d.all_rows_.size(); ++i) {
    const Row& r = d.all_rows_[i];
    const std::string w = at_line(where, r.line);
    if (!d.all_index_.emplace(r.index, i).second) throw_bad_input(w, "duplicate index '" + r.index + "'");
    if (r.question.empty()) throw_bad_input(w, "row '" + r.index + "' has no question");
    if (r.options.size() < 2) throw_bad_input(w, "row '" + r.index + "' has " + std::to_string(r.options.size()) + " options; at least 2 are needed");
    if (r.image_b64.empty() && r.image_ref.empty() && r.image_path.empty())
      throw_bad_input(w, "row '" + r.index + "' has no image");
    // Before any compute: a corrupt cell fails now, not when its sample is evaluated.
    if (!r.image_b64.empty() && !is_base64_text(r.image_b64))
      throw_bad_input(w + " (row '" + r.index + "')", "image is not valid base64 (re-export the TSV: the cell holds characters "
                                                      "outside the base64 alphabet)");
  }
  for (const Row& r : d.all_rows_)
    if (!r.image_ref.empty()) {
      auto it = d.all_index_.find(r.image_ref);
      if (it == d.all_index_.end())
        throw_bad_input(at_line(where, r.line),
                        "row '" + r.index + "': image cell '" + r.image_ref.substr(0, 24) + (r.image_ref.size() > 24 ? "...'" : "'") +
                            " is not valid base64 image data, and no row has that index (VLMEvalKit: base64 of the "
                            "image file, or the index of the row that holds it)");
      if (!d.all_rows_[it->second].image_ref.empty())
        throw_bad_input(at_line(where, r.line), "image refers to row '" + r.image_ref + "', which itself holds only a reference");
    }
  // Seeded subsample, original order kept.
  std::vector<size_t> keep(d.all_rows_.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = i;
  if (spec.limit >= 0 && static_cast<size_t>(spec.limit) < keep.size()) {
    RngStream rng(seed, {hash_name(spec.name), kSubsample});
    for (size_t i = keep.size() - 1; i > 0; --i) std::swap(keep[i], keep[rng.below(i + 1)]);  // Fisher-Yates
    keep.resize(static_cast<size_t>(spec.limit));
    std::sort(keep.begin(), keep.end());
  }
  // Distractor pool: every distinct option text of the file, in first-seen order.
  std::vector<std::string> pool;
  std::set<std::string> seen;
  for (const Row& r : d.all_rows_)
    for (const auto& o : r.options)
      if (seen.insert(o).second) pool.push_back(o);
  for (size_t i : keep) {
    const Row& r = d.all_rows_[i];
    model::MultipleChoice mc{r.question, r.hint, r.options};
    if (spec.pad_options_to > 0 && static_cast<int>(mc.options.size()) < spec.pad_options_to) {
      std::set<std::string> have(mc.options.begin(), mc.options.end());
      const size_t want = static_cast<size_t>(spec.pad_options_to);
      if (pool.size() < want)
        throw_bad_input(where, "pad_options_to " + std::to_string(want) + " needs that many distinct options in the file; it has " +
                                   std::to_string(pool.size()));
      RngStream rng(seed, {hash_name(spec.name), hash_name(r.index), kPad});
      while (mc.options.size() < want) {
        const std::string& cand = pool[rng.below(pool.size())];
        if (have.insert(cand).second) mc.options.push_back(cand);
      }
    }
    if (spec.extra_options) {
      mc.options.push_back("I don't know");
      mc.options.push_back("None of the above");
    }
    if (mc.options.size() > 26)
      throw_bad_input(at_line(where, r.line), "row '" + r.index + "' has " + std::to_string(mc.options.size()) +
                                                  " options with the extras: more than the 26 letters A-Z");
    d.rows_.push_back(r);
    d.questions_.push_back(std::move(mc));
  }
  return d;
}

size_t Dataset::max_options() const {
  size_t k = 0;
  for (const auto& q : questions_) k = std::max(k, q.options.size());
  return k;
}

std::vector<uint8_t> Dataset::image_bytes(size_t i) const {
  const Row* r = &rows_.at(i);
  const std::string w = at_line(spec_.path.string(), r->line) + " (row '" + r->index + "')";
  if (!r->image_ref.empty()) r = &all_rows_[all_index_.at(r->image_ref)];
  if (!r->image_b64.empty()) return base64_decode(r->image_b64, w);
  fs::path p = r->image_path;
  if (p.is_relative()) p = spec_.path.parent_path() / p;
  std::ifstream in(p, std::ios::binary);
  if (!in) throw_bad_input(w, "image file " + p.string() + " is missing or unreadable");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

model::RgbImage Dataset::image(size_t i) const {
  const Row& r = rows_.at(i);
  return model::decode_image(image_bytes(i), at_line(spec_.path.string(), r.line) + " (row '" + r.index + "')");
}

}  // namespace uqmerge::data
