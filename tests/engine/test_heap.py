"""``engine.heap.keep_heap``: a training step's freed memory is reused instead of faulted in again next step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, torch
from nerf_widgets.engine.heap import keep_heap
from nerf_widgets.engine.fast import FastModel
kept = keep_heap()
torch.set_num_threads(1)
torch.manual_seed(0)
model = FastModel(torch.tensor([[-2.0] * 3, [2.0] * 3]), False, 0.5, {"res_schedule": [[0, 32]]}, views=2)
origins = torch.tensor([[0.0, 0.0, 1.0]]).repeat(4096, 1)
def step():
    dirs = torch.nn.functional.normalize(torch.randn(4096, 3) * 0.3 + torch.tensor([0.0, 0.0, -1.0]), dim=-1)
    out = model.render_rays(origins, dirs, torch.ones(3), torch.rand(4096), image=torch.zeros(4096, dtype=torch.long))
    model.loss(out, {"rgb": torch.rand(4096, 3)})[0].backward()
    model.grid_step(0.1)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def run_probe(keep: str) -> dict:
    env = {**os.environ, "NERF_WIDGETS_KEEP_HEAP": keep}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_training_steps_reuse_freed_memory() -> None:
    kept, default = run_probe("1"), run_probe("0")
    assert kept["kept"] is True and default["kept"] is False
    assert default["faults"] > 10000  # each step maps its arrays afresh: one fault per 4 KiB page
    assert kept["faults"] < default["faults"] / 10
