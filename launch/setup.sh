#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a working Loom build: Debian packages (Bazel 4.2.3, Open MPI,
# Abseil, protobuf, GoogleTest, Google Benchmark) and the pinned Python packages (the `torch`
# wheel whose LibTorch Loom links, plus the test clients). Idempotent; when everything is present
# it only checks, in about a second. The CUDA toolkit is not installed here: Loom's CUDA build
# uses the one at $CUDA_HOME (default /usr/local/cuda) when it exists.
#
#   launch/setup.sh            # install what is missing
#   launch/setup.sh --check    # exit 1 if anything is missing, install nothing
set -euo pipefail

APT_PACKAGES=(
  bazel-bootstrap g++ git pkg-config
  openmpi-bin libopenmpi-dev
  libabsl-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  slurm-wlm munge
  libpng-dev zlib1g-dev dataset-fashion-mnist
  iproute2
)
# Pinned: LibTorch comes from this wheel (CUDA 13 build; its CPU path is what tests run).
PY_PACKAGES=(
  "torch==2.15.0"
  "safetensors==0.8.0"
  "numpy==2.4.6"
  "tensorboard==2.21.0"
  "matplotlib==3.11.2"
)

log() { printf 'setup: %s\n' "$*" >&2; }

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing_apt+=("$p")
  fi
done

PYTHON="${PYTHON:-python3}"
py_missing() {
  "$PYTHON" - "$@" <<'PY'
import sys
from importlib import metadata
missing = []
for spec in sys.argv[1:]:
    name, _, version = spec.partition("==")
    try:
        if metadata.version(name) != version:
            missing.append(spec)
    except metadata.PackageNotFoundError:
        missing.append(spec)
print(" ".join(missing))
PY
}

if ((${#missing_apt[@]})); then
  if ((check_only)); then log "missing Debian packages: ${missing_apt[*]}"; exit 1; fi
  log "installing Debian packages: ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  # Debian's python3 may be missing on minimal images.
fi
if ! command -v "$PYTHON" >/dev/null; then
  if ((check_only)); then log "missing $PYTHON"; exit 1; fi
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get install -y -qq python3 python3-pip python3-venv >/dev/null
fi

read -r -a missing_py <<<"$(py_missing "${PY_PACKAGES[@]}")"
if ((${#missing_py[@]})); then
  if ((check_only)); then log "missing Python packages: ${missing_py[*]}"; exit 1; fi
  log "installing Python packages: ${missing_py[*]} (torch is ~3 GB with its CUDA libraries)"
  extra=()
  # Debian's own python3 is "externally managed" (PEP 668); a pyenv/venv python is not.
  if "$PYTHON" -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    extra+=(--break-system-packages)
  fi
  "$PYTHON" -m pip install -q "${extra[@]}" "${missing_py[@]}"
fi

cuda_home="${CUDA_HOME:-/usr/local/cuda}"
if [[ ! -x "$cuda_home/bin/nvcc" ]]; then
  log "note: no CUDA toolkit at $cuda_home; the CPU build works, --config=cuda will not"
fi
log "ok: Bazel $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null), torch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null), $(mpirun --version 2>/dev/null | head -1)"
