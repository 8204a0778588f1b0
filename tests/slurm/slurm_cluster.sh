#!/usr/bin/env bash
# A private single-node Slurm for the end-to-end tests, built from Debian's packages (munge,
# slurmctld, slurmd, slurm-client; Slurm 22.05 on Debian 12). Everything lives in one directory:
# its own munge key and socket, slurm.conf, state, spool and logs; nothing under /etc or /run is
# touched and no systemd is needed. The daemons run in the foreground as children of the
# calling shell, so their PIDs are known and they are stopped by PID.
#
# As a command:
#   slurm_cluster.sh start DIR     start munged, slurmctld, slurmd in DIR (must not exist or be
#                                  empty); returns when the node is idle; prints the exports
#   slurm_cluster.sh stop DIR      cancel every job, stop the daemons started by `start DIR`
#   slurm_cluster.sh env DIR       prints `export SLURM_CONF=...` for the client commands
# As a library (tests): `source slurm_cluster.sh`, then
#   slurm_cluster_start DIR [2]    as above, and exports SLURM_CONF in the calling shell; with 2,
#                                  two nodes, nodea and nodeb, each a slurmd in a network namespace
#                                  of its own (a veth pair to a bridge the harness creates, its own
#                                  address, hostname and TmpFS), so that MPI between them goes over
#                                  TCP as between real hosts (needs root: CAP_NET_ADMIN, mounts)
#   slurm_cluster_netns_ok         0 when network namespaces can be made here (else skip 2-node tests)
#   slurm_cluster_node_lost DIR NODE   the node fails: its link is cut and every process in its
#                                  namespace (slurmd, slurmstepd, ranks) is killed
#   slurm_cluster_node_back DIR NODE   the node's link is up again and its slurmd restarted
#   slurm_cluster_stop DIR         as above (safe to call twice; use it in an EXIT trap)
#   slurm_cluster_have_binaries    0 when every Slurm/munge binary needed is installed
#   slurm_job_field, slurm_job_completion, slurm_job_wait_done   a job's state, record, end
#   require_slurm, start_work_cluster, job_final, show_job_log, cpu_job
#                                  for tests/slurm/test_*.sh (which count their checks with
#                                  tests/lib/testlib.sh): skip without Slurm (exit 77), $work with
#                                  a cluster stopped on every exit, a job's final state and log
#
# Daemons run as root when the caller is root (containers, CI): SlurmUser=SlurmdUser=root.
# The daemons carry UQMERGE_SLURM_DIR=DIR in their environment, the jobs' processes
# SLURM_CONF=DIR/etc/slurm.conf and a SLURM_JOB_ID, slurmstepd keeps DIR/log/slurmd.log open;
# after the daemons are stopped, `stop` kills whatever of these is still alive, so that an
# interrupted test leaves nothing behind. (A test killed with SIGKILL cannot clean up: stop DIR by hand.)

# Binaries the harness needs; the tests skip when one is missing.
SLURM_CLUSTER_BINARIES="munged slurmctld slurmd sbatch srun squeue sinfo scontrol scancel sacct"

slurm_cluster_have_binaries() {
  local b
  for b in $SLURM_CLUSTER_BINARIES; do
    command -v "$b" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null 2>&1 || return 1
  done
}

_sc_log() { echo "[slurm_cluster $(date +%H:%M:%S)] $*" >&2; }

# A TCP port on 127.0.0.1 nobody listens on, from a range away from the usual services and
# from the Linux ephemeral range (32768-60999). Two tests never run at once (ctest
# RESOURCE_LOCK slurm), but another Slurm or a previous run's leftovers might.
_sc_free_port() {
  local p tries=0
  while [ "$tries" -lt 200 ]; do
    p=$((20000 + RANDOM % 10000))
    tries=$((tries + 1))
    # Bash's /dev/tcp connects: success means something listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  _sc_log "no free port found"
  return 1
}

# Waits up to $1 seconds for the command in the remaining arguments to succeed.
_sc_wait_for() {
  local limit=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - start)) -ge "$limit" ]; then return 1; fi
    sleep 0.5
  done
}

