"""Data-parallel training under ``torchrun``: the environment, the process group, the rows
each rank owns, and the reductions that make P processes compute what one would.

``torchrun --nproc_per_node P -m fastinv run ...`` starts P copies of fastinv with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) in their environment.
:func:`detect` reads them; :func:`process_group` joins the group (NCCL on CUDA, gloo on the
CPU). Rank r owns the contiguous rows :func:`row_range` ``(N, r, P)`` of the training set and
generates only those: the generator is counter-based (row i depends on the seed and i only),
so the union of the ranks' rows is bitwise the single-process data.

:func:`fastinv.nets.training.train` with ``shard=RowShard(start, total)`` then trains a
DistributedDataParallel copy of the network on each rank: every rank draws the same global
validation split and per-epoch shuffles, keeps the members of each global batch that it owns,
and scales its loss so that DDP's gradient average is the gradient of the global batch. So
the steps are those of one process on all rows, up to the rounding of the sums.

:func:`allreduce_moments` merges per-rank :class:`~fastinv.linalg.moments.MomentAccumulator`
objects with the accumulator's own ``merge``, in rank order, on every rank (or on one): the
surrogate C of a data-parallel run is fitted that way, each rank evaluating the trained
network on its rows of the probe set.

A rank that fails alone would leave the others waiting in the next collective call until the
group's timeout: :func:`collectively` runs a step on every rank and makes them all raise
when one does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from fastinv.errors import FastinvError

__all__ = [
    "DistEnv",
    "RowShard",
    "allreduce_moments",
    "allreduce_sum",
    "backend_for",
    "broadcast_from_root",
    "check_shards",
    "collectively",
    "detect",
    "process_group",
    "rank_device",
    "row_range",
    "world",
]


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that audits and writes."""
        return self.rank == 0


@dataclass(frozen=True)
class RowShard:
    """The rows ``start .. start + m`` (m: the rows passed) of a data set of ``total`` rows."""

    start: int
    total: int


