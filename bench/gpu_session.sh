#!/usr/bin/env bash
# One call on a lent GPU machine (no network), from the repository root:
#
#     bash bench/gpu_session.sh            # writes $OUT/gpu_session.tgz and $OUT/RESULTS_GPU.md
#
# 1. installs fastinv (no deps: the machine's torch/numba/scipy are used);
# 2. bench/gpu_check.py: fit_linear, rsvd, scaling, a tiny run, the CUDA tests (--budget s);
# 3. torchrun with one process on CUDA (NCCL process group, DDP around the FFT-backed CNN);
# 4. an image run on CUDA: blur2d 256 x 256 (n = 65536), CNN (Aᵀ by FFT), top-k audit (k = 64).
# Each stage has its own timeout; the archive is rewritten after each, so a stage cut short
# loses only itself. Stage times and exit codes are in stages.txt.
set -u
OUT=${OUT:-./gpu_session_out}
BUDGET=${BUDGET:-330}
W=$(mktemp -d /tmp/fastinv_gpu_XXXX)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

pack() {
    tar czf "$OUT/gpu_session.tgz.tmp" -C "$W" . && mv "$OUT/gpu_session.tgz.tmp" "$OUT/gpu_session.tgz"
    [ -f "$W/check/RESULTS_GPU.md" ] && cp "$W/check/RESULTS_GPU.md" "$OUT/"
}

stage() {  # stage NAME TIMEOUT COMMAND...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "[gpu_session] $name ..." >&2
    timeout "$limit" "$@" >"$W/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc wall_s=$((SECONDS - t0))" | tee -a "$W/stages.txt" >&2
    tail -n 5 "$W/$name.log" >&2
    pack
}

stage install 120 python3 -m pip install -q --no-deps --no-build-isolation -e .
nvidia-smi >"$W/nvidia-smi.txt" 2>&1
stage check $((BUDGET + 150)) python3 bench/gpu_check.py --budget "$BUDGET" --out "$W/check"
stage torchrun_nccl 90 python3 -m torch.distributed.run --nproc_per_node 1 -m fastinv -- run \
    --operator blur2d --n 4096 --model cnn --samples 4000 --epochs 5 --audit-rank 64 --device cuda \
    --out "$W/torchrun_run" -q
stage image_65536 260 python3 -m fastinv run --operator blur2d --n 65536 --model cnn \
    --device cuda --samples 4000 --test-samples 500 --epochs 10 --audit-rank 64 \
    --out "$W/image_65536" -q
# keep the archive small: the reports' figures and metrics, not the arrays
find "$W" -name arrays.npz -delete
pack
cat "$W/stages.txt"
