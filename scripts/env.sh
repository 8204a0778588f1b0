# Sourced by scripts/*.sh and .ci/run: where the Python venv lives and how the build finds
# libtorch. Safe to source twice.
export UQMERGE_VENV="${UQMERGE_VENV:-$HOME/.cache/uqmerge/venv}"
export UQMERGE_BUILD="${UQMERGE_BUILD:-build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/uqmerge/ccache}"
# mpirun as root (containers, CI) needs both variables.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
