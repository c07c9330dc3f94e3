"""One model trained by several processes, started by PyTorch's own launcher:

    torchrun --nproc_per_node 2 -m siamese_core train ...        (or python -m torch.distributed.run)

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and the rendezvous) for each process; this module joins
them into one process group (NCCL on GPUs, gloo on CPUs) and holds what the trainer needs beyond a single
process: each rank's slice of every batch, DistributedDataParallel around the network, embeddings
gathered from every rank for mining (so hard negatives come from the global batch, as
pytorch-metric-learning's DistributedLossWrapper does), and one decision to stop, taken together.
Only rank 0 writes the run directory; see training.train.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The one process that validates and writes the run directory."""
        return self.rank == 0


SINGLE = Group()


def launched_world() -> int:
    """How many processes torchrun started for this training (1 when it was not started by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def join(device: str = "auto") -> Group:
    """This process's place in the group torchrun started; the group is set up on the first call."""
    world = launched_world()
    if world == 1:
        return SINGLE
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        on_gpu = device != "cpu" and torch.cuda.is_available()
        if on_gpu:
            torch.cuda.set_device(local_rank)
        # Rank 0 validates while the others wait at the next step: allow slow validations, not hangs forever.
        dist.init_process_group("nccl" if on_gpu else "gloo", timeout=datetime.timedelta(minutes=30))
    return Group(rank, world, local_rank)


def finish_together(group: Group) -> None:
    """Wait for every rank before leaving: rank 0 still validates and saves after the others' last step, and a
    rank that tears its connections down meanwhile can abort the process ("terminate called without an active
    exception", seen once in this project's CI). Only on a normal end: after a failure torchrun stops them all."""
    if group.active:
        dist.barrier()


def leave(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.destroy_process_group()


def device_of(group: Group, device: str) -> Optional[torch.device]:
    """Each process's own GPU (cuda:LOCAL_RANK) when training on GPUs; None to let the trainer choose alone."""
    if group.active and device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", group.local_rank)
    return None


class Trainable(nn.Module):
    """The network's two training entry points (a pair's output, images' embeddings) behind one forward(),
    because DistributedDataParallel synchronises the gradients of what goes through forward()."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs, embed: bool = False):
        return self.net.embed(*inputs) if embed else self.net(*inputs)

    def embed(self, *inputs):
        return self(*inputs, embed=True)


class Distributed(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that keeps Trainable's embed() entry point."""

    def embed(self, *inputs):
        return self(*inputs, embed=True)


def trainable(net: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """The network as the training loop calls it: in DistributedDataParallel when several processes train."""
    wrapped = Trainable(net)
    if not group.active:
        return wrapped
    return Distributed(wrapped, device_ids=[device.index] if device.type == "cuda" else None)


def share(items: list, group: Group) -> list:
    """This rank's share of an epoch's batches: every rank drew the same batches from the epoch's seed, and
    each takes its own slice of every batch's rows. The global batch is then the batch a single process
    trains on, with the same steps per epoch: the results do not depend on how many processes train (and a
    run can resume with another number of them); each process computes only its part of every step."""
    if not group.active:
        return items
    shared = []
    for item in items:
        rows = len(item[0]) if isinstance(item, tuple) else len(item)
        each = rows // group.world  # equal slices: DDP's average of the ranks' means is then the batch mean
        if each < 2:
            continue  # BatchNorm cannot train on one row; every rank skips the same batch
        # Every world-th row: each rank sees every class of a P x K batch, so its BatchNorm statistics
        # (per process on CPUs, which have no SyncBatchNorm) are close to the whole batch's.
        part = slice(group.rank, group.rank + each * group.world, group.world)
        shared.append(tuple(column[part] for column in item) if isinstance(item, tuple) else item[part])
    return shared


class _GradTimes(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by a constant."""

    @staticmethod
    def forward(ctx, tensor, factor: float):
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def gather_with_grad(tensor: torch.Tensor, group: Group) -> torch.Tensor:
    """Every rank's rows, in rank order, for a loss over the global batch. This rank's own rows keep their
    gradient (the others' are constants here and get theirs on their own rank), multiplied by the number of
    ranks: DistributedDataParallel averages gradients over ranks, while each rank's loss over the gathered
    batch already counts every rank's rows (pytorch-metric-learning scales such a loss the same way)."""
    if not group.active:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(group.world)]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[group.rank] = _GradTimes.apply(tensor, float(group.world)) if tensor.requires_grad else tensor
    return torch.cat(parts)


def average_gradients(parameters, group: Group) -> None:
    """Average the gradients of parameters that are not inside DistributedDataParallel (the identity loss's
    class weights) over the ranks, as DDP does for the network's."""
    if not group.active:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= group.world


def agree_to_stop(asked: bool, group: Group, device: torch.device) -> bool:
    """True on every rank once any rank was asked to stop (SIGTERM to one process stops them all, together)."""
    if not group.active:
        return asked
    flag = torch.tensor([1.0 if asked else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())

