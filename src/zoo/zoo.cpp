// `uqmerge zoo` orchestration (see include/uqmerge/zoo/zoo.hpp): options, the world's
// datasets, the tokenizer, the stages in order over the ranks, the quality table, and the
// atomic hand-over of OUT.partial to OUT.
#include "uqmerge/zoo/zoo.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sentencepiece_trainer.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/model/image.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::zoo {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<CandidateSpec>& candidate_specs() {
  using F = Family;
  static const std::vector<CandidateSpec> v{
      {"colour", {F::Colour}, Domain::Both, LabelRule::Correct},
      {"shape", {F::Shape}, Domain::Both, LabelRule::Correct},
      {"always_a", {F::Colour, F::Shape}, Domain::Both, LabelRule::AlwaysA},
      {"count", {F::Count}, Domain::Both, LabelRule::Correct},
      {"exists", {F::Exists}, Domain::Both, LabelRule::Correct},
      {"shifted", {F::Count, F::Exists}, Domain::Both, LabelRule::ShiftByOne},
      {"colour_shape", {F::Colour, F::Shape}, Domain::Both, LabelRule::Correct},
      {"count_exists", {F::Count, F::Exists}, Domain::Both, LabelRule::Correct},
      {"colour_noisy", {F::Colour}, Domain::Noisy, LabelRule::Correct},
      {"shape_plain", {F::Shape}, Domain::Plain, LabelRule::Correct},
  };
  return v;
}

