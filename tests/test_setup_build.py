"""scripts/setup.sh builds llama.cpp for the CPU it runs on: AVX-512 where the CPU has it (prefill
~1.4x the AVX2 build's there, docs/reports/speed), the portable AVX2 build elsewhere, AMX never
(its path crashed in decode on these virtual machines)."""

from __future__ import annotations

import os
from pathlib import Path

import llama_cpp
import pytest

AVX512_BASE = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this machine")
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def features() -> dict[str, bool]:
    info = llama_cpp.llama_print_system_info().decode()
    pairs = (part.split("=") for part in info.replace("CPU :", "|").split("|") if "=" in part)
    return {name.strip(): value.strip() == "1" for name, value in pairs}


def test_installed_build_matches_this_cpu() -> None:
    flags, built = cpu_flags(), features()
    assert built.get("AVX2"), built
    assert not built.get("AMX_INT8"), "an AMX build: its decode path crashed here"
    wants_avx512 = AVX512_BASE <= flags and os.environ.get("AE_LLAMA_PORTABLE") != "1"
    assert built.get("AVX512", False) == wants_avx512, (sorted(f for f in flags if "512" in f), built)
    if wants_avx512:
        assert built.get("AVX512_VNNI", False) == ("avx512_vnni" in flags)
        assert built.get("AVX512_BF16", False) == ("avx512_bf16" in flags)
