"""One rank of a distributed training job, for the distributed tests.

    torchrun --nproc_per_node 2 distributed_training.py OUTPUT_DIR torch
    RANK=1 WORLD_SIZE=2 python distributed_training.py OUTPUT_DIR env

Every rank builds the tracker from the same config and output directory, inits it without a
run id, logs a rank-dependent metric reduced across ranks (with ``torch``) and prints
``RUN_ID <rank> <run id>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from noether.core.trackers import create_tracker, reduce_metrics
from noether.core.trackers.distributed import rank

output, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "torch":
    import torch.distributed

    torch.distributed.init_process_group("gloo")
tracker = create_tracker({"kind": "tensorboard"}, output)
tracker.init(run_name="ddp", config={"world": "two ranks"})
for step in range(3):
    local = {"loss": float(rank() + 1 + step), "correct": float(rank() * 10)}
    tracker.log(reduce_metrics(local, "mean"), step=step)
    tracker.log(
        {
            "max_loss": reduce_metrics(local, "max")["loss"],
            "total_correct": reduce_metrics(local, "sum")["correct"],
        },
        step=step,
    )
tracker.close()
print("RUN_ID", rank(), tracker.run.run_id if tracker.run else None, flush=True)
if mode == "torch":
    torch.distributed.destroy_process_group()