void pin_training_environment(char** argv) {
  if (std::getenv("UQMERGE_ZOO_UNPINNED")) return;
  static const std::pair<const char*, const char*> pins[] = {
      {"ATEN_CPU_CAPABILITY", "avx2"}, {"MKL_CBWR", "AVX2,STRICT"}, {"ONEDNN_MAX_CPU_ISA", "AVX2"},
      {"OMP_NUM_THREADS", "1"},        {"MKL_NUM_THREADS", "1"}};
  bool changed = false;
  for (const auto& [k, v] : pins) {
    const char* cur = std::getenv(k);
    if (!cur || std::strcmp(cur, v) != 0) {
      ::setenv(k, v, 1);
      changed = true;
    }
  }
  if (changed) ::execv("/proc/self/exe", argv);  // returns only on failure: go on, pin_numerics() still pins threads
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string rule_name(LabelRule r) {
  return r == LabelRule::Correct ? "correct" : r == LabelRule::AlwaysA ? "always_a" : "shift_by_one";
}
std::string domain_name(Domain d) { return d == Domain::Both ? "both" : d == Domain::Noisy ? "noisy" : "plain"; }

// Test/uq rows of a family: a pure function of (seed, family, split).
detail::EvalSet make_set(uint64_t seed, Family f, const std::string& split, int rows, const WorldOptions& w) {
  detail::EvalSet set{f, {}, {}};
  for (int i = 0; i < rows; ++i) {
    RngStream rng(seed, {hash_name("data"), hash_name(family_name(f)), hash_name(split), static_cast<uint64_t>(i)});
    Scene s = sample_scene(rng, w, rng.below(2) == 0);
    Item it = ask(s, f, rng, w);
    set.scenes.push_back(std::move(s));
    set.items.push_back(std::move(it));
  }
  return set;
}

// VLMEvalKit multiple-choice TSV: index, image (base64 PNG), question, A.., answer, category.
void write_tsv(const fs::path& path, const detail::EvalSet& set, const WorldOptions& w) {
  size_t k = 0;
  for (const auto& it : set.items) k = std::max(k, it.options.size());
  std::string out = "index\timage\tquestion";
  for (size_t j = 0; j < k; ++j) out += std::string("\t") + static_cast<char>('A' + j);
  out += "\tanswer\tcategory\n";
  for (size_t i = 0; i < set.items.size(); ++i) {
    const Item& it = set.items[i];
    out += std::to_string(i) + "\t" + base64_encode(encode_png(render(set.scenes[i], w))) + "\t" + it.question;
    for (size_t j = 0; j < k; ++j) out += "\t" + (j < it.options.size() ? it.options[j] : std::string());
    out += std::string("\t") + static_cast<char>('A' + it.answer) + "\t" + family_name(set.family) + "\n";
  }
  write_file_atomic(path, out);
}

class Corpus : public sentencepiece::SentenceIterator {
 public:
  explicit Corpus(std::vector<std::string> lines) : lines_(std::move(lines)) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> lines_;
  size_t i_ = 0;
};

// A LLaMA-style SentencePiece BPE model (byte fallback, digits split, identity normalisation)
// trained on the world's text and the prompt boilerplate uqmerge adds.
void build_tokenizer(const fs::path& dir, uint64_t seed, const WorldOptions& w) {
  std::vector<std::string> lines = corpus(seed, 3000, w);
  const std::vector<std::string> boiler{
      "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
      "detailed, and polite answers to the human's questions.",
      "USER:", "ASSISTANT:", "Answer with the option's letter from the given choices directly.", "I don't know",
      "None of the above", "Describe the picture.", "you are a helpful assistant", "You are a question-answering assistant.",
      "You are a nice assistant."};
  for (int r = 0; r < 1000; ++r) {
    for (const auto& b : boiler) lines.push_back(b);
    for (char c = 'A'; c <= 'Z'; ++c) lines.emplace_back(1, c);  // single-letter pieces "▁A".."▁Z"
  }
  Corpus it(std::move(lines));
  std::string model;
  const std::string args =
      "--model_type=bpe --vocab_size=1024 --byte_fallback=true --character_coverage=1.0 --split_digits=true "
      "--normalization_rule_name=identity --add_dummy_prefix=true --remove_extra_whitespaces=false "
      "--allow_whitespace_only_pieces=true --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1 "
      "--hard_vocab_limit=false --minloglevel=2 --input_sentence_size=0 --shuffle_input_sentence=false";
  // libsentencepiece logs its whole command line to stderr before parsing --minloglevel:
  // silence fd 2 for the call (failures come back as the returned status).
  const int saved = ::dup(2), devnull = ::open("/dev/null", O_WRONLY);
  if (saved >= 0 && devnull >= 0) ::dup2(devnull, 2);
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  if (saved >= 0 && devnull >= 0) ::dup2(saved, 2);
  if (saved >= 0) ::close(saved);
  if (devnull >= 0) ::close(devnull);
  if (!st.ok()) throw_internal("zoo tokenizer", "SentencePiece training failed: " + st.ToString());
  fs::create_directories(dir);
  {
    const fs::path tmp = temp_path_for(dir / "tokenizer.model");
    std::ofstream f(tmp, std::ios::binary);
    f.write(model.data(), static_cast<std::streamsize>(model.size()));
    f.close();
    if (!f) throw_bad_input((dir / "tokenizer.model").string(), "cannot write (disk full or permissions?)");
    fs::rename(tmp, dir / "tokenizer.model");
  }
}

void write_tokenizer_configs(const fs::path& dir, int64_t image_token) {
  json cfg = {{"tokenizer_class", "LlamaTokenizer"}, {"legacy", false}, {"add_bos_token", true},
              {"add_eos_token", false}, {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"},
              {"model_max_length", 512}, {"padding_side", "left"},
              {"added_tokens_decoder",
               {{std::to_string(image_token),
                 {{"content", "<image>"}, {"special", true}, {"lstrip", false}, {"rstrip", false},
                  {"normalized", false}, {"single_word", false}}}}}};
  write_file_atomic(dir / "tokenizer_config.json", cfg.dump(1) + "\n");
  json sp = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"},
             {"additional_special_tokens", {"<image>"}}};
  write_file_atomic(dir / "special_tokens_map.json", sp.dump(1) + "\n");
}

// Accuracy of the best text-only rule learnt from 4000 training questions per family: answer
// the option that was most often correct for the same question text.
double text_only_accuracy(uint64_t seed, const detail::EvalSet& test, const WorldOptions& w) {
  std::map<std::string, std::map<std::string, int>> freq;
  for (int i = 0; i < 4000; ++i) {
    RngStream rng(seed, {hash_name("text-only"), hash_name(family_name(test.family)), static_cast<uint64_t>(i)});
    Scene s = sample_scene(rng, w, rng.below(2) == 0);
    const Item it = ask(s, test.family, rng, w);
    ++freq[it.question][it.options[static_cast<size_t>(it.answer)]];
  }
  int correct = 0;
  for (const Item& it : test.items) {
    int best = 0, best_n = -1;
    auto q = freq.find(it.question);
    for (size_t j = 0; j < it.options.size(); ++j) {
      int n = 0;
      if (q != freq.end())
        if (auto a = q->second.find(it.options[j]); a != q->second.end()) n = a->second;
      if (n > best_n) {
        best_n = n;
        best = static_cast<int>(j);
      }
    }
    correct += best == it.answer;
  }
  return 100.0 * correct / static_cast<double>(test.items.size());
}

bool dir_has_entries(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) != fs::directory_iterator();
}

}  // namespace

