// Uncertainty estimator (see include/uqmerge/uq/estimator.hpp).
#include "uqmerge/uq/estimator.hpp"

#include <cmath>

#include "uqmerge/util/error.hpp"

namespace uqmerge::uq {

double entropy(const double* p, int64_t k) {
  double h = 0;
  for (int64_t i = 0; i < k; ++i)
    if (p[i] > 0) h -= p[i] * std::log(p[i]);
  return h;
}

SampleUq finalize_sample(const double* p_sum, double h_sum, int64_t k, int64_t j) {
  UQ_CHECK(j > 0, "no perturbations");
  std::vector<double> mean(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) mean[i] = p_sum[i] / static_cast<double>(j);
  SampleUq s;
  s.total = entropy(mean.data(), k);
  s.data = h_sum / static_cast<double>(j);
  s.uq = s.total - s.data;
  return s;
}

Accumulator::Accumulator(int64_t s, int64_t k)
    : samples(s), options(k), p_sum(static_cast<size_t>(s * k), 0.0), h_sum(static_cast<size_t>(s), 0.0),
      count(static_cast<size_t>(s), 0) {}

void Accumulator::add(int64_t i, const double* p) {
  UQ_CHECK(i >= 0 && i < samples, "sample index out of range");
  for (int64_t c = 0; c < options; ++c) {
    if (!std::isfinite(p[c])) throw_bad_input("model output", "non-finite option probability (NaN/inf): the checkpoint's weights are broken");
    p_sum[i * options + c] += p[c];
  }
  h_sum[i] += entropy(p, options);
  ++count[i];
}

MeanStderr mean_stderr(const std::vector<double>& x) {
  MeanStderr m;
  m.n = static_cast<int64_t>(x.size());
  if (x.empty()) return m;
  double s = 0;
  for (double v : x) s += v;
  m.mean = s / m.n;
  if (m.n > 1) {
    double ss = 0;
    for (double v : x) ss += (v - m.mean) * (v - m.mean);
    m.stderr_ = std::sqrt(ss / (m.n - 1)) / std::sqrt(static_cast<double>(m.n));
  }
  return m;
}

DatasetUq finalize_dataset(const Accumulator& acc, int64_t j) {
  DatasetUq d;
  std::vector<double> uq, total, data;
  for (int64_t i = 0; i < acc.samples; ++i) {
    UQ_CHECK(acc.count[i] == j, "sample " + std::to_string(i) + " has " + std::to_string(acc.count[i]) +
                                    " perturbations, expected " + std::to_string(j));
    const SampleUq s = finalize_sample(&acc.p_sum[i * acc.options], acc.h_sum[i], acc.options, j);
    d.samples.push_back(s);
    uq.push_back(s.uq);
    total.push_back(s.total);
    data.push_back(s.data);
  }
  d.uq = mean_stderr(uq);
  d.total = mean_stderr(total);
  d.data = mean_stderr(data);
  return d;
}

OverallUq overall(const std::vector<DatasetUq>& datasets) {
  OverallUq o;
  if (datasets.empty()) return o;
  double sum_means = 0, sum_all = 0;
  int64_t n_all = 0;
  for (const auto& d : datasets) {
    sum_means += d.uq.mean;
    for (const auto& s : d.samples) sum_all += s.uq;
    n_all += static_cast<int64_t>(d.samples.size());
  }
  o.macro = sum_means / static_cast<double>(datasets.size());
  o.micro = n_all ? sum_all / static_cast<double>(n_all) : 0.0;
  return o;
}

}  // namespace uqmerge::uq
