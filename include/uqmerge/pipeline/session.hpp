// uqmerge/pipeline/session.hpp — what every stage of a run (uq, eval, Algorithm 1) starts
// from: the communicator the config asks for, the device this rank computes on, and every
// input opened and validated once before any compute — candidate checkpoints (headers), their
// tokenizers, the datasets, and each candidate's vision-tower hash (which candidates share
// cached vision features). Evaluations then take what they need from here; nothing is
// re-opened or re-hashed per evaluation. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/io/output_lock.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/uq/result.hpp"
#include "uqmerge/uq/vision_cache.hpp"

namespace uqmerge::pipeline {

// The communicator of cfg.backend: MPI_COMM_WORLD for `mpi` (needs an active MpiRuntime);
// `nccl` is bad input naming what is missing (a build with NCCL, a GPU) and the fix.
std::unique_ptr<dist::Communicator> make_communicator(const RunConfig& cfg);

struct Session {
  const RunConfig& cfg;
  dist::Communicator& comm;
  std::string device;                                           // "cpu" or "cuda:N", resolved once
  std::vector<Checkpoint> checkpoints;                          // candidates, in config order
  std::vector<std::shared_ptr<const model::Tokenizer>> tokenizers;  // one per candidate
  std::vector<data::Dataset> datasets;                          // uq.datasets
  std::vector<uint64_t> towers;                                 // vision-tower hash per candidate
  std::shared_ptr<OutputLock> lock;                             // rank 0: output_dir held for the job
};
// Opens and validates every checkpoint, tokenizer and dataset (bad input names the
// candidate), resolves the device for this rank, then locks output_dir (rank 0; a second run
// on it is bad input naming the holder).
Session open_session(const RunConfig& cfg, dist::Communicator& comm);

// Candidate m's uncertainty (opts as given: perturbed for UQ, clean_options for accuracy) on
// `datasets`, split over the session's ranks.
uq::ModelResult evaluate_candidate(const Session& s, size_t m, const std::vector<data::Dataset>& datasets,
                                   const uq::UqOptions& opts, uq::VisionCache& cache);

// Empty when a model of `params` parameters in `dtype` fits the `free_bytes` of `device`
// (of `total_bytes`), else the one-line refusal naming the sizes and the fixes. open_session
// checks every candidate this way before any compute on a CUDA device.
std::string device_fit_error(const std::string& candidate, uint64_t params, DType dtype, const std::string& device,
                             uint64_t free_bytes, uint64_t total_bytes);

// A dataset without any `answer` is bad input (accuracy needs labels).
void require_labelled(const std::vector<data::Dataset>& datasets);
// Accuracy from a clean evaluation: the argmax over each row's own options; rows without
// `answer` are skipped.
struct Accuracy {
  std::vector<double> percent;                 // per dataset
  std::vector<int64_t> correct, labelled;      // per dataset
  std::vector<std::vector<int64_t>> predicted; // per dataset, per row (option index)
  double macro = 0;                            // mean over datasets
};
Accuracy accuracy(const std::vector<data::Dataset>& datasets, const uq::ModelResult& clean);

}  // namespace uqmerge::pipeline