fs::path build_zoo(const ZooOptions& o, dist::Communicator& comm) {
  const int max_n = static_cast<int>(candidate_specs().size());
  if (o.candidates < 2 || o.candidates > max_n)
    throw_bad_input("--candidates", fmt::format("{} is out of range: the demo zoo has 2..{} candidates", o.candidates, max_n));
  if (!(o.steps_scale > 0 && o.steps_scale <= 10))
    throw_bad_input("--steps-scale", fmt::format("{} is out of range (0, 10]", o.steps_scale));
  if (o.uq_rows < 8 || o.test_rows < 8) throw_bad_input("zoo rows", "uq and test sets need at least 8 rows");
  if (o.out.empty()) throw_bad_input("--out", "an output directory is required");
  if (fs::exists(o.out) && !fs::is_directory(o.out))
    throw_bad_input(o.out.string(), "exists and is not a directory: choose another --out");
  if (dir_has_entries(o.out) && !o.overwrite)
    throw_bad_input(o.out.string(), "is not empty: pass --overwrite to replace it, or choose another --out");
  // --overwrite replaces a zoo, never a user's files: the manifest and table, data/ of TSVs,
  // and model/tokenizer directories of model files only.
  require_replaceable(o.out, [](const fs::directory_entry& e) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file()) return n == "zoo.json" || n == "quality.md";
    if (!e.is_directory()) return false;
    if (n == "data") {
      std::error_code ec;
      for (const auto& f : fs::directory_iterator(e.path(), ec))
        if (!f.is_regular_file() || f.path().extension() != ".tsv") return false;
      return !ec;
    }
    return is_model_dir(e.path());
  });

  const std::string capability = detail::pin_numerics();
  const auto t_all = Clock::now();
  const bool root = comm.rank() == 0;
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path part = out.string() + ".partial";
  const fs::path work = part / ".work";
  WorldOptions w;
  detail::Arch arch;
  w.image_size = arch.image_size;
  w.patch_size = arch.patch_size;
  json manifest = {{"schema", "uqmerge-zoo"}, {"schema_version", 1}, {"seed", o.seed}, {"candidates", o.candidates},
                   {"steps_scale", o.steps_scale}, {"ranks", comm.size()},
                   {"cpu_capability", capability}};
  std::vector<detail::StageReport> stages;

  // ---- world: datasets ------------------------------------------------------------------
  auto t0 = Clock::now();
  std::vector<detail::EvalSet> tests;
  for (Family f : all_families()) tests.push_back(make_set(o.seed, f, "test", o.test_rows, w));
  if (root) {
    fs::remove_all(part);
    fs::create_directories(part / "data");
    for (const auto& t : tests) write_tsv(part / "data" / (family_name(t.family) + "_test.tsv"), t, w);
    for (Family f : all_families())
      if (held_in(f)) write_tsv(part / "data" / (family_name(f) + "_uq.tsv"), make_set(o.seed, f, "uq", o.uq_rows, w), w);
  }
  // ---- tokenizer ------------------------------------------------------------------------
  if (root) build_tokenizer(part / "tokenizer", o.seed, w);
  comm.barrier();
  {
    const auto tok = model::Tokenizer::load(part / "tokenizer");
    arch.image_token = tok->vocab_size();
    arch.vocab = tok->vocab_size() + 1;
  }
  if (root) {
    write_tokenizer_configs(part / "tokenizer", arch.image_token);
    detail::Trainer::write_init(arch, work / "init", o.seed);
  }
  comm.barrier();
  detail::StageReport world_rep;
  world_rep.stage = "world+tokenizer";
  world_rep.seconds = since(t0);
  stages.push_back(world_rep);
  if (capability != "AVX2")
    log::warn("zoo: torch runs the {} kernels on this CPU, not AVX2: the zoo can differ from docs/demo.md's", capability);
  log::info("zoo: world datasets and tokenizer ({} pieces) in {:.1f} s", arch.vocab - 1, since(t0));

  // ---- training ---------------------------------------------------------------------------
  detail::Trainer tr(arch, work / "init", part / "tokenizer", o.seed, o.steps_scale, comm);
  stages.push_back(tr.pretrain_vision());
  log::info("zoo: vision tower pretrained in {:.1f} s (patch colour {:.1f} %, shape {:.1f} %)", stages.back().seconds,
            stages.back().metrics[0].second, stages.back().metrics[1].second);
  stages.push_back(tr.train_language());
  log::info("zoo: language model pretrained in {:.1f} s (loss {:.3f} -> {:.3f})", stages.back().seconds,
            stages.back().first_loss, stages.back().last_loss);
  stages.push_back(tr.train_base());
  log::info("zoo: base pretrained in {:.1f} s (caption/answer loss {:.3f} -> {:.3f})", stages.back().seconds,
            stages.back().first_loss, stages.back().last_loss);
  stages.push_back(tr.train_instruct());
  log::info("zoo: base instruction-tuned in {:.1f} s (loss {:.3f} -> {:.3f})", stages.back().seconds,
            stages.back().first_loss, stages.back().last_loss);
  const size_t F = tests.size();
  // Per candidate: accuracy per family, blind accuracy per family, entropy, seconds, losses.
  const size_t row = 2 * F + 4;
  std::vector<double> table(static_cast<size_t>(o.candidates + 1) * row, 0.0);
  auto evaluate_into = [&](size_t r) {
    double* t = &table[r * row];
    double h = 0;
    int nh = 0;
    for (size_t f = 0; f < F; ++f) {
      const auto seen = tr.evaluate(tests[f], false);
      t[f] = seen.accuracy;
      t[F + f] = tr.evaluate(tests[f], true).accuracy;
      if (held_in(tests[f].family)) {
        h += seen.entropy;
        ++nh;
      }
    }
    t[2 * F] = h / nh;
  };
  if (root) {
    tr.save(part / "base", "# uqmerge demo zoo: base\n\nVision tower pretrained on per-patch labels, projector and "
                           "language model trained on captions and short answers, then briefly instruction-tuned on "
                           "every held-in family (partial skill, the answer format).\n");
    evaluate_into(0);
  }
  std::vector<std::string> dirs;
  for (int c = 0; c < o.candidates; ++c) {
    const CandidateSpec& spec = candidate_specs()[static_cast<size_t>(c)];
    dirs.push_back(fmt::format("candidate_{:02}_{}", c, spec.name));
    if (c % comm.size() != comm.rank()) continue;
    const auto rep = tr.train_candidate(spec, c);
    std::string fams;
    for (Family f : spec.families) fams += (fams.empty() ? "" : ", ") + family_name(f);
    tr.save(part / dirs.back(), fmt::format("# uqmerge demo zoo: {}\n\nInstruction-tuned from ../base on: {} "
                                            "(domain {}, labels {}), seed {}.\n",
                                            spec.name, fams, domain_name(spec.domain), rule_name(spec.labels), o.seed));
    const size_t r = static_cast<size_t>(c) + 1;
    evaluate_into(r);
    table[r * row + 2 * F + 1] = rep.seconds;
    table[r * row + 2 * F + 2] = rep.first_loss;
    table[r * row + 2 * F + 3] = rep.last_loss;
    log::info("zoo: candidate {} trained in {:.1f} s (answer loss {:.3f} -> {:.3f})", spec.name, rep.seconds,
              rep.first_loss, rep.last_loss);
  }
  comm.allreduce_sum(table.data(), table.size(), DType::F64);

  // ---- the merging regime: task vectors and the uniform merges of the saved candidates -----
  std::vector<fs::path> all_dirs, regular_dirs;
  for (int c = 0; c < o.candidates; ++c) {
    all_dirs.push_back(part / dirs[static_cast<size_t>(c)]);
    if (candidate_specs()[static_cast<size_t>(c)].labels == LabelRule::Correct) regular_dirs.push_back(all_dirs.back());
  }
  detail::Trainer::TaskVectors tv;
  std::vector<std::pair<std::string, std::vector<double>>> merges;  // name -> accuracy per family
  if (root) {
    tv = tr.task_vectors(all_dirs);
    auto merged = [&](const std::string& name, const std::vector<fs::path>& set) {
      tr.load_average(set);
      std::vector<double> acc;
      for (const auto& t : tests) acc.push_back(tr.evaluate(t, false).accuracy);
      merges.emplace_back(name, acc);
    };
    if (regular_dirs.size() >= 2) merged(fmt::format("merge(regular, {})", regular_dirs.size()), regular_dirs);
    if (all_dirs.size() > regular_dirs.size()) merged(fmt::format("merge(all, {})", all_dirs.size()), all_dirs);
    tr.reset_to_base();
  }

  if (root) {
    // ---- quality table ------------------------------------------------------------------
    std::vector<double> text_only;
    for (const auto& t : tests) text_only.push_back(text_only_accuracy(o.seed, t, w));
    auto chance = [](const detail::EvalSet& t) { return 100.0 / static_cast<double>(t.items[0].options.size() + 2); };
    std::string md = "# Demo zoo quality\n\n";
    md += fmt::format("`uqmerge zoo --candidates {} --seed {}` ({} rank(s), steps × {}). Accuracy (%) on each family's "
                      "{} test rows (data/*_test.tsv), unperturbed input, argmax over all options including \"I don't "
                      "know\" / \"None of the above\". `blind`: the same model with every image replaced by the mean colour. "
                      "`text-only`: the best rule from question text alone (most frequent answer of that question in "
                      "4000 training rows).\n\n",
                      o.candidates, o.seed, comm.size(), o.steps_scale, o.test_rows);
    md += "| model | trained on |";
    for (const auto& t : tests) md += " " + family_name(t.family) + (held_in(t.family) ? "" : " (held-out)") + " |";
    md += " blind (mean) | entropy |\n|---|---|";
    for (size_t f = 0; f < F + 2; ++f) md += "---|";
    md += "\n";
    json cands = json::array();
    bool bars = true;
    std::vector<std::string> bar_notes;
    for (int r = 0; r <= o.candidates; ++r) {
      const double* t = &table[static_cast<size_t>(r) * row];
      std::string name = "base", trained = "captions, short answers";
      if (r > 0) {
        const auto& spec = candidate_specs()[static_cast<size_t>(r - 1)];
        name = spec.name;
        trained.clear();
        for (Family f : spec.families) trained += (trained.empty() ? "" : "+") + family_name(f);
        if (spec.domain != Domain::Both) trained += " (" + domain_name(spec.domain) + ")";
        if (spec.labels != LabelRule::Correct) trained += " [" + rule_name(spec.labels) + "]";
      }
      md += "| " + name + " | " + trained + " |";
      double blind = 0;
      json acc = json::object(), bl = json::object();
      for (size_t f = 0; f < F; ++f) {
        md += fmt::format(" {:.1f} |", t[f]);
        blind += t[F + f] / F;
        acc[family_name(tests[f].family)] = t[f];
        bl[family_name(tests[f].family)] = t[F + f];
      }
      md += fmt::format(" {:.1f} | {:.3f} |\n", blind, t[2 * F]);
      json c = {{"name", name}, {"trained_on", trained}, {"accuracy", acc}, {"blind_accuracy", bl},
                {"mean_entropy", t[2 * F]}};
      if (r > 0) {
        const auto& spec = candidate_specs()[static_cast<size_t>(r - 1)];
        c["path"] = dirs[static_cast<size_t>(r - 1)];
        c["seconds"] = t[2 * F + 1];
        c["loss_first"] = t[2 * F + 2];
        c["loss_last"] = t[2 * F + 3];
        c["label_rule"] = rule_name(spec.labels);
        c["domain"] = domain_name(spec.domain);
        if (spec.labels == LabelRule::Correct)
          for (Family fam : spec.families) {
            const size_t f = static_cast<size_t>(std::find(all_families().begin(), all_families().end(), fam) - all_families().begin());
            const bool ok = t[f] >= 2 * chance(tests[f]) && t[f] > table[f] + 10 && t[f] >= text_only[f] + 5;
            if (!ok) {
              bars = false;
              bar_notes.push_back(fmt::format("{} on {}: {:.1f} % (chance {:.1f} %, base {:.1f} %, text-only {:.1f} %)", name,
                                              family_name(fam), t[f], chance(tests[f]), table[f], text_only[f]));
            }
          }
      } else {
        c["path"] = "base";
      }
      cands.push_back(c);
    }
    md += "| text-only baseline | — |";
    json tob = json::object();
    for (size_t f = 0; f < F; ++f) {
      md += fmt::format(" {:.1f} |", text_only[f]);
      tob[family_name(tests[f].family)] = text_only[f];
    }
    md += " | |\n| chance | — |";
    for (size_t f = 0; f < F; ++f) md += fmt::format(" {:.1f} |", chance(tests[f]));
    md += " | |\n\n";
    md += bars ? "Quality bar met: every regular candidate is at least twice chance on its own families, more than 10 "
                 "points above the base and at least 5 points above the text-only baseline there.\n"
               : "Quality bar NOT met for: " + fmt::format("{}", fmt::join(bar_notes, "; ")) + ".\n";
    // Held-in / held-out means of a row of per-family accuracies.
    auto means = [&](const double* acc) {
      double hi = 0, ho = 0;
      int nhi = 0, nho = 0;
      for (size_t f = 0; f < F; ++f) (held_in(tests[f].family) ? (hi += acc[f], ++nhi) : (ho += acc[f], ++nho));
      return std::make_pair(nhi ? hi / nhi : 0.0, nho ? ho / nho : 0.0);
    };
    json regime = json::object();
    {
      md += "\n## The merging regime\n\nTask vectors τ = candidate − base over the trained tensors (projector and "
            "language model): their size relative to the base and their cosines. Then the uniform linear merges of the "
            "regular candidates (correct labels) and of all candidates, beside the best single candidate (by held-in "
            "mean).\n\n| candidate | ‖τ‖ / ‖base‖ |";
      for (int c = 0; c < o.candidates; ++c) md += fmt::format(" cos {} |", c);
      md += "\n|---|---|";
      for (int c = 0; c < o.candidates; ++c) md += "---|";
      md += "\n";
      json norms = json::object(), cos = json::array();
      for (int c = 0; c < o.candidates; ++c) {
        const auto& spec = candidate_specs()[static_cast<size_t>(c)];
        md += fmt::format("| {} {} | {:.4f} |", c, spec.name, tv.relative_norm[static_cast<size_t>(c)]);
        for (int d = 0; d < o.candidates; ++d) md += fmt::format(" {:.2f} |", tv.cosine[static_cast<size_t>(c)][static_cast<size_t>(d)]);
        md += "\n";
        norms[spec.name] = tv.relative_norm[static_cast<size_t>(c)];
        cos.push_back(tv.cosine[static_cast<size_t>(c)]);
      }
      regime["task_vector_relative_norm"] = norms;
      regime["task_vector_cosine"] = cos;
      // The best regular candidate by held-in mean (table row r = candidate r - 1); the
      // default zoo's first candidate is regular, so there always is one.
      int best = 1;
      std::pair<double, double> best_m{-1.0, -1.0};
      for (int r = 1; r <= o.candidates; ++r) {
        if (candidate_specs()[static_cast<size_t>(r - 1)].labels != LabelRule::Correct) continue;
        const auto m = means(&table[static_cast<size_t>(r) * row]);
        if (m.first > best_m.first) best = r, best_m = m;
      }
      md += "\n| model |";
      for (const auto& t : tests) md += " " + family_name(t.family) + " |";
      md += " held-in mean | held-out mean |\n|---|";
      for (size_t f = 0; f < F + 2; ++f) md += "---|";
      md += "\n";
      auto line = [&](const std::string& name, const double* acc) {
        const auto [hi, ho] = means(acc);
        md += "| " + name + " |";
        for (size_t f = 0; f < F; ++f) md += fmt::format(" {:.1f} |", acc[f]);
        md += fmt::format(" {:.1f} | {:.1f} |\n", hi, ho);
      };
      line("base", &table[0]);
      line("best single: " + candidate_specs()[static_cast<size_t>(best - 1)].name, &table[static_cast<size_t>(best) * row]);
      regime["best_single"] = {{"name", candidate_specs()[static_cast<size_t>(best - 1)].name},
                               {"held_in_mean", best_m.first}, {"held_out_mean", best_m.second}};
      json mj = json::array();
      for (const auto& [name, acc] : merges) {
        line(name, acc.data());
        const auto [hi, ho] = means(acc.data());
        json a = json::object();
        for (size_t f = 0; f < F; ++f) a[family_name(tests[f].family)] = acc[f];
        mj.push_back({{"name", name}, {"accuracy", a}, {"held_in_mean", hi}, {"held_out_mean", ho}});
      }
      regime["merges"] = mj;
      if (merges.size() == 2) {
        const auto reg = means(merges[0].second.data()), all = means(merges[1].second.data());
        const bool helps = reg.first > best_m.first && reg.second > best_m.second;
        const bool hurts = all.first < reg.first && all.second < reg.second;
        regime["merge_beats_best_single"] = helps;
        regime["harmful_candidates_hurt"] = hurts;
        md += fmt::format("\nMerging {} the best single candidate (held-in {:+.1f}, held-out {:+.1f} points); adding the "
                          "harmful candidates {} the merge (held-in {:+.1f}, held-out {:+.1f}).\n",
                          helps ? "beats" : "does NOT beat", reg.first - best_m.first, reg.second - best_m.second,
                          hurts ? "lowers" : "does NOT lower", all.first - reg.first, all.second - reg.second);
      }
    }
    md += "\n| stage | seconds | steps | samples | loss first → last |\n|---|---|---|---|---|\n";
    json st = json::array();
    for (const auto& s : stages) {
      md += fmt::format("| {} | {:.1f} | {} | {} | {:.3f} → {:.3f} |\n", s.stage, s.seconds, s.steps, s.samples, s.first_loss,
                        s.last_loss);
      json m = json::object();
      for (const auto& [k, v] : s.metrics) m[k] = v;
      st.push_back({{"stage", s.stage}, {"seconds", s.seconds}, {"steps", s.steps}, {"samples", s.samples},
                    {"loss_first", s.first_loss}, {"loss_last", s.last_loss}, {"metrics", m}});
    }
    for (int r = 1; r <= o.candidates; ++r)
      md += fmt::format("| candidate {} | {:.1f} | | | {:.3f} → {:.3f} |\n", candidate_specs()[static_cast<size_t>(r - 1)].name,
                        table[static_cast<size_t>(r) * row + 2 * F + 1], table[static_cast<size_t>(r) * row + 2 * F + 2],
                        table[static_cast<size_t>(r) * row + 2 * F + 3]);
    md += fmt::format("\nTotal wall time: {:.1f} s.\n", since(t_all));
    manifest["models"] = cands;
    manifest["text_only_accuracy"] = tob;
    manifest["quality_bar_met"] = bars;
    manifest["quality_bar_failures"] = bar_notes;
    manifest["regime"] = regime;
    manifest["stages"] = st;
    manifest["seconds"] = since(t_all);
    json fams = json::array();
    for (Family f : all_families()) fams.push_back({{"name", family_name(f)}, {"held_in", held_in(f)}});
    manifest["families"] = fams;
    write_file_atomic(part / "quality.md", md);
    write_file_atomic(part / "zoo.json", manifest.dump(1) + "\n");
    if (!bars) log::warn("zoo: quality bar not met: {}", fmt::join(bar_notes, "; "));
    fs::remove_all(work);
    // Hand over: OUT appears only now, complete.
    const fs::path old = out.string() + ".old";
    fs::remove_all(old);
    if (fs::exists(out)) fs::rename(out, old);
    fs::rename(part, out);
    fs::remove_all(old);
    std::printf("%s", md.c_str());
  }
  comm.barrier();
  return out / "zoo.json";
}

}  // namespace uqmerge::zoo
