"""Data-parallel training over the processes of a ``torch.distributed`` group.

Whatever started the processes (Ray Train's ``TorchTrainer``, ``torchrun``) set up the
group; the trainer only asks :meth:`World.current`. Every rank draws the same batches from
the same seed and takes its share of each batch's ladders, so the ranks together train on
exactly the batch one process would. Gradients are averaged as DDP averages them, weighted
by the pairs each rank had, in one all-reduce per step that also carries the loss and its
parts (the history is the whole batch's) and whether any rank's loss was not finite (then
every rank skips the step). Decisions that end a run (a stop, the time budget) are taken
together, so no rank is left waiting in a collective.

With no group, or a group of one, nothing here talks to anyone and training is exactly the
single-process recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.distributed as dist

from eliq.train.losses import LOSS_PARTS


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")
    """Where collectives' tensors live: the GPU for NCCL, the CPU for gloo."""

    @classmethod
    def current(cls) -> World:
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        nccl = dist.get_backend() == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @property
    def leader(self) -> bool:
        """The rank that writes checkpoints and reports."""
        return self.rank == 0

    def share(self, batch: pd.DataFrame) -> pd.DataFrame:
        """This rank's ladders of ``batch`` (every ``size``-th, in the batch's order)."""
        if self.size == 1:
            return batch
        groups = list(dict.fromkeys(batch["group"]))
        mine = set(groups[self.rank :: self.size])
        return batch[batch["group"].isin(mine)].reset_index(drop=True)

    def share_of(self, items: Sequence[str]) -> list[str]:
        """Every ``size``-th item, starting at this rank's."""
        return list(items[self.rank :: self.size])

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any."""
        if self.size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def combine(
        self,
        parameters: Sequence[torch.nn.Parameter],
        pairs: int,
        loss: float,
        parts: dict[str, float],
    ) -> tuple[bool, float, dict[str, float]]:
        """Average the ranks' gradients (in place), loss and parts, each rank weighted by
        its ``pairs`` (a rank may have none); the first value is False when any rank's loss
        was not finite."""
        finite = pairs == 0 or (
            bool(torch.isfinite(torch.tensor(loss)))
            and all(bool(torch.isfinite(p.grad).all()) for p in parameters if p.grad is not None)
        )
        if self.size == 1:
            return finite, loss, parts
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        weight = float(pairs) if finite and pairs else 0.0
        numbers = torch.tensor(
            [pairs, 0.0 if finite else 1.0, loss * weight]
            + [parts.get(name, 0.0) * weight for name in LOSS_PARTS],
            dtype=torch.float32,  # as DDP reduces gradients: half float64's bytes a step
            device=self.device,
        )
        flat = torch.cat([g.detach().reshape(-1).to(self.device, torch.float32) for g in grads])
        message = torch.cat([numbers, flat * weight])
        dist.all_reduce(message)
        total, failures = message[0].item(), message[1].item()
        if failures > 0 or total == 0:
            return False, float("nan"), parts
        averaged = message / total
        offset = len(numbers)
        for parameter, grad in zip(parameters, grads, strict=True):
            chunk = averaged[offset : offset + grad.numel()].reshape(grad.shape)
            parameter.grad = chunk.to(parameter.device, parameter.dtype)
            offset += grad.numel()
        summary = {name: averaged[3 + i].item() for i, name in enumerate(LOSS_PARTS)}
        return True, averaged[2].item(), summary
