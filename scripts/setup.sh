#!/usr/bin/env bash
# Installs everything uqmerge needs on Debian 12, idempotently: Debian packages that are
# missing, and a Python virtual environment (torch = the libtorch the build links, plus the
# reference tools) pinned by scripts/requirements.txt. Skips whatever is already present.
#
#   scripts/setup.sh            # everything
#   UQMERGE_VENV=/path ...      # where the venv lives (default ~/.cache/uqmerge/venv)
#
# Callers source scripts/env.sh for the paths it sets.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=env.sh
source "$here/env.sh"

apt_pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libopenmpi-dev openmpi-bin libpmix-dev
  libhdf5-dev
  libopencv-dev
  libboost-serialization-dev
  libgtest-dev libgmock-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libsentencepiece-dev
  slurmctld slurmd slurm-client munge
  clang libclang-rt-14-dev
  python3-venv
)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[setup] Debian packages: all present"
fi

req="$here/requirements.txt"
stamp="$UQMERGE_VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] Python venv $UQMERGE_VENV: up to date"
else
  echo "[setup] Python venv $UQMERGE_VENV: installing $req (torch is large; first time takes minutes)"
  py=$(command -v python3)
  [ -x "$UQMERGE_VENV/bin/python" ] || "$py" -m venv "$UQMERGE_VENV"
  "$UQMERGE_VENV/bin/pip" install -q --upgrade pip
  "$UQMERGE_VENV/bin/pip" install -q -r "$req"
  echo "$want" > "$stamp"
fi
echo "[setup] done"
