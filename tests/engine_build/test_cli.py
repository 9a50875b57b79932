import subprocess
import sys


def test_engine_build_help():
    proc = subprocess.run(
        [sys.executable, "-m", "engine_build.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "TensorRT-LLM" in proc.stdout
