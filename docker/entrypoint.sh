#!/usr/bin/env bash
# anomask container entrypoint: make sure the TensorRT engine for this GPU exists (built once,
# on first boot, into the mounted model volume), then start the node with ros2 launch.
#
#   docker run ... anomask[:jetson] model:=/models/model.onnx cameras:=front,rear precision:=int8 dla_core:=0
#
# Arguments are ros2 launch arguments (name:=value) passed through to
# anomask_ros/anomask.launch.py, except these, which this script consumes:
#   precision:=fp16|fp32|int8   engine precision               (env ANOMASK_PRECISION, default fp16)
#   dla_core:=N                 build for DLA core N (Jetson)  (env ANOMASK_DLA_CORE)
#   calib_images:=DIR           INT8 calibration images        (env ANOMASK_CALIB_IMAGES)
# model:= defaults to $ANOMASK_MODEL (default /models/model.onnx). For an .onnx model and
# backend auto or tensorrt, `anomask export MODEL --build-only` returns the engine for this
# GPU and TensorRT version: the cached one when its sidecar matches, else a fresh build (the
# same cache decision as `anomask export --engine`), and the node is started on that engine.
# Without TensorRT in the image (or backend:=onnxruntime) the ONNX file is used as it is.
set -euo pipefail

model="${ANOMASK_MODEL:-/models/model.onnx}"
precision="${ANOMASK_PRECISION:-fp16}"
dla_core="${ANOMASK_DLA_CORE:-}"
calib_images="${ANOMASK_CALIB_IMAGES:-}"
backend="auto"
launch_args=()

for arg in "$@"; do
    case "$arg" in
        model:=*) model="${arg#model:=}" ;;
        precision:=*) precision="${arg#precision:=}" ;;
        dla_core:=*) dla_core="${arg#dla_core:=}" ;;
        calib_images:=*) calib_images="${arg#calib_images:=}" ;;
        backend:=*) backend="${arg#backend:=}"; launch_args+=("$arg") ;;
        *:=*) launch_args+=("$arg") ;;
        *) echo "anomask entrypoint: arguments are ros2 launch arguments name:=value, got '$arg'" >&2; exit 2 ;;
    esac
done

if [[ ! -e "$model" ]]; then
    echo "anomask entrypoint: model $model not found (mount the model volume at /models or pass model:=PATH)" >&2
    exit 2
fi

tensorrt_available() {
    python -c "import tensorrt" >/dev/null 2>&1
}

if [[ "$model" == *.onnx && ( "$backend" == "auto" || "$backend" == "tensorrt" ) ]] && tensorrt_available; then
    build=(anomask export "$model" --build-only --precision "$precision")
    if [[ -n "$dla_core" ]]; then
        build+=(--dla-core "$dla_core")
    fi
    if [[ -n "$calib_images" ]]; then
        build+=(--calib-images "$calib_images")
    fi
    echo "anomask entrypoint: ${build[*]}" >&2
    engine="$("${build[@]}" | tail -n 1)"
    model="$engine"
elif [[ "$model" == *.onnx && "$backend" == "tensorrt" ]]; then
    echo "anomask entrypoint: backend:=tensorrt but TensorRT is not importable in this image" >&2
    exit 2
fi

# ROS 2's launch tooling (system Python) and the workspace holding anomask_ros.
ros_setup="${ANOMASK_ROS_SETUP:-/opt/ros/${ROS_LAUNCH_DISTRO:-kilted}/setup.bash}"
workspace_setup="${ANOMASK_WORKSPACE_SETUP:-/opt/anomask/ros2_ws/install/local_setup.bash}"
set +u  # the ROS setup scripts read unset variables
# shellcheck disable=SC1090
source "$ros_setup"
# shellcheck disable=SC1090
source "$workspace_setup"
set -u

exec ros2 launch anomask_ros anomask.launch.py model:="$model" "${launch_args[@]}"
