#!/usr/bin/env bash
# Runs a gtest binary alone, then as each given number of real MPI ranks:
#   mpi_gtest.sh RUNFILES_RELATIVE_BINARY NP [NP...]
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
BIN="$RUNFILES/$1"
shift
"$BIN"
for np in "$@"; do
  echo "== $np ranks"
  loom_mpirun -np "$np" "$BIN" --gtest_brief=1
done
