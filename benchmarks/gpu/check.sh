#!/usr/bin/env bash
# The GPU check: the device decoding path and the CUDA rows run on a real GPU before users run them. Sized for one
# GPU in under 10 minutes; everything it reads travels with the repository (.gpu/: the wheels and a small face set).
#
# Here (no GPU needed), once:   bash benchmarks/gpu/wheels.sh
#                               .venv/bin/python benchmarks/gpu/make_subset.py --data ../shared/data/dfdc_faces_dev \
#                                   --groups 1500 --out .gpu/faces
# There (the device tool: carry [".gpu"], timeout 600):   bash benchmarks/gpu/check.sh
# Results go to $OUT (the device tool's folder) or outputs/gpu_check; docs/performance.md says what to do with them:
# DEVICE_DECODE_ON_CUDA (data/device_decode.py) turns True only if both decodings train to the same AUC within noise
# and the device path is faster.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    || { echo "gpu check: the wheels in .gpu/whl did not install" >&2; exit 1; }
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 PATH="/tmp/site/bin:$PATH"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
python3 -m ipykernel install --user --name python3 >/dev/null  # papermill's kernel, from the carried ipykernel
status=0
step() {  # step NAME SECONDS COMMAND...: run one part, keep its log, go on to the next whatever it gives
    local name=$1 limit=$2; shift 2
    echo "== $name (at most ${limit} s)"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; local rc=$?
    tail -n 25 "$OUT/$name.log"; echo "== $name: exit $rc"; [ $rc -eq 0 ] || status=1
}
# 1. the CUDA-only tests (nvJPEG decoding against PIL, the device training path)
step tests 150 python3 -m pytest -q -p no:cacheprovider -n 0 tests/test_device_decode.py
# 2. the speed benchmark's rows on the GPU (decoding on the device vs PIL among them)
step bench 150 python3 -m deepfake_lib.bench --device cuda --image-size 128 --no-onnx --n-videos 2 --out "$OUT/bench.json"
# 3. the two decodings trained at one seed on 3,000 DFDC faces
step decode_ab 180 python3 benchmarks/gpu/decode_ab.py --data .gpu/faces --epochs 3 --device cuda --out "$OUT/decode_ab.json"
# 4. the demo pipeline on CUDA (notebooks 01-04)
step demo 150 python3 -m deepfake_lib.pipeline --demo --device cuda --steps 01-04 --runs-dir outputs/gpu_runs
cp outputs/gpu_runs/latest/summary.md "$OUT/demo_summary.md" 2>/dev/null
exit $status
