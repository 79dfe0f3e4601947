#!/usr/bin/env bash
# The main job: trains the example GAN (examples/train.py) built only from ganblocks blocks.
# Installs into ./.venv on first use; every argument goes to examples/train.py: see
# `bash scripts/train.sh --help` for the options and their defaults (--device cuda trains on a GPU).
# Ctrl-C (or SIGTERM) stops after the current step with a checkpoint in runs/train/checkpoint.pt;
# the same command with --resume continues from it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate

# torch 2.13.0. On CPU (the default), the CPU build: a plain `pip install torch` pulls the multi-GB CUDA
# build on Linux, so take it from PyTorch's CPU wheel index, falling back to the default index (quickly:
# 5 s timeout, no retries) where that one cannot be reached. With --device cuda..., the default index's
# build (CUDA on Linux), replacing a CPU build installed by an earlier run.
device=cpu
prev=
for arg in "$@"; do
  case "$prev" in --device) device=$arg ;; esac
  case "$arg" in --device=*) device=${arg#--device=} ;; esac
  prev=$arg
done
case "$device" in
  cuda*)
    python -m pip install -q torch==2.13.0
    python -c 'import sys, torch; sys.exit(torch.version.cuda is None)' \
      || python -m pip install -q --force-reinstall --no-deps torch==2.13.0 ;;
  *) python -m pip install -q --timeout 5 --retries 0 --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
       || { echo "PyTorch's CPU wheel index is unreachable: torch from the default index" >&2
            python -m pip install -q torch==2.13.0; } ;;
esac
python -m pip install -q -e ".[examples]"
# exec: SIGTERM sent to this script reaches the training process, which saves a checkpoint.
exec python examples/train.py "$@"
