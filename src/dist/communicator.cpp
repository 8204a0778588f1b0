// Backend-independent parts of dist (see include/uqmerge/dist/communicator.hpp).
#include <cstdlib>

#include "mpi_util.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::dist {

std::string_view backend_name(Backend b) { return b == Backend::Mpi ? "mpi" : "nccl"; }

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes so CHECK_MPI can say which call failed on which rank.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  log::init(rank, size);
}

MpiRuntime::~MpiRuntime() {
  if (active()) MPI_Finalize();
}

bool MpiRuntime::active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void abort_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (MpiRuntime::active()) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::exit(code);
}

namespace {
std::string nccl_text(int code) {
  // 2.9 and later: major*10000 + minor*100 + patch; before: major*1000 + minor*100 + patch.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code / 100 % 100 : code / 100 % 10;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}
int nccl_major_minor(int code) { return code >= 10000 ? code / 100 : (code / 1000) * 100 + code / 100 % 10; }
std::string cuda_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }
}  // namespace

std::string gpu_version_mismatch(int nccl_built, int nccl_loaded, int cuda_driver, int cuda_runtime) {
  if (nccl_loaded > 0 && nccl_built > 0 && nccl_major_minor(nccl_loaded) < nccl_major_minor(nccl_built))
    return "the loaded libnccl is " + nccl_text(nccl_loaded) + " but uqmerge was built against NCCL " + nccl_text(nccl_built) +
           ": put NCCL >= " + nccl_text(nccl_built) + " first on LD_LIBRARY_PATH (the one uqmerge was built with), or rebuild";
  if (cuda_driver <= 0)
    return "no CUDA driver on this node (cudaDriverGetVersion gave " + std::to_string(cuda_driver) +
           "): run on a GPU node, or use backend: mpi";
  if (cuda_runtime > 0 && cuda_driver / 1000 < cuda_runtime / 1000)
    return "this node's CUDA driver supports CUDA " + cuda_text(cuda_driver) + " but uqmerge's runtime is CUDA " +
           cuda_text(cuda_runtime) + ": update the NVIDIA driver to one for CUDA " + std::to_string(cuda_runtime / 1000) +
           ", or rebuild against CUDA " + std::to_string(cuda_driver / 1000) + ".x";
  return {};
}

Backend resolve_backend(const std::string& wanted, bool device_is_cuda, const std::string& where) {
  if (wanted == "mpi") return Backend::Mpi;
  if (wanted == "auto") return device_is_cuda && built_with_nccl() ? Backend::Nccl : Backend::Mpi;
  if (wanted != "nccl") throw_bad_input(where, "backend: '" + wanted + "' (valid: auto, mpi, nccl)");
  if (!built_with_nccl())
    throw_bad_input(where, "backend: nccl, but this uqmerge was built without NCCL (configure with -DUQMERGE_TORCH_CUDA=ON "
                           "-DUQMERGE_NCCL=ON where CUDA and NCCL are installed), or use backend: auto or mpi");
  if (cuda_device_count() == 0)
    throw_bad_input(where, "backend: nccl, but no GPU is visible to this process (check CUDA_VISIBLE_DEVICES and the "
                           "job's GPU allocation, e.g. sbatch --gpus-per-node), or use backend: auto or mpi");
  if (!device_is_cuda)
    throw_bad_input(where, "backend: nccl reduces device buffers but the engine runs on the CPU (device: cpu, or a build "
                           "whose libtorch is CPU-only: rebuild with -DUQMERGE_TORCH_CUDA=ON); set device: auto or cuda, "
                           "or backend: auto or mpi");
  return Backend::Nccl;
}

#ifndef UQMERGE_HAVE_NCCL
std::unique_ptr<Communicator> make_nccl_communicator() {
  throw_bad_input("backend: nccl", "this uqmerge was built without NCCL (configure with the CUDA toolkit "
                                   "and NCCL present, or use backend: mpi)");
}
bool built_with_nccl() { return false; }
int cuda_device_count() { return 0; }
bool cuda_memory(int, size_t&, size_t&) { return false; }
#endif

}  // namespace uqmerge::dist
