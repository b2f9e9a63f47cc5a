#!/usr/bin/env bash
# A new user's install: split-opt without any extra (no dev tools, no SciPy, no scikit-learn, no
# PostgreSQL driver) in a fresh virtual environment, then `split-opt --help` and a tiny search on
# Debian's Fashion-MNIST with the bundled zoo. A run-time import of an undeclared package fails here.
# Usage: bash scripts/check_plain_install.sh [VENV_DIR]   (default: a temporary folder, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
venv=${1:-$work/venv}
trap 'rm -rf "$work"' EXIT

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
pip_install() { "$venv/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip_install torch==2.14.1 torchvision==0.29.1  # the pair scripts/setup.sh pins
pip_install "$repo"  # not editable: what `pip install split-opt` gives
for absent in scipy sklearn psycopg psycopg2 pytest; do
  if "$venv/bin/python" -c "import $absent" 2>/dev/null; then
    echo "check_plain_install: $absent is installed without extras; the check would hide its import" >&2
    exit 1
  fi
done

cd "$work"  # away from the checkout: only the installed package is importable
"$venv/bin/split-opt" --help >/dev/null
cat >tiny.yaml <<'YAML'
name: plain-install
description: a tiny space for the install check
dataset: fashion-mnist
models:
  - {spec: "mobilenetv2:alpha=0.35", input_sizes: [32], cuts: [features.7, features.9, features.11]}
pca: {geometry: [channel], components: [2, 4], bits: [2, 4], coders: [ans]}
image: {formats: [png], qualities: [50]}
samples: {calib: 200, val: 200}
YAML
SPLIT_OPT_CACHE_DIR="$work/cache" "$venv/bin/split-opt" search --device "$repo/profiles/pi4.yaml" --budget-kb 5 \
  --search-space tiny.yaml --trials 3 --reports-dir "$work/reports" --format json >search.json
"$venv/bin/python" - <<'PY'
import json
doc = json.load(open("search.json"))
assert doc["n_complete"] >= 3, doc["n_complete"]
print(f"check_plain_install: split-opt --help and a {doc['n_complete']}-trial search ran without extras")
PY
