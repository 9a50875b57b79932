"""Raw llama.cpp prefill and decode speed of one build on one GGUF file: a fixed 600-token prompt
(the first shared SQuAD paragraphs), evaluated from an empty cache, then 32 greedy tokens.
Run it with each build first on PYTHONPATH, alternating (docs/reports/speed/README.md, "Build flags"):

    python kernels.py MODEL.gguf [REPS]   # one JSON line; the build's features on stderr
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

CORPUS = Path(__file__).resolve().parents[5] / "shared" / "evaldata" / "squad" / "corpus.jsonl"
PROMPT_TOKENS = 600
DECODE_TOKENS = 32


def main() -> None:
    model, reps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with CORPUS.open() as f:
        paras = [p for line in f for p in json.loads(line)["paragraphs"]][:12]
    text = "\n\n".join(f"Source [{i + 1}]: {p}" for i, p in enumerate(paras))
    llm = Llama(model_path=model, n_ctx=4096, n_threads=2, n_batch=512, verbose=False)
    toks = llm.tokenize(("<|im_start|>user\n" + text).encode())[:PROMPT_TOKENS]
    print(llama_cpp.llama_print_system_info().decode(), file=sys.stderr)
    out: dict = {
        "model": os.path.basename(model),
        "prompt_tokens": len(toks),
        "prefill_tps": [],
        "decode_tps": [],
    }
    for _ in range(reps):
        llm.reset()
        t = time.perf_counter()
        llm.eval(toks)
        t1 = time.perf_counter()
        for _ in range(DECODE_TOKENS):
            llm.eval([llm.sample(temp=0.0)])
        t2 = time.perf_counter()
        out["text"] = llm.detokenize(llm._input_ids[len(toks) :].tolist()).decode(errors="replace")[:80]
        out["prefill_tps"].append(round(len(toks) / (t1 - t), 1))
        out["decode_tps"].append(round(DECODE_TOKENS / (t2 - t1), 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
