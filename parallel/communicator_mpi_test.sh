#!/usr/bin/env bash
# The communicator tests alone (local backend), then as 2 and 3 real MPI ranks.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
BIN="$RUNFILES/parallel/communicator_test"
"$BIN"
for np in 2 3; do
  echo "== $np ranks"
  loom_mpirun -np "$np" "$BIN" --gtest_brief=1
done
