"""The reference's loss: masked L2 over every stage's heatmaps and PAFs.

Per output: sum(((pred - target) * mask)^2) / 2 / batch. The mask (crowd regions 0) multiplies the
difference before squaring, as in the reference, so a fractional mask value m weighs the cell by
m^2. One (map_h, map_w) mask per sample broadcasts over every channel.
"""
from __future__ import annotations

import torch


def masked_l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, batch: int) -> torch.Tensor:
    diff = (pred - target) * mask
    return (diff * diff).sum() / 2.0 / batch


def stage_losses(outputs: list[torch.Tensor], heatmaps: torch.Tensor, pafs: torch.Tensor,
                 mask: torch.Tensor) -> list[torch.Tensor]:
    """[heatmap_loss_0, paf_loss_0, heatmap_loss_1, ...] in the network's output order.

    mask: (B, h, w) or (B, 1, h, w)."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    batch = heatmaps.shape[0]
    losses = []
    for i, pred in enumerate(outputs):
        target = heatmaps if i % 2 == 0 else pafs
        if pred.shape != target.shape:
            raise ValueError(f"stage output {i} has shape {tuple(pred.shape)}, targets {tuple(target.shape)}")
        losses.append(masked_l2(pred, target, mask, batch))
    return losses


def total_loss(outputs: list[torch.Tensor], heatmaps: torch.Tensor, pafs: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """(sum over stages, per-output values as floats for logging)."""
    losses = stage_losses(outputs, heatmaps, pafs, mask)
    return torch.stack(losses).sum(), [float(x.detach()) for x in losses]
