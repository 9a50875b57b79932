#!/usr/bin/env bash
# Idempotent set-up: the virtual environment at .venv, the project and its dependencies, and the
# model files. Usage: scripts/setup.sh serve|test
#
# Expensive things are cached outside the clone, so a fresh clone sets up in seconds after the
# first time: pip's wheel cache, the llama.cpp wheel we build (below) and the model files
# (under the data dir, ~/.local/share/answer-engine by default).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-serve}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/answer-engine"

# llama-cpp-python is built from source. A "native" build uses every instruction the build CPU
# has, AMX included, and llama.cpp's AMX path crashes (SIGSEGV in decode) on the virtual machines
# we run on; it would also not run on an older CPU. So we build a portable AVX2 wheel ourselves,
# once, into a cache keyed by the flags, instead of trusting pip's wheel cache (whose key ignores
# CMAKE_ARGS).
LLAMA_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
# AVX-512 (never AMX) when this CPU has it: prompt prefill ~1.4x faster than the AVX2 build on the
# same CPU (docs/reports/speed, "Build flags"). Detected here, so a CPU without it still gets AVX2.
# AE_LLAMA_PORTABLE=1 forces the AVX2 build (e.g. a wheel cache shared with older machines).
cpu_flags=" $({ grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true; } | cut -d: -f2) "
has() { case "$cpu_flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ "${AE_LLAMA_PORTABLE:-0}" != 1 ] && has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
  LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DGGML_AVX512=ON"
  for f in avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if has "${f%%:*}"; then LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DGGML_${f##*:}=ON"; fi
  done
  LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_OPENMP=OFF"
else
  LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DGGML_AVX512=OFF -DGGML_OPENMP=OFF"  # the portable AVX2 build
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

key=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)
wheel_dir="$CACHE/wheels/llama-$key"
if ! ls "$wheel_dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python $LLAMA_VERSION ($LLAMA_CMAKE_ARGS; ~10 minutes on 2 cores, once)" >&2
  mkdir -p "$wheel_dir.tmp"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "${PIP[@]}" wheel --quiet --no-deps --no-cache-dir -w "$wheel_dir.tmp" "llama-cpp-python==$LLAMA_VERSION"
  rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
fi
llama_wheel=$(ls "$wheel_dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)

# Reinstall only when what we install changed.
stamp="$VENV/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$mode"
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project into $VENV" >&2
  extras=""
  [ "$mode" = "test" ] && extras="[test]"
  "${PIP[@]}" install --quiet "$llama_wheel" -e ".$extras"
  rm -f "$VENV"/.setup-*-"$mode"
  touch "$stamp"
fi
# Both builds are version 0.3.36, so pip keeps whichever is installed: replace it when the build
# (the flags' key) is not the one this CPU gets.
if [ "$(cat "$VENV/.llama-build" 2>/dev/null)" != "$key" ]; then
  "${PIP[@]}" install --quiet --force-reinstall --no-deps "$llama_wheel"
  echo "$key" >"$VENV/.llama-build"
fi

if [ "$mode" = "test" ]; then
  # Browser tests drive Debian's Chromium (Playwright cannot download a browser here).
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing Debian's chromium for the browser tests" >&2
      (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }) \
        || echo "setup: WARNING: could not install chromium; the browser tests will be skipped" >&2
    elif command -v sudo >/dev/null 2>&1; then
      sudo apt-get install -y -q chromium >/dev/null || echo "setup: WARNING: could not install chromium" >&2
    else
      echo "setup: WARNING: chromium is missing and apt-get needs root; the browser tests will be skipped" >&2
    fi
  fi
  # The tests run the real llama.cpp backend with the smallest model (89 MB).
  "$VENV/bin/answer-engine" models pull smollm2-135m-instruct-q4_1 >&2
  "$VENV/bin/answer-engine" models embedder >&2
else
  "$VENV/bin/answer-engine" models pull >&2
  # the embedding model as ONNX: a fresh process loads it in ~0.4 s instead of importing torch (~8 s)
  "$VENV/bin/answer-engine" models embedder >&2
  "$VENV/bin/answer-engine" index >&2
fi
