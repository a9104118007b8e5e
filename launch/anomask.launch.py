"""Starts anomask's segmentation_node for one or several cameras.

    ros2 launch anomask_ros anomask.launch.py model:=/models/small.onnx cameras:=front,rear

Arguments: model (required), backend, namespace, params_file (defaults to the installed
anomask.yaml), use_sim_time (true for bag replay with /clock), cameras (comma-separated
namespaces; empty keeps the params file's list). Arguments override the params file.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "anomask_ros"


def _node(context):
    value = {
        name: LaunchConfiguration(name).perform(context)
        for name in ("model", "backend", "namespace", "params_file", "use_sim_time", "cameras")
    }
    overrides = {
        "model_path": value["model"],
        "backend": value["backend"],
        "use_sim_time": value["use_sim_time"].lower() in ("true", "1", "yes"),
    }
    cameras = [camera.strip() for camera in value["cameras"].split(",") if camera.strip()]
    if cameras:
        overrides["cameras"] = cameras
    return [
        Node(
            package=PACKAGE,
            executable="segmentation_node",
            namespace=value["namespace"],
            parameters=[value["params_file"], overrides],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory(PACKAGE), "launch", "anomask.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument("model", description="exported model file (.onnx, .engine or checkpoint)"),
            DeclareLaunchArgument(
                "backend",
                default_value="auto",
                choices=["auto", "tensorrt", "onnxruntime", "pytorch"],
                description="runtime backend",
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of the node and its relative topics"
            ),
            DeclareLaunchArgument("params_file", default_value=default_params, description="YAML parameter file"),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=["true", "false"],
                description="follow /clock (bag replay)",
            ),
            DeclareLaunchArgument(
                "cameras",
                default_value="",
                description="comma-separated camera namespaces; empty keeps the params file's",
            ),
            OpaqueFunction(function=_node),
        ]
    )
