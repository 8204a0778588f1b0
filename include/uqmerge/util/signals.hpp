// uqmerge/util/signals.hpp — graceful stop for preemptible batch jobs (DESIGN §6, jobs/): SIGTERM
// and SIGUSR1 set a flag that long-running commands poll at safe points (after each model
// evaluation), where they save their resume state and exit with kExitStopped. A second
// SIGTERM/SIGINT falls back to the default action (immediate termination).
#pragma once

namespace uqmerge::signals {

void install_stop_handlers();
bool stop_requested();
int stop_signal();  // the signal that asked to stop, 0 if none
void request_stop_for_testing(int sig);

}  // namespace uqmerge::signals
