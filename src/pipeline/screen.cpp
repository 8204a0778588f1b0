// The label-free screen for degenerate candidates (see include/uqmerge/pipeline/screen.hpp).
#include "uqmerge/pipeline/screen.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace uqmerge::pipeline {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Argmax over the first n entries; the earliest on ties.
int64_t argmax(const double* p, int64_t n) { return std::max_element(p, p + n) - p; }

double macro(const std::vector<ScreenDataset>& ds, double ScreenDataset::*field) {
  double sum = 0;
  int n = 0;
  for (const auto& d : ds)
    if (!std::isnan(d.*field)) sum += d.*field, ++n;
  return n ? sum / n : kNaN;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::vector<size_t> ScreenReport::kept() const {
  std::vector<size_t> k;
  for (size_t m = 0; m < candidates.size(); ++m)
    if (!candidates[m].flagged) k.push_back(m);
  return k;
}

std::string ScreenReport::flagged_summary() const {
  std::string s;
  for (const auto& c : candidates) {
    if (!c.flagged) continue;
    std::string why;
    for (const auto& r : c.reasons) why += (why.empty() ? "" : ", ") + r;
    s += fmt::format("{}{} ({})", s.empty() ? "" : "; ", c.name, why);
  }
  return s;
}

ScreenReport screen_candidates(const std::vector<std::string>& names, const std::vector<data::Dataset>& datasets,
                               const std::vector<uq::ModelResult>& clean, const std::vector<uq::ModelResult>& blank,
                               const uq::ModelResult* base, const ScreenOptions& opts) {
  ScreenReport rep;
  rep.options = opts;
  const size_t M = names.size(), D = datasets.size();
  if (M < 3)
    rep.notes.push_back(fmt::format("agreement: needs at least 3 candidates (a consensus of the others), {} given; not computed", M));
  for (size_t m = 0; m < M; ++m) {
    CandidateScreen c;
    c.name = names[m];
    for (size_t d = 0; d < D; ++d) {
      const data::Dataset& ds = datasets[d];
      const size_t S = ds.size(), K = static_cast<size_t>(clean[m].datasets[d].options);
      const std::vector<double>& p = clean[m].datasets[d].p_mean;
      const std::vector<double>& q = blank[m].datasets[d].p_mean;
      ScreenDataset sd;
      sd.name = ds.name();
      sd.options = static_cast<int64_t>(K);
      sd.p = p;
      sd.p_blank = q;
      std::vector<int64_t> hist(K, 0);
      double tv = 0, agree = 0, agree_base = 0;
      std::vector<double> others(K), votes(K);
      for (size_t i = 0; i < S; ++i) {
        const int64_t n = static_cast<int64_t>(ds.question(i).options.size());
        const double* pi = &p[i * K];
        const double* qi = &q[i * K];
        const int64_t a = argmax(pi, n);
        sd.predicted.push_back(a);
        sd.predicted_blank.push_back(argmax(qi, n));
        ++hist[static_cast<size_t>(a)];
        double t = 0;
        for (int64_t k = 0; k < n; ++k) t += std::abs(pi[k] - qi[k]);
        tv += 0.5 * t;
        if (M >= 3) {  // the others' plurality vote; ties go to the larger summed probability, then the earlier letter
          std::fill(others.begin(), others.end(), 0.0);
          std::fill(votes.begin(), votes.end(), 0.0);
          for (size_t o = 0; o < M; ++o) {
            if (o == m) continue;
            const double* po = &clean[o].datasets[d].p_mean[i * K];
            votes[static_cast<size_t>(argmax(po, n))] += 1;
            for (int64_t k = 0; k < n; ++k) others[static_cast<size_t>(k)] += po[k];
          }
          int64_t cons = 0;
          for (int64_t k = 1; k < n; ++k) {
            const size_t x = static_cast<size_t>(k), c0 = static_cast<size_t>(cons);
            if (votes[x] > votes[c0] || (votes[x] == votes[c0] && others[x] > others[c0])) cons = k;
          }
          agree += cons == a;
        }
        if (base) agree_base += argmax(&base->datasets[d].p_mean[i * K], n) == a;
      }
      const double Sd = static_cast<double>(S);
      const auto mode = std::max_element(hist.begin(), hist.end());
      sd.mode_position = mode - hist.begin();
      sd.mode_share = S == 0 ? kNaN : static_cast<double>(*mode) / Sd;
      sd.image_sensitivity = S ? tv / Sd : kNaN;
      sd.agreement = M >= 3 && S ? agree / Sd : kNaN;
      sd.base_agreement = base && S ? agree_base / Sd : kNaN;
      c.datasets.push_back(std::move(sd));
    }
    c.mode_share = macro(c.datasets, &ScreenDataset::mode_share);
    c.image_sensitivity = macro(c.datasets, &ScreenDataset::image_sensitivity);
    c.agreement = macro(c.datasets, &ScreenDataset::agreement);
    c.base_agreement = macro(c.datasets, &ScreenDataset::base_agreement);
    rep.candidates.push_back(std::move(c));
  }
  std::vector<double> sens, agr;
  for (const auto& c : rep.candidates) sens.push_back(c.image_sensitivity), agr.push_back(c.agreement);
  rep.median_sensitivity = median(sens);
  rep.median_agreement = median(agr);
  if (!std::isnan(rep.median_sensitivity) && rep.median_sensitivity <= 0)
    rep.notes.push_back("image_sensitivity: the median candidate ignores the image (0), so no candidate can be judged against it");
  for (auto& c : rep.candidates) {
    if (!std::isnan(c.mode_share) && c.mode_share >= opts.max_mode_share)
      c.reasons.push_back(fmt::format("gives one answer to {:.0f} % of the samples (mode_share {:.3f} >= {})", 100 * c.mode_share,
                                      c.mode_share, opts.max_mode_share));
    if (!std::isnan(c.image_sensitivity) && rep.median_sensitivity > 0 &&
        c.image_sensitivity < opts.min_sensitivity_ratio * rep.median_sensitivity)
      c.reasons.push_back(fmt::format("ignores the image (image_sensitivity {:.4f} < {} x median {:.4f})", c.image_sensitivity,
                                      opts.min_sensitivity_ratio, rep.median_sensitivity));
    if (!std::isnan(c.agreement) && !std::isnan(rep.median_agreement) &&
        c.agreement < opts.min_agreement_ratio * rep.median_agreement)
      c.reasons.push_back(fmt::format("disagrees with the other candidates (agreement {:.3f} < {} x median {:.3f})", c.agreement,
                                      opts.min_agreement_ratio, rep.median_agreement));
    c.flagged = !c.reasons.empty();
  }
  return rep;
}

}  // namespace uqmerge::pipeline
