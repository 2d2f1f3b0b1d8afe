# Sourced by the multi-rank tests: `loom_mpirun -np N cmd...` starts real Open MPI ranks on this
# machine, oversubscribed (more ranks than cores), unbound, one OpenMP thread each. Bazel's
# per-test files (premature-exit marker, XML report) are hidden from the ranks: N gtest processes
# would race on them.
unset TEST_PREMATURE_EXIT_FILE XML_OUTPUT_FILE
# LOOM_MPIRUN_OMP_THREADS (default 1) is the ranks' OMP_NUM_THREADS; empty leaves it unset.
loom_mpirun() {
  local root_flags=() omp=(-x "OMP_NUM_THREADS=${LOOM_MPIRUN_OMP_THREADS-1}")
  [[ "$(id -u)" == 0 ]] && root_flags=(--allow-run-as-root)
  [[ -z "${LOOM_MPIRUN_OMP_THREADS-1}" ]] && omp=()
  OMPI_MCA_btl=self,vader OMPI_MCA_plm_rsh_agent=false timeout 600 \
    env -u OMP_NUM_THREADS mpirun "${root_flags[@]}" --oversubscribe --bind-to none "${omp[@]}" \
      -x LOOM_TEST_MPI=1 "$@"
}
