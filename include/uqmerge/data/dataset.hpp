// uqmerge/data/dataset.hpp — multiple-choice vision-language datasets (DESIGN §6):
//   VLMEvalKit TSV: columns index, question, hint, A, B, ..., answer, category, and image
//     (base64 PNG/JPEG; a value of <= 64 characters names another row's index whose image it
//     shares, as MMBench does) or image_path. Empty cells and pandas' NA spellings ("nan",
//     "None", "N/A", ...) are missing values, as VLMEvalKit reads them with pandas.
//   JSONL: {"index", "question", "hint"?, "options": [...] | "A": ..., "answer"?, "category"?,
//     "image": path (relative to the file) | "image_path"}.
// Options shown to the model: the row's own, optionally padded to N with distractors drawn
// (seeded) from other rows' options (Kostumov et al.), then "I don't know" and
// "None of the above". `answer` is optional (accuracy only). Not here: perturbations (perturb/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "uqmerge/model/image.hpp"
#include "uqmerge/model/prompt.hpp"

namespace uqmerge::data {

struct Row {
  std::string index;
  std::string question, hint, category;
  std::vector<std::string> options;  // the row's own, in letter order
  int answer = -1;                   // into options; -1 unlabelled
  std::string image_b64;             // TSV: base64 image data
  std::string image_ref;             // TSV: index of the row holding the image
  std::filesystem::path image_path;  // TSV image_path / JSONL image
  size_t line = 0;                   // 1-based source line, for messages
};

struct DatasetSpec {
  std::string name;
  std::filesystem::path path;
  int64_t limit = -1;        // keep at most this many rows (seeded subsample, original order)
  int pad_options_to = 0;    // 0: no padding
  bool extra_options = true; // append "I don't know", "None of the above"
};

class Dataset {
 public:
  // Reads and validates every row (no image is decoded). Bad input errors name file and line.
  static Dataset load(const DatasetSpec& spec, uint64_t seed);

  const std::string& name() const { return spec_.name; }
  const DatasetSpec& spec() const { return spec_; }
  size_t size() const { return rows_.size(); }
  const Row& row(size_t i) const { return rows_[i]; }
  // Options as shown to the model (own + distractors + extras).
  const model::MultipleChoice& question(size_t i) const { return questions_[i]; }
  size_t max_options() const;  // K of this dataset (largest option count)
  // Raw image bytes / decoded RGB (follows image references). Bad input naming file and row.
  std::vector<uint8_t> image_bytes(size_t i) const;
  model::RgbImage image(size_t i) const;

 private:
  DatasetSpec spec_;
  std::vector<Row> rows_;
  std::vector<model::MultipleChoice> questions_;
  std::unordered_map<std::string, size_t> all_index_;  // every row of the file (references may point outside the subsample)
  std::vector<Row> all_rows_;
};

// Splits TSV text into records of fields (pandas/csv quoting: "..." with "" escapes may hold
// tabs and newlines). Throws bad input naming `where` and the line for an unterminated quote.
std::vector<std::vector<std::string>> parse_tsv(std::string_view text, const std::string& where);
// Parses TSV/JSONL text into rows (validation of one file's rows; the fuzz target's entry).
std::vector<Row> parse_rows(std::string_view text, bool jsonl, const std::string& where);
std::vector<uint8_t> base64_decode(std::string_view s, const std::string& where);
bool is_missing(std::string_view cell);  // pandas' default NA spellings

}  // namespace uqmerge::data
