// Stop flag set from signal handlers (see include/uqmerge/util/signals.hpp).
#include "uqmerge/util/signals.hpp"

#include <csignal>
#include <initializer_list>

namespace uqmerge::signals {

namespace {
volatile std::sig_atomic_t g_signal = 0;

// Repeated signals only set the flag again: Slurm may deliver SIGTERM to a rank more than once
// within its KillWait, and dying before the safe point would lose the evaluation in flight.
extern "C" void on_stop_signal(int sig) { g_signal = sig; }
}  // namespace

void install_stop_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // keep blocking calls (MPI progress, reads) going; we poll the flag
  for (int s : {SIGTERM, SIGUSR1}) sigaction(s, &sa, nullptr);
}

bool stop_requested() { return g_signal != 0; }
int stop_signal() { return g_signal; }
void request_stop_for_testing(int sig) { g_signal = sig; }

}  // namespace uqmerge::signals
