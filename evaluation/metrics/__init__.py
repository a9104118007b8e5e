"""The metrics (layer 2: they import ``anomask.models`` at most, so training's validation
uses them too). Each streams over a dataset (``update`` per image, ``result`` at the end) in
bounded memory: ``pixel_anomaly`` (AP, AUROC, FPR95), ``components`` (SMIYC sIoU, PPV, F1*),
``semantic`` (mIoU, open-IoU), ``panoptic`` (PQ/SQ/RQ), ``goss`` (GQ); ``inputs`` checks
their inputs."""
