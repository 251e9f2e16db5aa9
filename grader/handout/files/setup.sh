#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (as root, from /autograder/source):
# a Python environment holding the grader, MNIST provisioned and verified, and the unprivileged
# user the submission's process runs as (the grader itself runs as root there).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet "$ROOT/source"
export MLP_GRADER_CACHE="${MLP_GRADER_CACHE:-$ROOT/mnist-cache}"
"$ROOT/venv/bin/python" -m grader data
SANDBOX_USER="${MLP_GRADER_SANDBOX_USER:-mlp-sandbox}"
if ! id -u "$SANDBOX_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SANDBOX_USER"
fi
