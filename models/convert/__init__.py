"""Weight import: Hugging Face Mask2Former folders, detectron2 Mask2Former checkpoints,
torchvision ResNet backbones and the EfficientNet-Lite0 ImageNet backbone (EfficientNet-PyTorch
layout), each to an anomask ``(model, metadata)``."""

from anomask.models.convert.importers import (
    ClassOptions,
    Imported,
    import_detectron2,
    import_efficientnet_lite,
    import_hf,
    import_torchvision,
)

__all__ = [
    "ClassOptions",
    "Imported",
    "import_detectron2",
    "import_efficientnet_lite",
    "import_hf",
    "import_torchvision",
]
