"""Export and runtime: one ONNX graph per deployed model (frames -> network -> fused heads),
its TensorRT engines (cached per GPU and TensorRT version) and one runtime interface over
TensorRT, ONNX Runtime and PyTorch (``anomask.export.runtime.open_runtime``).

TensorRT, Torch-TensorRT and CUDA are imported lazily, inside the functions that need them,
so everything else works on a CPU-only machine.
"""
