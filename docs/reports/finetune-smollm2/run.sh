#!/usr/bin/env bash
# What made this report (2 cores, no GPU): the distilled sample of docs/reports/distill-sample, a
# LoRA on SmolLM2-135M straight from its shipped GGUF, then base vs tuned on the held-apart articles.
set -euo pipefail
OUT=${OUT:-docs/reports/finetune-smollm2}
TUNED=${TUNED:-/tmp/ft-smollm2}
GGUF=$(.venv/bin/answer-engine models path smollm2-135m-instruct-q4_1)
.venv/bin/engine-build finetune "$GGUF" docs/reports/distill-sample/train.jsonl "$TUNED" \
  --max-steps 15 --grad-accum 2 --save-steps 5 --lr 2e-4 --rank 8            # one epoch
.venv/bin/engine-build finetune "$GGUF" docs/reports/distill-sample/train.jsonl "$TUNED" \
  --max-steps 45 --grad-accum 2 --save-steps 5 --lr 2e-4 --rank 8 --resume   # resumed to three
.venv/bin/engine-build merge-lora "$TUNED/base" "$TUNED/adapter" "$TUNED/merged"
# the held-apart articles' questions (split.json), beside the gold paragraphs the judge reads
mkdir -p /tmp/evalsplit && ln -sf "$PWD/../shared/evaldata/squad/corpus.jsonl" /tmp/evalsplit/corpus.jsonl
python3 -c "
import json; ev = set(json.load(open('docs/reports/distill-sample/split.json'))['eval'])
with open('/tmp/evalsplit/questions.jsonl', 'w') as f:
    f.writelines(l for l in open('../shared/evaldata/squad/questions.jsonl') if json.loads(l)['title'] in ev)"
for side in base merged; do
  AE_GENERATION__BACKEND=transformers AE_GENERATION__MODEL="$TUNED/$side" \
    .venv/bin/answer-engine eval qa --questions /tmp/evalsplit/questions.jsonl --sample 30 --mode fast \
    --json --report "$OUT/eval-$side" >"$OUT/eval-$side.json"
done
