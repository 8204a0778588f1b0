// uqmerge/util/signals.hpp — graceful stop for preemptible batch jobs (DESIGN §6, jobs/): SIGTERM
// and SIGUSR1 set a flag that long-running commands poll at safe points (after each model
// evaluation), where they save their resume state and exit with kExitStopped. SIGINT keeps
// its default (an interactive Ctrl-C stops at once; the state of finished evaluations stays).
#pragma once

namespace uqmerge::signals {

void install_stop_handlers();
bool stop_requested();
int stop_signal();  // the signal that asked to stop, 0 if none
void request_stop_for_testing(int sig);

}  // namespace uqmerge::signals
