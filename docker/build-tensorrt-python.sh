#!/usr/bin/env bash
# Builds TensorRT's Python bindings for another Python than the system's, against the
# TensorRT headers and libraries already installed (JetPack ships bindings for its system
# Python only). Follows python/README.md of NVIDIA/TensorRT (the OSS release of the same
# version): pybind11 and the target Python's headers in EXT_PATH, then python/build.sh.
#
#   build-tensorrt-python.sh TAG PYTHON      e.g. build-tensorrt-python.sh v10.3.0 /opt/anomask/.venv/bin/python
set -euo pipefail

tag="${1:?TensorRT OSS tag, e.g. v10.3.0}"
python="${2:?target Python interpreter}"
version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
arch="$(uname -m)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone --depth 1 --branch "$tag" https://github.com/NVIDIA/TensorRT.git "$work/TensorRT"
mkdir -p "$work/ext/python${version}/include"
git clone --depth 1 https://github.com/pybind/pybind11.git "$work/ext/pybind11"
cp -r "/usr/include/python${version}/." "$work/ext/python${version}/include/"
cp "/usr/include/${arch}-linux-gnu/python${version}/pyconfig.h" "$work/ext/python${version}/include/"

cd "$work/TensorRT/python"
TRT_OSSPATH="$work/TensorRT" EXT_PATH="$work/ext" TRT_LIBPATH="/usr/lib/${arch}-linux-gnu" \
    PYTHON_MAJOR_VERSION="${version%%.*}" PYTHON_MINOR_VERSION="${version#*.}" TARGET_ARCHITECTURE="$arch" \
    TENSORRT_MODULE=tensorrt ./build.sh
"$python" -m pip install build/dist/tensorrt-*.whl
"$python" -c 'import tensorrt; print("TensorRT Python bindings", tensorrt.__version__)'
