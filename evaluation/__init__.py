"""anomask.evaluation: the benchmarks' metrics, their dataset readers, report tables and plots.

Metrics (``anomask.evaluation.metrics``) stream over a dataset (``update`` per image, ``result``
at the end) in bounded memory: ``pixel_anomaly`` (AP, AUROC, FPR95), ``components`` (SMIYC
sIoU, PPV, F1*), ``semantic`` (mIoU, open-IoU), ``panoptic`` (PQ/SQ/RQ), ``goss`` (GQ).
``readers.open_benchmark`` opens every benchmark dataset; ``report`` and ``plots`` turn
results into paper-style tables and figures.

``evaluate.evaluate(model, datasets, scores, out_dir)`` runs a checkpoint or an exported
model over datasets (one network pass per image, every score from the same outputs) and
writes ``report.md``, ``metrics.json`` and plots (``eval_report``); ``eval_cli`` is
``anomask eval``. Its parts: ``predictors`` (model -> per-image outputs at the image size),
``eval_data`` (dataset specs, tasks), ``thresholds`` (open-set thresholds from other images),
``image_store`` (per-image maps on disk between the two passes).
"""
