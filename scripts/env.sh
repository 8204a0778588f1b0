# Sourced by scripts/*.sh and .ci/run: where the Python venv lives and how the build finds
# libtorch. Safe to source twice.
export UQMERGE_VENV="${UQMERGE_VENV:-$HOME/.cache/uqmerge/venv}"
export UQMERGE_BUILD="${UQMERGE_BUILD:-build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/uqmerge/ccache}"
# Hits across clones in other folders (CI) and with the precompiled torch header.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# mpirun as root (containers, CI) needs both variables.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