_sc_write_conf() {  # DIR CTLD_PORT [NET]  (NET: two nodes, addresses NET.1 = controller, NET.2, NET.3)
  local dir=$1 port=$2 net=${3:-} cpus mem user ctld nodes slurmd_files
  user=$(id -un)
  # CPUs and memory of this machine, as slurmd itself sees them. At least 2 CPUs so that a
  # 2-task job fits; config_overrides below makes slurmd accept the configured figures.
  cpus=$(slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1) || true
  mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1) || true
  [ -n "$cpus" ] || cpus=$(nproc)
  [ -n "$mem" ] || mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
  [ "$cpus" -ge 2 ] || cpus=2
  mem=$((mem * 9 / 10))
  ctld=localhost
  slurmd_files="SlurmdSpoolDir=$dir/spool
SlurmdPidFile=$dir/run/slurmd.pid
SlurmdLogFile=$dir/log/slurmd.log"
  nodes="NodeName=uqnode NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=uqnode Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  if [ -n "$net" ]; then  # each node claims the machine's CPUs: 2 x 2 ranks on 2 cores, oversubscribed on purpose
    ctld="$(hostname -s)($net.1)"
    slurmd_files="SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmdLogFile=$dir/log/slurmd-%n.log"
    nodes="NodeName=nodea NodeAddr=$net.2 NodeHostname=nodea CPUs=$cpus RealMemory=$((mem / 2)) State=UNKNOWN
NodeName=nodeb NodeAddr=$net.3 NodeHostname=nodeb CPUs=$cpus RealMemory=$((mem / 2)) State=UNKNOWN
PartitionName=debug Nodes=nodea,nodeb Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  fi
  : >"$dir/etc/plugstack.conf"  # no SPANK plugins (the system's plugstack.conf is not read)
  cat >"$dir/etc/slurm.conf" <<EOF
# Written by tests/slurm/slurm_cluster.sh for a private test cluster in $dir.
ClusterName=uqtest
SlurmctldHost=$ctld
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# Our own munged; a short credential lifetime, because it is also how long a requeued job
# waits before it may start again (default 120 s).
AuthInfo=socket=$dir/run/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmctldLogFile=$dir/log/slurmctld.log
$slurmd_files
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/etc/plugstack.conf
TmpFS=$dir/tmp
# No cgroups, no systemd: processes tracked by parent PID, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=pmix
# No slurmdbd: completed jobs go to a text file that \`sacct --completion\` reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
# Pending jobs (a requeued one waiting for its begin time) are looked at every second.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Finished jobs stay visible to scontrol for a minute; kills escalate to SIGKILL after 5 s.
MinJobAge=60
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
ReturnToService=2
SlurmdParameters=config_overrides
JobRequeue=1
MailProg=/bin/true
$nodes
EOF
}

# ---- two nodes in network namespaces ---------------------------------------------------------

slurm_cluster_netns_ok() {
  local probe=uqprobe$$
  command -v ip >/dev/null && command -v nsenter >/dev/null && command -v unshare >/dev/null || return 1
  ip netns add "$probe" >/dev/null 2>&1 || return 1
  ip netns del "$probe" >/dev/null 2>&1
}

# DIR's network, from the number kept in DIR/run/netns: bridge, namespaces (host-side veths
# are NAMESPACE-h; names <= 15 characters) and the /24 prefix.
_sc_net() {  # DIR -> sets _br _ns_a _ns_b _net
  local id
  id=$(cat "$1/run/netns")
  _br=uqbr$id _ns_a=uq${id}a _ns_b=uq${id}b _net=10.$((77 + id / 250)).$((id % 250))
}

_sc_ns_of() {  # NODE -> its namespace (after _sc_net)
  if [ "$1" = nodeb ]; then echo "$_ns_b"; else echo "$_ns_a"; fi
}

_sc_net_up() {  # DIR
  local dir=$1 id n addr
  for _ in $(seq 1 50); do  # a number no other cluster on this machine uses
    id=$((RANDOM % 1000))
    ip link show "uqbr$id" >/dev/null 2>&1 || break
  done
  echo "$id" >"$dir/run/netns"
  _sc_net "$dir"
  { ip link add "$_br" type bridge && ip addr add "$_net.1/24" dev "$_br" && ip link set "$_br" up; } || return 1
  addr=2
  for n in "$_ns_a" "$_ns_b"; do
    { ip netns add "$n" && ip link add "$n-h" type veth peer name eth0 netns "$n" &&
      ip link set "$n-h" master "$_br" up && ip netns exec "$n" ip link set lo up &&
      ip netns exec "$n" ip addr add "$_net.$addr/24" dev eth0 && ip netns exec "$n" ip link set eth0 up; } || return 1
    addr=$((addr + 1))
  done
}

