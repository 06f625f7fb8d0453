#!/usr/bin/env bash
# The adaptation recipe at GPU scale, for a lent GPU machine (run from the repository root
# after `make install`): the init-methods bench with real training, then the whole pipeline
# (swap, frequency head, embedding training, LoRA with embeddings, phi sweep) in bf16.
# Prints the tables to paste into a note; writes under var/gpu/. About 10 minutes on one H100.
set -euo pipefail
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-1500}
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY bench/bench_init_methods.py --device cuda --precision bf16 --train-steps "$STEPS" \
    --batch-size 32 --seq-len 256 --lr 1e-3
MODEL=$($PY -c "from adaptation.shipped import smollm2_gguf; print(smollm2_gguf())")
$PY -m adaptation pipeline --model "$MODEL" --work var/gpu/pipeline --device cuda \
    --precision bf16 --train-steps "$STEPS" --batch-size 32 --seq-len 256 \
    --learning-rate 1e-3 --lora-steps 300 --lora-embeddings --head auto
