"""`fastinv sweep --cluster ADDRESS`: the models of a sweep as tasks of a Dask distributed
cluster.

``ADDRESS`` is ``tcp://HOST:PORT`` (a running scheduler: ``dask scheduler`` plus ``dask
worker``, or one started by dask-jobqueue on SLURM) or ``local:N`` (a LocalCluster of N
single-threaded worker processes on this machine, started here and closed at the end).

Each model is one task running :func:`fastinv.workflows.sweep_pool.try_run_model`, the
function the process pool runs; the shared context (A, its SVD, the references, the test sets
and probes) is scattered to every worker once, not recomputed or sent per task. With
``--device cuda`` each task asks for ``resources={"GPU": 1}`` (start workers with
``--resources GPU=1``). Results come back as they finish into the same ``finished`` callback
and :class:`~fastinv.workflows.sweep_pool.ModelTracker` as the pool's, so the model files (and
``--resume``) and the progress lines are those of a local sweep. A worker that dies mid-task
has its task rescheduled by Dask on another worker (up to the scheduler's
``distributed.scheduler.allowed-failures``, 3 by default); a task that raises an unexpected
exception is retried ``RETRIES`` times; a model that fails for a reason of its own (a
:class:`FastinvError`) is reported with its error and does not stop the others.

Dask is imported only here, and only when a cluster is asked for.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from contextlib import contextmanager

from fastinv.errors import FastinvError
from fastinv.workflows.sweep_pool import ModelTracker, limit_threads, try_run_model

__all__ = [
    "CONNECT_TIMEOUT",
    "RETRIES",
    "WORKER_TIMEOUT",
    "check_cluster",
    "cluster_device",
    "connect",
    "parse_address",
    "run_on_cluster",
]

#: seconds to reach a scheduler before giving up
CONNECT_TIMEOUT = 10.0
#: seconds to wait for the first worker of a scheduler (local: for all N)
WORKER_TIMEOUT = 120.0
#: retries of a task that raised an unexpected exception (Dask's ``retries``)
RETRIES = 2
#: most local workers
_MAX_LOCAL = 256
_INSTALL = "pip install -e '.[cluster]' (or pip install 'dask>=2024.1' 'distributed>=2024.1')"


def parse_address(address) -> tuple[str, int | str]:
    """``("local", N)`` for ``"local:N"``, ``("remote", address)`` for ``"tcp://HOST:PORT"``
    (also ``tls://``).

    Raises
    ------
    FastinvError
        Anything else, N outside 1..256 or a port outside 1..65535.
    """
    what = (
        "the cluster address must be tcp://HOST:PORT (a running Dask scheduler) or local:N "
        "(N local worker processes)"
    )
    if not isinstance(address, str):
        raise FastinvError(f"{what}, got {address!r}")
    a = address.strip()
    m = re.fullmatch(r"local:(\d+)", a)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= _MAX_LOCAL:
            raise FastinvError(f"the N of local:N must be in 1..{_MAX_LOCAL}, got {address!r}")
        return "local", n
    m = re.fullmatch(r"(?:tcp|tls)://[A-Za-z0-9._\-]+:(\d{1,5})", a)
    if m:
        if not 1 <= int(m.group(1)) <= 65535:
            raise FastinvError(f"the port must be in 1..65535, got {address!r}")
        return "remote", a
    raise FastinvError(f"{what}, got {address!r}")


def check_cluster(cluster, jobs: int) -> str | None:
    """The checked cluster address (None for none); ``jobs`` must then be 1."""
    if cluster is None:
        return None
    kind, where = parse_address(cluster)
    if jobs != 1:
        raise FastinvError(
            "--jobs runs a local process pool and --cluster runs the models on the cluster's "
            "workers; pass one of them"
        )
    if kind == "remote":
        _probe(where)  # before anything is built
    return cluster.strip()


def _probe(where: str) -> None:
    """A TCP connection to the scheduler's port within ``CONNECT_TIMEOUT`` seconds."""
    import socket

    host, port = where.split("://", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise FastinvError(
            f"cannot reach a Dask scheduler at {where} within {CONNECT_TIMEOUT:g} s ({e}); "
            f"check the address, or start one (dask scheduler; dask worker {where})"
        ) from None


def cluster_device(device, cluster: str):
    """The device of a sweep on ``cluster``: on a remote cluster ``"cuda"`` is taken as asked
    (the workers have the GPUs, not this client); else as :func:`fastinv._device.resolve_device`
    gives it."""
    import torch

    from fastinv._device import resolve_device

    remote = parse_address(cluster)[0] == "remote"
    if remote and isinstance(device, str) and device.strip().lower().startswith("cuda"):
        return torch.device(device.strip().lower())
    return resolve_device(device)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise FastinvError(
            f"--cluster needs Dask distributed, which is not installed: {_INSTALL}"
        ) from None
    return distributed


@contextmanager
def connect(cluster: str, *, gpu: bool = False):
    """``(client, threads)`` for ``cluster``: a client of the scheduler, with at least one
    worker; for ``local:N`` a LocalCluster of N worker processes, closed on exit, and the
    threads each task may use (cores // N; None on a remote cluster: its workers' own).

    Raises
    ------
    FastinvError
        Dask not installed, a malformed address, a scheduler that cannot be reached within
        ``CONNECT_TIMEOUT`` seconds, or one without workers after ``WORKER_TIMEOUT``.
    """
    kind, where = parse_address(cluster)
    distributed = _distributed()
    if kind == "local":
        with (
            distributed.LocalCluster(
                n_workers=where,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: never a clash
                resources={"GPU": 1} if gpu else None,
                silence_logs=40,  # logging.ERROR
            ) as lc,
            distributed.Client(lc) as client,
        ):
            client.wait_for_workers(where, timeout=WORKER_TIMEOUT)
            yield client, max(1, (os.cpu_count() or 1) // where)
        return
    try:
        client = distributed.Client(where, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise FastinvError(
            f"cannot reach a Dask scheduler at {where} within {CONNECT_TIMEOUT:g} s ({e}); "
            f"check the address, or start one (dask scheduler; dask worker {where})"
        ) from None
    with client:
        _wait_for_workers(client, where)
        yield client, None


def _wait_for_workers(client, where: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except (OSError, TimeoutError):
        raise FastinvError(
            f"the Dask scheduler at {where} has no workers after {WORKER_TIMEOUT:g} s; start "
            f"some (dask worker {where} --nthreads 1)"
        ) from None


def _check_gpu_workers(client, where: str) -> None:
    workers = client.scheduler_info()["workers"].values()
    if not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
        raise FastinvError(
            f"--device cuda: no worker of {where} offers a GPU resource, so no model could "
            f"start; start workers with `dask worker ADDRESS --nthreads 1 --resources GPU=1`"
        )


def cluster_task(settings: dict, ctx: dict, threads: int | None) -> dict:
    """One model on a worker: :func:`try_run_model` with at most ``threads`` threads."""
    if threads is not None:
        limit_threads(threads)
    return try_run_model(settings, ctx)


def run_on_cluster(
    todo: list[dict],
    ctx: dict,
    cluster: str,
    *,
    gpu: bool = False,
    finished: Callable,
    log: Callable | None = None,
) -> None:
    """Run every model of ``todo`` as a task on ``cluster``; each result goes to ``finished``
    as it comes (see :func:`fastinv.workflows.sweep_pool.run_models`, whose contract this
    keeps: failed models are named in one :class:`FastinvError` once the others ended)."""
    tracker = ModelTracker(len(todo), finished, log)
    if not todo:
        return
    with connect(cluster, gpu=gpu) as (client, threads):
        if gpu:
            _check_gpu_workers(client, cluster)
        if log is not None:
            log(f"{len(todo)} models on {cluster} ({len(client.nthreads())} workers)")
        _run_tasks(client, todo, ctx, threads, gpu, tracker)
    tracker.check()


def _run_tasks(client, todo, ctx, threads, gpu: bool, tracker: ModelTracker) -> None:
    """Scatter ``ctx`` once, submit one task per model, take the results as they complete."""
    from distributed import as_completed

    [shared] = client.scatter([ctx], broadcast=True)
    token = uuid.uuid4().hex[:8]  # a fresh key per sweep: never a stale result of another
    futs = {
        client.submit(
            cluster_task,
            st,
            shared,
            threads,
            key=f"fastinv-{st['key']}-{token}",
            pure=False,
            retries=RETRIES,
            resources={"GPU": 1} if gpu else None,
        ): st
        for st in todo
    }
    try:
        for fut in as_completed(futs):
            tracker.take(_outcome(fut, futs[fut]), running=_slots(client))
    finally:
        client.cancel(list(futs))


def _outcome(fut, settings: dict) -> dict:
    """The task's result, or a failure when its workers kept dying under it."""
    from distributed import KilledWorker

    try:
        return fut.result()
    except KilledWorker as e:
        return {
            "settings": settings,
            "error": f"every worker that ran it died (out of memory?): {e}",
        }


def _slots(client) -> int:
    """Tasks the cluster runs at once now (its workers' threads)."""
    try:
        return int(sum(client.nthreads().values()))
    except (OSError, TimeoutError):
        return 0
