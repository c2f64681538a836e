"""Many processes, many machines: the rank side of a run started through torch.distributed.run.

`trainctl run --algo worldmodel --nproc N [--nnodes M --node-rank R --master-addr A --master-port P]`
(the `dist.*` keys) makes engine.launcher start `python -m torch.distributed.run ... -m engine.worker RUN`
instead of the worker alone; torchrun starts N workers per machine and gives each its place in the
environment (RANK, WORLD_SIZE, LOCAL_RANK). `Ranks.from_env()` reads it without importing torch (the worker
needs it before its heavy imports). What each rank does:

- global rank 0 writes the run folder (events, run.json, checkpoints, best/) and its status; a local rank 0
  on another machine keeps only the status of that machine's run folder; every other rank writes nothing;
- every rank trains on its share of each global minibatch (`shard`), and one all_reduce per step (`sum_gradients`)
  sums the gradients, the loss, the rows seen and the stop request, so every rank applies the same step and
  stops at the same minibatch; validation sums and [PERF] phase times are summed the same way;
- a resume restores every rank from rank 0's checkpoint (`state_of_rank_0`, one broadcast): a machine
  after the first has none in its own run folder;
- a rank that fails publishes its message in the job's rendezvous store (`publish_failure`) before it
  exits; rank 0, whose next collective then fails, names it in the run's status (`failure_note`).

torch is imported inside the functions: this module is read by the worker before torch is loaded.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from engine.perf import PerfTimer

FAILURE_KEY = "trainctl/failed/"  # + the rank: that rank's one-line failure message
# How long a collective waits for a rank that neither answers nor dies (a dead rank fails it at once).
COLLECTIVE_TIMEOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: global rank, processes in all, rank on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Ranks:
        """What torchrun set (RANK, WORLD_SIZE, LOCAL_RANK); one process alone when it set nothing."""
        env = os.environ if environ is None else environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes_run(self) -> bool:
        """Global rank 0: the one process that writes events, run.json, checkpoints and best/."""
        return self.rank == 0

    @property
    def records_status(self) -> bool:
        """The first process of its machine: it keeps status.json of the run folder it was started in."""
        return self.local_rank == 0


def launch_argv(python: str, worker: Sequence[str], nproc: int, nnodes: int, node_rank: int, master_addr: str,
                master_port: int) -> list[str]:
    """The torchrun command line (an argv list, no shell) that runs `python -m <worker...>` on `nproc`
    processes here. One machine: `--standalone` (a free local port, so two runs never collide); more: the
    static rendezvous at master_addr:master_port, this machine being `node_rank`. No restarts: a rank that
    fails fails the run."""
    where = (["--standalone"] if nnodes == 1 else
             [f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={master_addr}",
              f"--master-port={master_port}"])
    return [python, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", *where, "--max-restarts=0",
            "-m", *worker]


def init(ranks: Ranks, device: torch.device) -> None:
    """Join the job's process group: NCCL on CUDA (one GPU per local rank), gloo on CPU."""
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)


def device_for(ranks: Ranks, device: torch.device) -> torch.device:
    """The device of this rank: its own GPU on CUDA."""
    import torch

    return torch.device("cuda", ranks.local_rank) if device.type == "cuda" and ranks.distributed else device


def close() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(rows: slice, ranks: Ranks) -> slice:
    """This rank's contiguous part of a global minibatch's rows `rows` (a slice of the epoch's shuffled
    data; the parts differ by one row at most). Together the ranks cover each minibatch exactly once, so the
    summed step is the one-process step on the same rows."""
    size = rows.stop - rows.start
    return slice(rows.start + size * ranks.rank // ranks.world, rows.start + size * (ranks.rank + 1) // ranks.world)


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over the ranks, in place (a no-op in a process alone)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(values)
    return values


def sum_gradients(parameters: Sequence[torch.nn.Parameter], extras: torch.Tensor) -> torch.Tensor:
    """Sum the parameters' gradients and `extras` (float32 figures of the step: loss, rows, stop, ...) over
    the ranks in one all_reduce, the gradients in place; returns the summed extras."""
    import torch

    grads = [p.grad for p in parameters if p.grad is not None]
    flat = all_sum(torch.cat([*(g.reshape(-1) for g in grads), extras.to(grads[0].device)]))
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset: offset + grad.numel()].view_as(grad))
        offset += grad.numel()
    return flat[offset:]


def sum_phases(timer: PerfTimer, phases: Sequence[str], ranks: Ranks) -> None:
    """Make the timer's phase times the ranks' mean (their sum / ranks): every rank spends the same wall
    time per step, so the mean is where the job's wall time went. Called by every rank at the same step."""
    import torch

    if not ranks.distributed:
        return
    spent = timer.phase_ns()
    summed = all_sum(torch.tensor([float(spent.get(p, 0)) for p in phases], dtype=torch.float64))
    timer.set_phase_ns({p: int(ns / ranks.world) for p, ns in zip(phases, summed.tolist(), strict=True) if ns})


def state_of_rank_0(state: Mapping[str, Any], ranks: Ranks, device: torch.device) -> dict[str, Any]:
    """Rank 0's resume state on every rank (one broadcast of its checkpoint's bytes, loaded with
    weights_only=True like a file): the ranks of another machine have no checkpoint of their own (only
    machine 0's run folder has them), and every rank must restore the same one. Rank 0 raises when it has
    none; `state` elsewhere may be {}."""
    import torch
    import torch.distributed as dist

    if ranks.writes_run and not state:
        raise RuntimeError("rank 0 has no checkpoint to resume from")
    payload = b""
    if ranks.writes_run:
        buffer = io.BytesIO()
        torch.save(dict(state), buffer)
        payload = buffer.getvalue()
    size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    data = (torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device) if ranks.writes_run
            else torch.empty(int(size.item()), dtype=torch.uint8, device=device))
    dist.broadcast(data, src=0)
    if ranks.writes_run:
        return dict(state)
    loaded: dict[str, Any] = torch.load(io.BytesIO(data.cpu().numpy().tobytes()), map_location="cpu",
                                        weights_only=True)
    return loaded


def publish_failure(ranks: Ranks, message: str) -> None:
    """Leave this rank's failure in the job's store for rank 0 (nothing when the group is not up yet or
    the store is already gone: torchrun's own summary in stdout.log then names the rank)."""
    import torch.distributed as dist

    if not (ranks.distributed and dist.is_available() and dist.is_initialized()):
        return
    with contextlib.suppress(RuntimeError, ValueError):  # the store's host is gone: nothing left to tell
        dist.distributed_c10d._get_default_store().set(f"{FAILURE_KEY}{ranks.rank}", message)


def failure_note(ranks: Ranks, own: str) -> str:
    """Rank 0's failure message for the run's status: the failed ranks' own messages first when another
    rank failed (its own error is then mostly the broken collective), else `own`."""
    import torch.distributed as dist

    if not (ranks.distributed and dist.is_available() and dist.is_initialized()):
        return own
    found = []
    try:
        store = dist.distributed_c10d._get_default_store()
        for rank in range(1, ranks.world):
            key = f"{FAILURE_KEY}{rank}"
            if store.check([key]):
                found.append(f"rank {rank}: {store.get(key).decode('utf-8', errors='replace')}")
    except (RuntimeError, ValueError):
        pass
    return "; ".join([*found, f"rank 0: {own}"]) if found else own
