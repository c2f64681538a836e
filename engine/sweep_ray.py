"""A sweep's trials through Ray Tune on an existing Ray cluster (`trainctl sweep --backend ray`).

Ray is an optional extra (`pip install trainctl[ray]`): only this module imports it, and only inside its
functions, so `check_address` works (and says how to install Ray) without it. Each trial is one Tune
trial of a grid search over the trials' JSON. The trial function runs on whichever node Ray picks and
starts the trial there through engine.sweep.TrialPool (so engine.launcher, its checks, and a retry of a
failure), into a staging folder on that node's own disk (<tempdir>/trainctl-ray/<trial>). When Tune is
done, a task pinned to each trial's node packs its run folders (tar, in memory) and the driver unpacks
them into the sweep folder, numbered after the attempts already there, and the node's copy is removed.
So no storage need be shared, and the sweep folder on the driver's machine holds every run as if the
local backend had made it. Tune's own experiment files (which hold pickles) go to a temporary folder,
never the sweep folder. Trials finished before are skipped before Tune is asked, as the local backend
skips them; a trial whose node is lost before its runs are copied back is reported failed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.launcher import PROJECT_DIR
from engine.sweep import Trial, TrialOutcome, TrialPool, attempts, latest_run, run_error, run_figures

RAY_PORT = 6379  # a Ray head's default GCS port
CLIENT_PORT = 10001  # Ray Client's default port (ray://host)
CONNECT_TIMEOUT_S = 3.0


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of `host:port` or `ray://host[:port]`; UsageError for anything else."""
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(CLIENT_PORT if client else RAY_PORT)
    if not host or not port.isdigit():
        raise UsageError(f"Ray address {address!r} is not host:port; expected e.g. 10.0.0.5:6379 or ray://10.0.0.5")
    return host, int(port)


def check_address(address: str) -> None:
    """UsageError unless Ray can be imported and something listens at `address` (one TCP connect)."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UsageError(f"Ray address {address} is unreachable ({exc.strerror or exc}); expected a running Ray "
                         "cluster (`ray start --head` on its head node)") from None
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise UsageError("Ray is not installed; expected `pip install 'trainctl[ray]'` (ray[tune])") from None


def sweep_id(folder: Path) -> str:
    """A name for the sweep in `folder` that no other sweep folder shares: its name and a hash of its path."""
    return f"{folder.name}-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]}"


def stage_folder(trial_name: str, sweep_id: str) -> Path:
    """The node-local folder a trial's runs are made in before they are copied back."""
    return Path(tempfile.gettempdir()) / "trainctl-ray" / f"{sweep_id}-{trial_name}"


def run_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Tune's trial function: run one trial into its staging folder on this node; where it ran, and its
    figures."""
    import ray

    trial = Trial.from_json(config["trial"])
    stage = stage_folder(trial.name, config["sweep_id"])
    shutil.rmtree(stage, ignore_errors=True)  # left by an earlier sweep process that did not copy it back
    (outcome,) = TrialPool(stage, [trial]).run()
    result: dict[str, Any] = {"state": outcome.state, "error": outcome.error, "stage": str(stage),
                              "node": ray.get_runtime_context().get_node_id()}
    if outcome.run is not None:
        figures = run_figures(outcome.run)
        result.update(sps=figures.sps, win=figures.win, reward=figures.reward)
    return result


def pack_stage(stage: str) -> bytes:
    """The run folders in `stage` as an uncompressed tar, in memory; the stage is removed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for run in sorted(Path(stage).iterdir()):
            tar.add(run, arcname=run.name)
    shutil.rmtree(stage, ignore_errors=True)
    return buffer.getvalue()


def unpack_runs(data: bytes, folder: Path, trial: Trial) -> None:
    """Unpack a trial's packed run folders into the sweep folder, each renamed `<time>_<trial>-a<k>` with k
    after the attempts already there, oldest first."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".unpack-") as tmp, \
            tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
        for run in attempts(Path(tmp), trial):
            number = len(attempts(folder, trial)) + 1
            run.path.rename(folder / f"{run.run_id.split('_', 1)[0]}_{trial.name}-a{number}")


def run_trials(address: str, folder: Path, trials: Sequence[Trial], parallel: int,
               say: Callable[[str], None]) -> list[TrialOutcome]:
    """Run the unfinished `trials` as a Tune grid search on the cluster at `address`, at most `parallel`
    at once, and copy their runs back into `folder`; every trial's outcome, read from `folder`."""
    import ray
    from ray import tune
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    outcomes: dict[str, TrialOutcome] = {}
    todo = []
    for trial in trials:
        run = latest_run(folder, trial)
        if run is not None and run.effective_state() == "finished":
            outcomes[trial.name] = TrialOutcome(trial, "skipped", run)
            say(f"{trial.name} {trial.label}: finished before ({run.run_id}), skipped")
        else:
            todo.append(trial)
    if todo:
        ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_DIR)}},
                 log_to_driver=False, configure_logging=False)
        try:
            with tempfile.TemporaryDirectory(prefix="trainctl-tune-") as storage:
                say(f"{len(todo)} trials to Ray Tune at {address}, at most {parallel} at once")
                tuner = tune.Tuner(
                    tune.with_resources(run_trial, {"cpu": 1}),
                    param_space={"trial": tune.grid_search([t.to_json() for t in todo]),
                                 "sweep_id": sweep_id(folder)},
                    tune_config=tune.TuneConfig(max_concurrent_trials=parallel),
                    run_config=tune.RunConfig(storage_path=storage, name="sweep", verbose=0))
                grid = tuner.fit()
                pack = ray.remote(num_cpus=0)(pack_stage)
                for result in (grid[i] for i in range(len(grid))):
                    metrics, trial = result.metrics or {}, Trial.from_json((result.config or {})["trial"])
                    if "node" not in metrics:
                        say(f"{trial.name}: Ray lost the trial ({result.error})")
                        continue
                    pinned = NodeAffinitySchedulingStrategy(node_id=metrics["node"], soft=False)
                    unpack_runs(ray.get(pack.options(scheduling_strategy=pinned).remote(metrics["stage"])),
                                folder, trial)
                    say(f"{trial.name} {trial.label}: {metrics['state']} on node {metrics['node'][:8]}, "
                        "copied back" + (f" ({metrics['error']})" if metrics.get("error") else ""))
        finally:
            ray.shutdown()
    for trial in todo:
        run = latest_run(folder, trial)
        state = run.effective_state() if run is not None else "failed"
        error = None if state == "finished" else run_error(run) if run is not None else "Ray lost the trial"
        outcomes[trial.name] = TrialOutcome(trial, state, run, error)
    return [outcomes[t.name] for t in trials]
