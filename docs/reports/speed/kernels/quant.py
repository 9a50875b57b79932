"""Requantize a GGUF with llama.cpp's own quantizer (``allow_requantize``), for the kernel runs:

python quant.py SRC.gguf DST.gguf q4_0|q8_0
"""

from __future__ import annotations

import ctypes
import sys

import llama_cpp

FTYPES = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}


def main() -> None:
    src, dst, ftype = sys.argv[1], sys.argv[2], sys.argv[3]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    print("rc", rc)


if __name__ == "__main__":
    main()
