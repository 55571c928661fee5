#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (Ubuntu with Python 3).
# It installs fnnjax (CPU only) in a virtual environment that run_autograder puts on its PATH.
set -euo pipefail

apt-get update
apt-get install -y python3 python3-venv python3-pip

python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
# A wheel of fnnjax shipped in the autograder zip (python -m build in the fnnjax repository), else PyPI.
shopt -s nullglob
wheels=(/autograder/source/fnnjax-*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
  /autograder/venv/bin/pip install "${wheels[0]}"
else
  /autograder/venv/bin/pip install fnnjax
fi
# NumPy is already there (a dependency of fnnjax); add what your students may import, e.g.:
# /autograder/venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