_sc_net_down() {  # DIR
  [ -f "$1/run/netns" ] || return 0
  _sc_net "$1"
  ip netns del "$_ns_a" 2>/dev/null || true
  ip netns del "$_ns_b" 2>/dev/null || true
  ip link del "$_br" 2>/dev/null || true
  rm -f "$1/run/netns"
}

# slurmd of NODE (nodea | nodeb) in its namespace, with its own hostname (UTS namespace) and
# its own TmpFS (a private mount namespace binds DIR/tmp-NODE over DIR/tmp: PMIx keeps per-step
# directories there, which two nodes must not share). nsenter, not `ip netns exec`: the latter
# remounts /sys, which hides the cgroup filesystem slurmd reads.
_sc_start_slurmd_ns() {  # DIR NODE
  local dir=$1 node=$2
  _sc_net "$dir"
  mkdir -p "$dir/tmp-$node"
  UQMERGE_SLURM_DIR=$dir nsenter --net="/run/netns/$(_sc_ns_of "$node")" unshare -u -m --propagation private     sh -c "hostname $node && mount --bind '$dir/tmp-$node' '$dir/tmp' && exec slurmd -D -N $node -f '$SLURM_CONF'"     >>"$dir/log/slurmd-$node.out" 2>&1 &
  echo $! >"$dir/run/slurmd-$node.started"
}

_sc_nodes_idle() { [ "$(sinfo -h -N -o '%t' 2>/dev/null | sort -u)" = "idle" ]; }

slurm_cluster_node_lost() {  # DIR NODE
  local dir=$1 node=$2 ns pids
  _sc_net "$dir"
  ns=$(_sc_ns_of "$node")
  ip netns exec "$ns" ip link set eth0 down
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  _sc_log "node $node lost (link down; killed:${pids:- nothing})"
}

slurm_cluster_node_back() {  # DIR NODE
  local dir=$1 node=$2
  _sc_net "$dir"
  ip netns exec "$(_sc_ns_of "$node")" ip link set eth0 up
  rm -rf "${dir:?}/tmp-$node"
  _sc_start_slurmd_ns "$dir" "$node"
  scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
  _sc_wait_for 90 _sc_nodes_idle || { _sc_log "node $node did not come back:"; sinfo -N -l >&2; return 1; }
  _sc_log "node $node back"
}

slurm_cluster_start() {  # DIR [NODES]
  local dir=$1 nodes=${2:-1} port key node
  if ! slurm_cluster_have_binaries; then
    _sc_log "missing one of: $SLURM_CLUSTER_BINARIES"
    return 1
  fi
  PATH="$PATH:/usr/sbin:/sbin"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -n "$(ls -A "$dir")" ]; then
    _sc_log "$dir is not empty"
    return 1
  fi
  # Every directory Slurm and munge expect must exist before the daemons start.
  mkdir -p "$dir"/{etc,run,log,state,spool,tmp}
  chmod 0700 "$dir" "$dir/etc" "$dir/run"

  # munge: a fresh key for this cluster only.
  key=$dir/etc/munge.key
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$key" --bits=1024 2>/dev/null || dd if=/dev/urandom of="$key" bs=128 count=1 status=none
  else
    dd if=/dev/urandom of="$key" bs=128 count=1 status=none
  fi
  chmod 0400 "$key"
  UQMERGE_SLURM_DIR=$dir munged --foreground --force --key-file="$key" --socket="$dir/run/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/run/munged.seed" \
    >>"$dir/log/munged.out" 2>&1 &
  echo $! >"$dir/run/munged.started"
  if ! _sc_wait_for 20 test -S "$dir/run/munge.socket"; then
    _sc_log "munged did not start:"; tail -5 "$dir/log/munged.log" "$dir/log/munged.out" >&2
    return 1
  fi

  port=$(_sc_free_port) || return 1
  if [ "$nodes" = 2 ]; then
    _sc_net_up "$dir" || { _sc_log "could not make the network namespaces"; _sc_net_down "$dir"; return 1; }
    _sc_write_conf "$dir" "$port" "$_net"
  else
    _sc_write_conf "$dir" "$port"
  fi
  export SLURM_CONF=$dir/etc/slurm.conf
  # -D: foreground (our child, PID known); -i: ignore state from an earlier run (there is none).
  UQMERGE_SLURM_DIR=$dir slurmctld -D -i -f "$SLURM_CONF" >>"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/run/slurmctld.started"
  if ! _sc_wait_for 30 scontrol ping; then
    _sc_log "slurmctld does not answer:"; tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmctld.out" >&2
    return 1
  fi
  if [ "$nodes" = 2 ]; then
    for node in nodea nodeb; do _sc_start_slurmd_ns "$dir" "$node"; done
  else
    UQMERGE_SLURM_DIR=$dir slurmd -D -N uqnode -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/run/slurmd.started"
  fi
  # idle (not idle* / down / drain): every slurmd registered and the nodes take jobs.
  if ! _sc_wait_for 60 _sc_nodes_idle; then
    _sc_log "the nodes did not become idle:"; sinfo -N -l >&2 || true
    tail -20 "$dir"/log/slurmd*.log "$dir"/log/slurmd*.out "$dir/log/slurmctld.log" >&2
    return 1
  fi
  _sc_log "cluster up in $dir (slurmctld port $port): $(sinfo -h -N -o '%N %t CPUs=%c Mem=%m')"
}


