#!/usr/bin/env bash
# DataParallel against a one-process reference, alone and as 2 and 4 real MPI ranks.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
BIN="$RUNFILES/parallel/data_parallel_test"
"$BIN"
for np in 2 4; do
  echo "== $np ranks"
  loom_mpirun -np "$np" "$BIN" --gtest_brief=1
done
