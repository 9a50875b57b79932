#!/usr/bin/env bash
# The router's curve: always local (Qwen2.5-Coder-0.5B in-process), always strong (the 1.5B default
# served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1), and routed, on the same seeded
# SQuAD sample. Run from the repo root after `make serve` set-up and `models pull` of both models.
set -euo pipefail
N=${N:-30}
OUT=${OUT:-docs/reports/router}
AE=.venv/bin/answer-engine
STRONG_GGUF=$($AE models path qwen2.5-coder-1.5b-instruct-q4_k_m)
.venv/bin/python -m llama_cpp.server --model "$STRONG_GGUF" --model_alias strong-1.5b --host 127.0.0.1 \
  --port 8011 --n_ctx 4096 --n_threads 2 >"${TMPDIR:-/tmp}/router-server.log" 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8011/v1/models >/dev/null && break; sleep 1; done
STRONG='{"backend": "openai", "base_url": "http://127.0.0.1:8011/v1", "model": "strong-1.5b"}'
common=(eval qa --sample "$N" --mode fast --json)
AE_GENERATION__MODEL=qwen2.5-coder-0.5b-instruct-q4 $AE "${common[@]}" --report "$OUT/local" >"$OUT/local.json"
AE_GENERATION__BACKEND=openai AE_GENERATION__BASE_URL=http://127.0.0.1:8011/v1 AE_GENERATION__MODEL=strong-1.5b \
  $AE "${common[@]}" --report "$OUT/strong" >"$OUT/strong.json"
AE_GENERATION__BACKEND=router AE_ROUTER__LOCAL='{"backend": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct-q4"}' \
  AE_ROUTER__STRONG="$STRONG" AE_ROUTER__ESCALATE_BELOW_RELEVANCE=0.5 \
  $AE "${common[@]}" --report "$OUT/routed" >"$OUT/routed.json"
