#!/usr/bin/env bash
# One-shot check of the CUDA path on a machine with an NVIDIA GPU (about 3-5 minutes).
#
#   bash benchmarks/device_check.sh            # from the repository root; results in $OUT (default out/gpu)
#
# The machine may have no network: wheels are taken from $WHEELS (default ./wheels), which
# must hold the project's dependencies and the CUDA target, prepared on a machine with
# network for the device's Python version, e.g.
#
#   pip download --dest wheels "numba-cuda[cu12]" numpy scipy numba threadpoolctl
#
# (The kernel benchmark needs no torch: the project is installed with --no-deps.)
#
# Steps: a virtual environment (seeing the machine's own torch), installs (offline when
# wheels are present), nvidia-smi, then
#   kernel:   `python -m isacblocks.bench.gpu` at full size (K = 64, S = 256, batch 4096): the CUDA
#             kernel against the CPU kernel (same arg-max, statistic within 1e-5 relative) and
#             frames/s of MB-ML and MAPRT on GPU and CPU (about 3 minutes);
#   training: `python -m benchmarks.gpu_training`: the training step at batch 3000 and a
#             paper-scale SL curve (lr 4e-7) for $TRAIN_SECONDS seconds (default 240; the
#             8-minute curve is `STEPS=training TRAIN_SECONDS=480`, a run of its own).
# STEPS (default "kernel training") chooses.  JSON and logs go to $OUT.
set -u
OUT="${OUT:-out/gpu}"
WHEELS="${WHEELS:-wheels}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1

echo "== $(date -u) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi not available"

VENV="${VENV:-/tmp/isac-gpu-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv --system-site-packages "$VENV" || { echo "venv creation failed"; exit 2; }
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if [ -d "$WHEELS" ]; then
    PIP+=(--no-index --find-links "$WHEELS")
fi
"${PIP[@]}" numpy scipy numba threadpoolctl || { echo "dependency install failed"; exit 3; }
"${PIP[@]}" "numba-cuda[cu12]" || "${PIP[@]}" numba-cuda || echo "numba-cuda not installed (built-in numba.cuda is tried)"
# The benchmark runs from the repository root, so the project itself needs no install.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$VENV/bin/python" - <<'PY'
import numba, numpy
from numba import cuda
print("numba", numba.__version__, "numpy", numpy.__version__, "cuda.is_available()", cuda.is_available())
if cuda.is_available():
    cuda.detect()
PY

STEPS="${STEPS:-kernel training}"
TRAIN_SECONDS="${TRAIN_SECONDS:-240}"
status=0
if [[ " $STEPS " == *" kernel "* ]]; then
    timeout 270 "$VENV/bin/python" -m isacblocks.bench.gpu --frames "${FRAMES:-4096}" --reps "${REPS:-5}" \
        --cpu-frames "${CPU_FRAMES:-2048}" --out "$OUT/gpu.json"
    code=$?; echo "== isacblocks.bench.gpu exit status $code"; [ $code -ne 0 ] && status=$code
fi
if [[ " $STEPS " == *" training "* ]]; then
    timeout $((TRAIN_SECONDS + 150)) "$VENV/bin/python" -m benchmarks.gpu_training --seconds "$TRAIN_SECONDS" \
        --out "$OUT/training.json"
    code=$?; echo "== benchmarks.gpu_training exit status $code"; [ $code -ne 0 ] && status=$code
fi
exit $status
