"""A two-process DDP job on CPU (gloo) under Lightning, logging through ``NoetherLogger``
(issue 14, point 1). Lightning starts the second process itself (it runs this script again).

    python lightning_ddp.py OUTPUT_DIR

Prints ``DONE <rank> <version>`` in each process at the end.
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
from tiny_models import lightning_regression, regression_data

from noether.core.trackers.lightning import NoetherLogger

output = sys.argv[1]
logger = NoetherLogger({"kind": "tensorboard"}, save_dir=output)
trainer = pl.Trainer(
    max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=logger,
    log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
    default_root_dir=output,
)  # fmt: skip
trainer.fit(lightning_regression(), regression_data())
print("DONE", trainer.global_rank, logger.version, flush=True)
