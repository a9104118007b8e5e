"""AdamW with Mask2Former's parameter groups and the poly learning-rate schedule.

Groups (Mask2Former ``build_optimizer``): backbone parameters at ``lr * backbone_lr_multiplier``
(0.1, Mask2Former's value for an ImageNet-initialised backbone, in the recipes and the small preset);
normalisation layers and embeddings (queries, level embeddings) without weight decay;
frozen parameters (``requires_grad=False``) are left out.
"""

from __future__ import annotations

import torch
from torch import nn

from anomask.training.config import SolverConfig

_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm, nn.BatchNorm1d, nn.LocalResponseNorm)


def parameter_groups(model: nn.Module, solver: SolverConfig) -> list[dict]:
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{name}" if module_name else name
            lr = solver.lr * (solver.backbone_lr_multiplier if full.startswith("backbone.") else 1.0)
            no_decay = isinstance(module, (*_NORMS, nn.Embedding)) or "pos_embed" in name or "bias_table" in name
            groups.setdefault((lr, 0.0 if no_decay else solver.weight_decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()]


def build_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, solver), lr=solver.lr, weight_decay=solver.weight_decay)


def poly_factor(iteration: int, solver: SolverConfig) -> float:
    """``(1 - t/T)^power``, after an optional linear warm-up over ``warmup_iterations``."""
    progress = min(iteration, solver.iterations) / max(solver.iterations, 1)
    factor = (1.0 - progress) ** solver.poly_power
    if iteration < solver.warmup_iterations:
        factor *= (iteration + 1) / solver.warmup_iterations
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, solver: SolverConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: poly_factor(iteration, solver))
