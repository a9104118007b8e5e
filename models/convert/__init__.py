"""Weight import: Hugging Face Mask2Former folders, detectron2 Mask2Former checkpoints and
torchvision ResNet backbones, each to an anomask ``(model, metadata)``."""

from anomask.models.convert.importers import ClassOptions, Imported, import_detectron2, import_hf, import_torchvision

__all__ = ["ClassOptions", "Imported", "import_detectron2", "import_hf", "import_torchvision"]
