"""Tracking from several processes of one training job (torch.distributed, torchrun, SLURM).

Only the main process (rank 0) talks to backends and writes the run's files; every other rank
gets a tracker that checks its input like any other and stores nothing, so callbacks need no
``if rank == 0``. All ranks share one run id, and :func:`reduce_metrics` combines a metric
across ranks before it is logged.

torch is never imported here: when the program has initialised ``torch.distributed`` it is
used, otherwise the launcher's environment (``RANK``/``WORLD_SIZE`` as torchrun sets them,
``SLURM_PROCID``/``SLURM_NTASKS`` under srun) says where this process stands.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal

ReduceOp = Literal["mean", "sum", "max", "min"]
_RANK_VARIABLES = ("RANK", "SLURM_PROCID")
_WORLD_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS")
#: Set by launchers to the same value in every process of one job: a run id all ranks agree on.
_JOB_ID_VARIABLES = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID")


def _torch_distributed() -> Any | None:
    """``torch.distributed`` if the program imported and initialised it, else None."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed
    return None


def _from_environment(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def rank() -> int:
    """This process's rank in the job (0 when it is not distributed)."""
    distributed = _torch_distributed()
    if distributed is not None:
        return int(distributed.get_rank())
    return _from_environment(_RANK_VARIABLES, 0)


def world_size() -> int:
    """How many processes the job has (1 when it is not distributed)."""
    distributed = _torch_distributed()
    if distributed is not None:
        return int(distributed.get_world_size())
    return _from_environment(_WORLD_VARIABLES, 1)


def is_main_process() -> bool:
    """True on rank 0, the process that talks to the backends."""
    return rank() == 0


def shared_run_id(run_id: str | None) -> str:
    """``run_id``, or one id that every rank of the job gets.

    With torch.distributed initialised, rank 0 draws it and broadcasts it; otherwise it is
    derived from the launcher's job id (torchrun's ``TORCHELASTIC_RUN_ID``, SLURM's
    ``SLURM_JOB_ID``); a single process draws a new one (:func:`new_run_id`).
    """
    if run_id:
        return run_id
    distributed = _torch_distributed()
    if distributed is not None and distributed.get_world_size() > 1:
        drawn = [new_run_id() if distributed.get_rank() == 0 else None]
        distributed.broadcast_object_list(drawn, src=0)
        return str(drawn[0])
    if world_size() > 1:
        for name in _JOB_ID_VARIABLES:
            job = os.environ.get(name, "")
            if job and job != "none":
                return re.sub(r"[^A-Za-z0-9_.-]", "-", job)
    return new_run_id()


def new_run_id() -> str:
    """A fresh run id that sorts by start time and names a directory as it is:
    ``20261128-093015-3fa9c1`` (local time, then 24 random bits against collisions)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def reduce_metrics(metrics: Mapping[str, float], op: ReduceOp = "mean") -> dict[str, float]:
    """Combine scalar metrics across ranks (every rank must call it with the same names).

    ``op`` is ``mean``, ``sum``, ``max`` or ``min``. Without an initialised torch.distributed
    (a single process) the metrics come back unchanged, as floats.
    """
    if op not in ("mean", "sum", "max", "min"):
        raise ValueError(f"reduce_metrics op must be mean, sum, max or min; got {op!r}")
    names = sorted(metrics)
    values = [float(metrics[name]) for name in names]
    distributed = _torch_distributed()
    if distributed is None or distributed.get_world_size() == 1:
        return dict(zip(names, values, strict=True))
    torch = sys.modules["torch"]  # loaded along with torch.distributed
    tensor = torch.tensor(values, dtype=torch.float64)
    reduce_op = {"max": distributed.ReduceOp.MAX, "min": distributed.ReduceOp.MIN}.get(
        op, distributed.ReduceOp.SUM
    )
    distributed.all_reduce(tensor, op=reduce_op)
    if op == "mean":
        tensor /= distributed.get_world_size()
    return dict(zip(names, tensor.tolist(), strict=True))
