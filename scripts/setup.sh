#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: Debian's Fashion-MNIST (where apt exists), a virtual
# environment in .venv with the torch/torchvision pair that installs here, and split-opt itself.
# With --tests it also installs what only the tests need: Debian's postgresql (the multi-worker
# tests start their own server on loopback) and chromium with chromium-driver (the report's
# browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || packages+=(dataset-fashion-mnist)
if [ "${1:-}" = "--tests" ] && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  packages+=(postgresql)
fi
# The report's browser tests drive Debian's headless Chromium through chromedriver (selenium).
if [ "${1:-}" = "--tests" ] && ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  packages+=(chromium chromium-driver)
fi
if [ ${#packages[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}"
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
# pip's status is kept (pipefail); only the noise about this machine's missing local indexes is hidden.
pip_install() { .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
# The pair pinned here is the one that installs from this machine's local wheels and imports.
pip_install torch==2.14.1 torchvision==0.29.1
pip_install -e '.[dev]' 
.venv/bin/python -c "import torch, torchvision, optimizer" || { echo "setup failed: the venv cannot import torch/torchvision/optimizer" >&2; exit 1; }
