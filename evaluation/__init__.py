"""anomask.evaluation: the benchmarks' metrics, their dataset readers, report tables and plots.

Metrics stream over a dataset (``update`` per image, ``result`` at the end) in bounded memory:
``pixel_anomaly`` (AP, AUROC, FPR95), ``components`` (SMIYC sIoU, PPV, F1*), ``semantic``
(mIoU, open-IoU), ``panoptic`` (PQ/SQ/RQ), ``goss`` (GQ). ``readers.open_benchmark`` opens
every benchmark dataset; ``report`` and ``plots`` turn results into paper-style tables and
figures; ``eval_bench`` is ``anomask bench eval``.
"""
