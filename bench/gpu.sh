#!/usr/bin/env bash
# The GPU figures of bench/RESULTS.md: run from the repository root on a machine with CUDA and
# PyTorch (the project's Python dependencies importable, e.g. its venv active):
#   bash bench/gpu.sh
# It checks first that train and kernel jobs on cuda give the CPU's numbers and that cuda jobs run
# end to end through `ntkdyn worker --queues gpu`, then times the closed-form kernels and the
# trainer (plain loop and stacked replicates) and the ends of a kernel's spectrum without storing
# it (n = 100,000; the dense solver only up to 16384) on the GPU.
set -euo pipefail
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" bench/gpu_check.py
"$PYTHON" bench/gpu_worker.py
"$PYTHON" bench/ntk.py --device cuda
"$PYTHON" bench/train.py --device cuda
"$PYTHON" bench/spectrum.py --device cuda --sizes 16384 100000 --dense-max 16384