# Stops the process whose PID is in FILE (when it is still the one we started), TERM then KILL.
_sc_stop_pid() {  # DIR FILE NAME
  local dir=$1 file=$2 name=$3 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null && _sc_ours "$dir" "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      _sc_log "$name ($pid) ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Reap it when it is our child (no zombie left behind).
  wait "$pid" 2>/dev/null || true
  rm -f "$file"
}

# True when process PID belongs to the cluster in DIR: a daemon (the marker), a slurmstepd
# (it starts with an empty environment, but keeps slurmd's log in DIR open), or a job's process
# (this cluster's SLURM_CONF and a job ID).
_sc_ours() {  # DIR PID
  local env fd
  env=$({ tr '\0' '\n' <"/proc/$2/environ"; } 2>/dev/null) || return 1
  grep -qxF "UQMERGE_SLURM_DIR=$1" <<<"$env" && return 0
  grep -qxF "SLURM_CONF=$1/etc/slurm.conf" <<<"$env" && grep -q "^SLURM_JOB_ID=" <<<"$env" && return 0
  for fd in /proc/"$2"/fd/*; do
    case "$(readlink "$fd" 2>/dev/null)" in "$1"/*) return 0 ;; esac
  done
  return 1
}

# " PID PPID GRANDPARENT ... 1 ": this process and its ancestors, never to be killed.
_sc_ancestors() {
  local pid=$BASHPID out=" "
  while [ -n "$pid" ] && [ "$pid" -gt 0 ]; do
    out="$out$pid "
    pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
  done
  echo "$out"
}

slurm_cluster_stop() {  # DIR
  local dir=$1 pid self leftovers
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  export SLURM_CONF=$dir/etc/slurm.conf
  PATH="$PATH:/usr/sbin:/sbin"
  # Jobs first, while slurmd still runs to deliver the signals.
  if [ -f "$dir/run/slurmctld.started" ] && scontrol ping >/dev/null 2>&1; then
    # shellcheck disable=SC2046  # one argument per job ID
    scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
    _sc_wait_for 20 test -z "$(squeue -h -o %i 2>/dev/null)" || _sc_log "jobs still listed: $(squeue -h 2>/dev/null | tr '\n' ';')"
  fi
  _sc_stop_pid "$dir" "$dir/run/slurmd.started" slurmd
  _sc_stop_pid "$dir" "$dir/run/slurmd-nodea.started" slurmd
  _sc_stop_pid "$dir" "$dir/run/slurmd-nodeb.started" slurmd
  _sc_stop_pid "$dir" "$dir/run/slurmctld.started" slurmctld
  _sc_stop_pid "$dir" "$dir/run/munged.started" munged
  # Anything else of this cluster still alive (slurmstepd, a job's processes), by PID; never
  # this shell or its parents.
  self=$(_sc_ancestors)
  leftovers=""
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    case "$self" in *" $pid "*) continue ;; esac
    if _sc_ours "$dir" "$pid"; then
      leftovers="$leftovers $pid"
    fi
  done
  if [ -n "$leftovers" ]; then
    _sc_log "killing leftover processes:$leftovers ($(for p in $leftovers; do { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-40; echo -n '; '; done))"
    # shellcheck disable=SC2086
    kill -KILL $leftovers 2>/dev/null || true
  fi
  _sc_net_down "$dir"
  _sc_log "cluster in $dir stopped"
}

# ---- helpers for tests ---------------------------------------------------------------------

# One field of `scontrol show job` (JobState, Restarts, ExitCode, Reason, ...); empty when the
# controller no longer knows the job (MinJobAge after its end) or does not answer.
slurm_job_field() {  # JOBID FIELD
  { scontrol show job -o "$1" 2>/dev/null || true; } | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# The job's final accounting record as "STATE EXITCODE" from the job completion log
# (sacct --completion: this cluster has no slurmdbd); empty when there is none yet.
slurm_job_completion() {  # JOBID
  { sacct --completion -n -P -j "$1" -o State,ExitCode 2>/dev/null || true; } | tail -1 | tr '|' ' '
}

# Waits until squeue no longer lists the job (pending, running, completing or requeued);
# returns 1 after TIMEOUT seconds.
slurm_job_wait_done() {  # JOBID TIMEOUT
  local jid=$1 limit=$2 start=$SECONDS
  while [ -n "$({ squeue -h -j "$jid" -o %i 2>/dev/null || true; })" ]; do
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      _sc_log "job $jid still listed after ${limit}s: $(squeue -h -j "$jid" -o '%T %r' 2>/dev/null)"
      return 1
    fi
    sleep 0.5
  done
}

# ---- helpers for the test scripts (tests/slurm/test_*.sh; checks: tests/lib/testlib.sh) --------

# Skips the test (ctest SKIP_RETURN_CODE 77) when the Slurm/munge binaries are missing.
require_slurm() {
  if ! slurm_cluster_have_binaries; then
    echo "SKIP: Slurm/munge binaries missing (need: $SLURM_CLUSTER_BINARIES)"
    exit 77
  fi
}

# Makes $work (kept on failure or with UQMERGE_KEEP_TMP=1) and starts the cluster in
# $work/cluster; both are cleaned up when the script exits, however it exits.
start_work_cluster() {  # NAME [NODES]
  work=$(mktemp -d "${TMPDIR:-/tmp}/uqmerge-$1.XXXXXX")
  trap _finish_work EXIT
  trap 'exit 1' INT TERM HUP  # ctest's timeout or Ctrl-C: still stop the cluster
  local t0=$SECONDS
  slurm_cluster_start "$work/cluster" "${2:-1}"
  echo "cluster up in $((SECONDS - t0)) s"
}
_finish_work() {
  local rc=$?
  trap - EXIT
  [ "$rc" -ne 77 ] || rc=1  # 77 means "skipped", and only require_slurm may say that
  slurm_cluster_stop "$work/cluster" || true
  if [ "$rc" -ne 0 ] || [ "${fail:-0}" -ne 0 ] || [ "${UQMERGE_KEEP_TMP:-0}" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

# "STATE EXITCODE RESTARTS" of a job: from the controller while it remembers the job, else from
# the job completion log (restarts unknown there: "?").
job_final() {  # JOBID
  local state code restarts
  state=$(slurm_job_field "$1" JobState)
  code=$(slurm_job_field "$1" ExitCode)
  restarts=$(slurm_job_field "$1" Restarts)
  if [ -z "$state" ]; then
    read -r state code <<<"$(slurm_job_completion "$1")"
    restarts="?"
  fi
  echo "${state:-?} ${code:-?} ${restarts:-?}"
}

# Prints a job's log and the daemons' error lines (after a failed check).
show_job_log() {  # FILE
  echo "---- $1"
  cat "$1" 2>/dev/null || echo "(no log)"
  echo "---- errors in the cluster's logs"
  grep -h -i error "$work"/cluster/log/slurm*.log 2>/dev/null \
    | grep -v -e "state file" -e "backup state save file" | tail -20 || true
  echo "----"
}

# The options that fit the script's GPU-node defaults onto this test node: 2 CPUs, no GPU.
# shellcheck disable=SC2034  # used by the test scripts
cpu_job=(-N 1 -n 2 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-task=0)

# Command-line use.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}:${2:-}" in
    start:?*)
      slurm_cluster_start "$2"
      echo "export SLURM_CONF=$(cd "$2" && pwd)/etc/slurm.conf"
      # The daemons are our children: detach them from this shell so they outlive it.
      disown -a
      ;;
    stop:?*) slurm_cluster_stop "$2" ;;
    env:?*) echo "export SLURM_CONF=$(cd "$2" && pwd)/etc/slurm.conf" ;;
    *)
      echo "usage: $0 start|stop|env DIR" >&2
      exit 2
      ;;
  esac
fi
