"""One process of a two-process Accelerate job on CPU (gloo), tracked through
``NoetherTracker`` with TensorBoard (issue 14, point 3).

    torchrun --nproc_per_node 2 accelerate_ddp.py OUTPUT_DIR

Accelerate calls its trackers on the main process only; every process trains (DDP) and the
loss logged is the mean over both. Prints ``DONE <rank>`` at the end.
"""

from __future__ import annotations

import sys

import torch
from accelerate import Accelerator

from noether.core.trackers.accelerate import NoetherTracker

output = sys.argv[1]
accelerator = Accelerator(
    cpu=True,
    log_with=NoetherTracker({"kind": "tensorboard"}, run_name="ddp", run_id="ddp", save_dir=output),
)
accelerator.init_trackers("ddp", config={"learning_rate": 0.05})
model = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
model, optimizer = accelerator.prepare(model, optimizer)
x = torch.linspace(-1, 1, 8).unsqueeze(1) + accelerator.process_index
for step in range(4):
    loss = torch.nn.functional.mse_loss(model(x), 2 * x)
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
    mean = accelerator.gather(loss.detach()[None]).mean().item()
    accelerator.log({"train/loss": mean, "processes": accelerator.num_processes}, step=step)
accelerator.end_training()
print("DONE", accelerator.process_index, flush=True)
