# Imports the libtorch bundled with pip's torch (prefix asked from ${UQMERGE_PYTHON} by
# Dependencies.cmake) and wraps it as uqmerge::torch. Only libraries whose translation units
# include torch link it (src/CMakeLists.txt); headers under include/ never include torch.
list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
# pip's torch is a CUDA build: its CMake config wants the toolkit (present on this machine kind).
# Nothing of ours is compiled by nvcc through it, so silence its architecture probing.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()
find_package(Torch REQUIRED)
# By default link the CPU libraries only (libtorch_cpu, libc10). libtorch_cuda would load gigabytes of
# CUDA libraries into every process, including CPU-only runs, and it needs the newer NCCL
# of pip's nvidia-nccl package, which clashes with the toolkit's libnccl.so.2 that
# dist/nccl_communicator links (docs/decisions.md, "libtorch and NCCL").
get_filename_component(_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
find_library(UQMERGE_TORCH_CPU_LIBRARY torch_cpu PATHS "${_torch_lib_dir}" NO_DEFAULT_PATH REQUIRED)
find_library(UQMERGE_C10_LIBRARY c10 PATHS "${_torch_lib_dir}" NO_DEFAULT_PATH REQUIRED)
add_library(uqmerge_torch_deps INTERFACE)
target_link_libraries(uqmerge_torch_deps INTERFACE ${UQMERGE_TORCH_CPU_LIBRARY} ${UQMERGE_C10_LIBRARY})
target_link_options(uqmerge_torch_deps INTERFACE "LINKER:-rpath,${_torch_lib_dir}")
target_compile_options(uqmerge_torch_deps INTERFACE ${TORCH_CXX_FLAGS})
target_include_directories(uqmerge_torch_deps SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
if(UQMERGE_TORCH_CUDA)
  # The GPU build (scripts/gpu-check.sh): libtorch_cuda registers the CUDA backend when loaded,
  # so it is linked with --no-as-needed although no symbol of it is referenced directly.
  find_library(UQMERGE_TORCH_CUDA_LIBRARY torch_cuda PATHS "${_torch_lib_dir}" NO_DEFAULT_PATH REQUIRED)
  find_library(UQMERGE_C10_CUDA_LIBRARY c10_cuda PATHS "${_torch_lib_dir}" NO_DEFAULT_PATH REQUIRED)
  target_link_libraries(uqmerge_torch_deps INTERFACE "-Wl,--no-as-needed" ${UQMERGE_TORCH_CUDA_LIBRARY}
                        ${UQMERGE_C10_CUDA_LIBRARY} "-Wl,--as-needed")
endif()
add_library(uqmerge::torch ALIAS uqmerge_torch_deps)
