# Test registration helpers.
include(GoogleTest)

# uqmerge_add_mpi_test(TARGET NP n1 n2 ...): registers the gtest binary TARGET once per process
# count as TARGET_np<n> under mpirun (as Cabana's test harness does).
function(uqmerge_add_mpi_test target)
  cmake_parse_arguments(ARG "" "" "NP" ${ARGN})
  foreach(np IN LISTS ARG_NP)
    set(extra "")
    if(np GREATER 2)
      set(extra --oversubscribe)
    endif()
    add_test(NAME ${target}_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${extra} ${UQMERGE_MPIEXEC_FLAGS}
                     $<TARGET_FILE:${target}>)
    set_tests_properties(${target}_np${np} PROPERTIES
      TIMEOUT 300 PROCESSORS ${np} LABELS mpi
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endforeach()
endfunction()
