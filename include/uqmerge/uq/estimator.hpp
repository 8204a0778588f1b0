// uqmerge/uq/estimator.hpp — the label-free uncertainty of the paper (eq. 1) and its
// aggregation (DESIGN §4.1–4.2). Torch-free, double precision.
//
// For one sample with J perturbations giving option distributions p_1..p_J over K options:
//   total = H(mean_j p_j)          (entropy of the mean prediction, natural log)
//   data  = mean_j H(p_j)          (expected entropy)
//   uq    = total - data           (mutual information; >= 0 up to rounding)
// Distributed form: ranks accumulate sum_j p_j (K values) and sum_j H(p_j) (1 value) per
// sample for the perturbations they evaluated; after one allreduce the finaliser divides by J.
#pragma once

#include <cstdint>
#include <vector>

namespace uqmerge::uq {

double entropy(const double* p, int64_t k);  // -sum p log p, 0 log 0 = 0

struct SampleUq {
  double total = 0, data = 0, uq = 0;
};
// p_sum: sum over the J perturbations of the K-option distributions; h_sum: sum of their entropies.
SampleUq finalize_sample(const double* p_sum, double h_sum, int64_t k, int64_t j);

// Per-sample accumulators of one model on one dataset: S samples, K options.
struct Accumulator {
  int64_t samples = 0, options = 0;
  std::vector<double> p_sum;  // [S, K]
  std::vector<double> h_sum;  // [S]
  std::vector<int32_t> count; // [S] perturbations seen (must equal J everywhere at the end)
  Accumulator(int64_t s, int64_t k);
  // Adds one perturbation's distribution (already softmaxed, sums to 1) for sample i.
  void add(int64_t i, const double* p);
};

struct MeanStderr {
  double mean = 0, stderr_ = 0;
  int64_t n = 0;
};
MeanStderr mean_stderr(const std::vector<double>& x);  // stderr = sample sd / sqrt(n), 0 when n < 2

struct DatasetUq {
  std::vector<SampleUq> samples;
  MeanStderr uq, total, data;
};
DatasetUq finalize_dataset(const Accumulator& acc, int64_t j);

// Overall: macro = mean of dataset means (the paper's "Average"); micro = mean over all samples.
struct OverallUq {
  double macro = 0, micro = 0;
};
OverallUq overall(const std::vector<DatasetUq>& datasets);

}  // namespace uqmerge::uq
