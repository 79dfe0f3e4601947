#!/usr/bin/env bash
# The main job: trains the example GAN (examples/train.py) built only from ganblocks blocks.
# Installs into ./.venv on first use; extra arguments go to examples/train.py (e.g. --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[examples]"
python examples/train.py "$@"