def detect(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """The torchrun environment, or None when this is a single process.

    ``WORLD_SIZE`` unset or 1 means one process (``torchrun --nproc_per_node 1`` runs as
    without torchrun).

    Raises
    ------
    FastinvError
        ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` that are not integers, or a rank outside
        ``0 .. WORLD_SIZE - 1``.
    """
    env = os.environ if environ is None else environ
    if env.get("WORLD_SIZE") in (None, "", "1"):
        return None
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = env.get(name, "0" if name == "LOCAL_RANK" else None)
        try:
            values[name] = int(raw)
        except (TypeError, ValueError):
            raise FastinvError(
                f"{name} must be an integer (as torchrun sets it), got {raw!r}; start fastinv "
                "with `torchrun --nproc_per_node P -m fastinv run ...` or unset WORLD_SIZE"
            ) from None
    rank, size = values["RANK"], values["WORLD_SIZE"]
    if size < 1 or not 0 <= rank < size:
        raise FastinvError(
            f"RANK must be in [0, WORLD_SIZE - 1] = [0, {size - 1}], got {rank}; check the "
            "torchrun environment"
        )
    return DistEnv(rank, size, values["LOCAL_RANK"])


def row_range(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``total`` owned by ``rank``: contiguous, sizes differing by <= 1."""
    base, extra = divmod(int(total), int(world_size))
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def backend_for(device) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` otherwise."""
    return "nccl" if getattr(device, "type", str(device)).startswith("cuda") else "gloo"


def rank_device(env: DistEnv, device):
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA (one GPU per process), else
    ``device`` itself."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return device
    if env.local_rank >= torch.cuda.device_count():
        raise FastinvError(
            f"LOCAL_RANK {env.local_rank} has no GPU (this node has "
            f"{torch.cuda.device_count()}); start at most that many processes per node"
        )
    return torch.device("cuda", env.local_rank)


@contextmanager
def process_group(env: DistEnv, device) -> Iterator[DistEnv]:
    """Join the torchrun process group for the block (``env://`` rendezvous; NCCL on CUDA,
    gloo on the CPU) and leave it afterwards. A group already joined is used as it is."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        yield env
        return
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(rank_device(env, device))
    dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    try:
        yield env
        dist.barrier()  # no rank tears the group down while another still talks to it
    finally:
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group.

    Raises
    ------
    FastinvError
        No process group has been joined.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise FastinvError(
            "data-parallel training needs a joined process group; run under torchrun and "
            "wrap the call in fastinv.nets.distributed.process_group(...)"
        )
    return dist.get_rank(), dist.get_world_size()


def check_shards(shard: RowShard, rows: int) -> None:
    """Check that the ranks' shards tile ``0 .. total`` in rank order (one all-gather).

    Raises
    ------
    FastinvError
        Shards that overlap, leave gaps, or disagree on ``total``.
    """
    import torch.distributed as dist

    _, size = world()
    got: list = [None] * size
    dist.all_gather_object(got, (int(shard.start), int(rows), int(shard.total)))
    expect = 0
    for r, (start, m, total) in enumerate(got):
        if total != shard.total or start != expect:
            raise FastinvError(
                f"the ranks' rows must tile 0 .. {shard.total} in rank order, but rank {r} "
                f"holds rows {start} .. {start + m} of {total}; give rank r the rows "
                "row_range(total, r, world_size)"
            )
        expect = start + m
    if expect != shard.total:
        raise FastinvError(
            f"the ranks hold {expect} rows together but total is {shard.total}; give rank r "
            "the rows row_range(total, r, world_size)"
        )


def allreduce_sum(t):
    """``t`` (a tensor) summed over the ranks, in place; returned."""
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def allreduce_moments(acc, *, dst: int | None = None):
    """The ranks' accumulators merged: the moments of all ranks' rows, as one accumulator.

    Each rank's state is gathered (``all_gather_object``; with ``dst``, ``gather_object`` to
    that rank only) and merged with :meth:`MomentAccumulator.merge` in rank order, so every
    receiving rank holds the same numbers, equal to one accumulator over all rows up to
    rounding. Memory: one copy of every rank's (n_in² + n_in·n_out) moments on each receiver.
    The states travel as NumPy arrays (a torch accumulator is copied to the host first); the
    merge lives on ``acc``'s backend and device.

    Parameters
    ----------
    acc : MomentAccumulator
        This rank's moments (may hold no rows).
    dst : int, optional
        Only this rank receives the merge (the others get None).

    Returns
    -------
    MomentAccumulator or None
        A new accumulator (``acc`` is unchanged) on the receiving ranks.
    """
    import torch.distributed as dist

    from fastinv.linalg.moments import MomentAccumulator

    if not isinstance(acc, MomentAccumulator):
        raise FastinvError(f"acc must be a MomentAccumulator, got {type(acc).__name__}")
    rank, size = world()
    sent = acc if acc.backend == "cpu" else MomentAccumulator(acc.n_in, acc.n_out).merge(acc)
    if dst is None:
        states: list = [None] * size
        dist.all_gather_object(states, sent)
    else:
        states = [None] * size if rank == dst else None
        dist.gather_object(sent, states, dst=dst)
        if rank != dst:
            return None
    merged = MomentAccumulator(acc.n_in, acc.n_out, backend=acc.backend, device=acc.device)
    for other in states:
        merged.merge(other)
    return merged


def collectively(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on every rank of the joined group, which all raise when one
    does: the failing rank its own exception, the others a :class:`FastinvError` that names
    it. One ``all_gather_object`` of the outcome after ``fn``.
    """
    import torch.distributed as dist

    try:
        value, error, failure = fn(*args, **kwargs), None, None
    except Exception as e:  # noqa: BLE001 -- re-raised below, after the others are told
        value, error, failure = None, f"{type(e).__name__}: {e}", e
    rank, size = world()
    errors: list = [None] * size
    dist.all_gather_object(errors, error)
    if failure is not None:
        raise failure
    for r, err in enumerate(errors):
        if err is not None:
            raise FastinvError(f"rank {r} of {size} failed ({err}); this rank stopped with it")
    return value


def broadcast_from_root(obj):
    """``obj`` of rank 0 (picklable), returned on every rank (the others pass anything)."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
