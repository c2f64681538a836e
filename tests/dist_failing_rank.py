"""Run under torch.distributed.run by tests/test_worldmodel_dist.py: engine.worker on RUN_DIR, except that
rank 1's second gradient step raises, as a rank that fails in the middle of training would."""

from __future__ import annotations

import os
import sys

import torch

from engine import worker, worldmodel

FAILURE = "rank one ran out of luck"


def main() -> int:
    step = worldmodel.Trainer._step
    calls = []

    def failing_step(self: worldmodel.Trainer, index: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if os.environ["RANK"] == "1" and len(calls) == 2:
            raise ValueError(FAILURE)
        return step(self, index)

    worldmodel.Trainer._step = failing_step  # type: ignore[method-assign]
    return worker.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
