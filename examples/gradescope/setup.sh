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
# NumPy is already there (a dependency of fnnjax). Add the packages the course's files import, so a
# submission is never blamed for the course's environment (the grader names any that is missing):
# h5py (deeplearning.ai's notebooks), future (cs231n's `from past.builtins import xrange`), scipy.
/autograder/venv/bin/pip install h5py future scipy
# and whatever else your students may import, e.g.:
# /autograder/venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu

# Grade your own solution once (solution/ in the autograder zip, the files a student hands in):
# JAX's compilation cache then holds the reference programs, and each student's run skips compiling
# them (about half of its time).
if [ -d /autograder/source/solution ]; then
  mkdir -p /autograder/submission /autograder/results
  cp -r /autograder/source/solution/. /autograder/submission/
  bash /autograder/source/run_autograder
  rm -rf /autograder/submission/* /autograder/results/results.json
fi
