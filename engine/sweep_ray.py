"""A sweep's trials through Ray Tune on an existing Ray cluster (`trainctl sweep --backend ray`).

Ray is an optional extra (`pip install trainctl[ray]`): only this module imports it, and only inside its
functions, so `check_address` works (and says how to install Ray) without it. Each trial is one Tune
trial of a grid search over the trials' JSON; the trial function runs on whichever node Ray picks and
starts the trial there through engine.sweep.TrialPool (so engine.launcher, its checks, and a retry of a
failure), writing the run folder into the sweep folder. That folder must therefore be one every node
sees: this machine for a single-node cluster, or shared storage (NFS, a mounted bucket) for several.
Tune's own experiment files (which hold pickles) go to a temporary folder, never the sweep folder.
Trials finished before are skipped before Tune is asked, exactly as the local backend skips them.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.launcher import PROJECT_DIR
from engine.sweep import Trial, TrialOutcome, TrialPool, latest_run, run_figures

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


def run_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Tune's trial function: run one trial into the sweep folder on this node; its figures."""
    trial = Trial.from_json(config["trial"])
    (outcome,) = TrialPool(Path(config["folder"]), [trial]).run()
    result: dict[str, Any] = {"state": outcome.state, "run": outcome.run.run_id if outcome.run else None,
                              "error": outcome.error}
    if outcome.run is not None:
        figures = run_figures(outcome.run)
        result.update(sps=figures.sps, win=figures.win, reward=figures.reward)
    return result


def run_trials(address: str, folder: Path, trials: Sequence[Trial], parallel: int,
               say: Callable[[str], None]) -> list[TrialOutcome]:
    """Run the unfinished `trials` as a Tune grid search on the cluster at `address`, at most `parallel`
    at once; every trial's outcome, read back from the sweep folder."""
    import ray
    from ray import tune

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
                                 "folder": str(folder.resolve())},
                    tune_config=tune.TuneConfig(max_concurrent_trials=parallel),
                    run_config=tune.RunConfig(storage_path=storage, name="sweep", verbose=0))
                grid = tuner.fit()
                for result in (grid[i] for i in range(len(grid))):
                    metrics = result.metrics or {}
                    name = Trial.from_json(result.config["trial"]).name if result.config else "?"
                    say(f"{name}: {metrics.get('state', 'failed')} on Ray"
                        + (f" ({result.error})" if result.error else ""))
        finally:
            ray.shutdown()
    for trial in todo:
        run = latest_run(folder, trial)
        state = run.effective_state() if run is not None else "failed"
        outcomes[trial.name] = TrialOutcome(trial, state, run, None if state == "finished" else "see its run folder")
    return [outcomes[t.name] for t in trials]
