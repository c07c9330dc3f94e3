"""Pair binary cross-entropy, contrastive loss, and triplet loss with optional in-batch mining."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pair_bce(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, same)


def contrastive(distances: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Pull same pairs together; push different pairs at least `margin` apart (Hadsell et al. 2006)."""
    pull = same * distances.pow(2)
    push = (1 - same) * F.relu(margin - distances).pow(2)
    return (pull + push).mean()


def triplet(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    d_pos = (anchor - positive).norm(dim=1)
    d_neg = (anchor - negative).norm(dim=1)
    return F.relu(d_pos - d_neg + margin).mean()


def mined_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float, strategy: str) -> torch.Tensor:
    """Triplet loss over the triplets of one batch chosen online.

    batch-hard: for each anchor, its farthest positive and its nearest negative (Hermans et al. 2017).
    semi-hard: for each anchor-positive pair, the nearest negative still farther than the positive
    (FaceNet); the hardest negative when there is none.
    """
    dist = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive_mask = same & ~eye
    negative_mask = ~same
    big = dist.detach().max() + 1.0
    if strategy == "batch-hard":
        hardest_pos = (dist * positive_mask).max(dim=1).values
        hardest_neg = (dist + big * (~negative_mask)).min(dim=1).values
        valid = positive_mask.any(dim=1) & negative_mask.any(dim=1)
        return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()
    if strategy != "semi-hard":
        raise ValueError(f"unknown mining strategy {strategy!r}")
    anchor, positive = positive_mask.nonzero(as_tuple=True)
    d_ap = dist[anchor, positive]
    d_an = dist[anchor]  # (P, B): every candidate negative for each anchor-positive pair
    semi = negative_mask[anchor] & (d_an > d_ap[:, None]) & (d_an < d_ap[:, None] + margin)
    semi_neg = torch.where(semi, d_an, big).min(dim=1).values
    hardest_neg = torch.where(negative_mask[anchor], d_an, big).min(dim=1).values
    d_neg = torch.where(semi.any(dim=1), semi_neg, hardest_neg)
    return F.relu(d_ap - d_neg + margin).mean()


class CosineIdentityLoss(torch.nn.Module):
    """Cross-entropy over the training classes on cosine similarities to one learned centre per class
    (NormFace, Wang et al. 2017), with label smoothing. Used beside mined triplets while training only:
    the triplet loss shapes distances between neighbours, this one keeps every class apart from all
    others at once, which a batch of P classes alone cannot see."""

    def __init__(self, embedding_dim: int, n_classes: int, scale: float = 16.0, smoothing: float = 0.1):
        super().__init__()
        self.centres = torch.nn.Parameter(torch.randn(n_classes, embedding_dim) * 0.01)
        self.scale = scale
        self.smoothing = smoothing

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(embeddings, dim=1) @ F.normalize(self.centres, dim=1).T
        return F.cross_entropy(self.scale * cosine, labels, label_smoothing=self.smoothing)
