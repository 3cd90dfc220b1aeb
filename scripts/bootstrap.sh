#!/usr/bin/env bash
# Idempotent set-up of .venv on a fresh machine: CPU torch 2.13.0 first (so nothing later pulls a
# CUDA build), then numpy + cython (needed to build xtcocotools against numpy 2), then posearch.
# A torch already in .venv (a GPU build a user installed) is kept. `--edge` adds ExecuTorch (the
# README's test command passes it, so CI runs the ExecuTorch tests instead of skipping them; the
# main job does not need it: about 2 minutes more to install).
set -euo pipefail
EXTRAS="test,openvino"
for arg in "$@"; do
  case "$arg" in
    --edge) EXTRAS="test,edge" ;;
    *) echo "bootstrap.sh: unknown option $arg (the one option is --edge)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
pip_q() { "$VPY" -m pip install -q --disable-pip-version-check "$@"; }
"$VPY" -c "import torch" 2>/dev/null || pip_q "torch==2.13.0"
pip_q numpy cython setuptools wheel
"$VPY" -c "import xtcocotools._mask" 2>/dev/null || \
  pip_q --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"
"$VPY" -c "import xtcocotools._mask"
pip_q -e ".[$EXTRAS]"
