"""Raw llama.cpp: load time, prompt tokens/s by prefill chunk, and decode tokens/s, with the weights
repacked at load (llama.cpp's default) and as stored. One model per process, so each load is cold.

    .venv/bin/python docs/reports/repack/prefill_by_chunk.py MODEL.gguf \
        > docs/reports/repack/prefill_by_chunk.jsonl
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "answer_engine" / "corpus" / "wikipedia"
PROMPT_TOKENS = 500
DECODE_TOKENS = 32


def once(path: str, repack: bool, chunk: int) -> dict:
    import llama_cpp
    import llama_cpp.llama as llama_module

    default = llama_cpp.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = repack
        return p

    llama_module.llama_cpp.llama_model_default_params = params
    t = time.perf_counter()
    llm = llama_module.Llama(path, n_ctx=2048, n_threads=2, verbose=False)
    load_s = time.perf_counter() - t
    page = sorted(CORPUS.glob("*.html"))[3].read_text(errors="ignore")
    tokens = llm.tokenize(re.sub(r"<[^>]+>", " ", page).encode())[:PROMPT_TOKENS]
    t = time.perf_counter()
    for i in range(0, len(tokens), chunk):
        llm.eval(tokens[i : i + chunk])
    prefill_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(DECODE_TOKENS):
        llm.eval([llm.sample(temp=0.0)])
    decode_s = time.perf_counter() - t
    return {
        "repack": repack,
        "chunk": chunk,
        "load_s": round(load_s, 2),
        "prefill_tokens_per_s": round(len(tokens) / prefill_s, 1),
        "decode_tokens_per_s": round(DECODE_TOKENS / decode_s, 2),
    }


if __name__ == "__main__":
    if len(sys.argv) == 4:  # one measurement, in a process of its own
        print(json.dumps(once(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]))))
    else:
        for _ in range(2):  # the two sides alternated, twice
            for chunk in (64, 128, 256, 512):
                for repack in ("1", "0"):
                    out = subprocess.run(
                        [sys.executable, __file__, sys.argv[1], repack, str(chunk)],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    print(out.strip(), flush=True)
