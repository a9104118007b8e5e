"""anomask: outlier-aware mask-classification segmentation, from the workstation to the car.

Sub-packages (one namespace over the repository's fixed folders):
``anomask.models`` (network, heads, checkpoints), ``anomask.training`` (data, losses,
trainer, recipes), ``anomask.evaluation`` (metrics, readers, reports) and
``anomask.export`` (ONNX, TensorRT, runtime backends).
"""

__version__ = "0.1.0"
