// uqmerge/pipeline/driver.hpp — the three jobs a config describes, each on every rank of the
// session's communicator (rank 0 writes results and prints the tables):
//   run_uq      every candidate's uncertainty on uq.datasets -> results.h5 (DESIGN §4.1-4.2)
//   run_eval    every candidate's accuracy on labelled data -> eval.h5
//   run_algorithm  Algorithm 1 (DESIGN §4.3): u_i for each candidate; order (descending by
//               default); for t = 2..N the merge of the first t, sharded over ranks and
//               gathered in memory (merge/engine.hpp; linear steps add only the new member to
//               a running sum), u*_t of it; global_min and early_stop selections (both
//               recorded); baselines and accuracy when configured; the chosen merge written
//               to OUTPUT_DIR/merged by all ranks, results.h5 by rank 0.
// Every evaluation of run_algorithm is memoised under a key in the resume state
// (pipeline/state.hpp), saved after each one; SIGTERM/SIGUSR1 stop at the next evaluation
// boundary and the job returns kExitStopped. Torch-free.
#pragma once

#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/pipeline/session.hpp"

namespace uqmerge::pipeline {

int run_uq(Session& s);
int run_eval(Session& s);

struct RunOptions {
  bool overwrite = false;       // replace OUTPUT_DIR/merged from an earlier run
  bool save_all_steps = false;  // also write every step's merge to OUTPUT_DIR/steps/step_NNN
  bool restart = false;         // ignore (and delete) the resume state
};
// Returns the exit code (kExitOk, kExitStopped).
int run_algorithm(Session& s, const RunOptions& opts);

}  // namespace uqmerge::pipeline
