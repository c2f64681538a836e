"""Configuration keys, profiles, and their resolution with provenance (docs/profiles.md).

Resolution, later wins: built-in defaults < algo+env hyperparameters < profile (`profiles/NAME.toml`,
`extends = "other"` allowed) < `--config FILE` < environment overrides (the names game-AI trainers
already use, e.g. `NUM_ENVS=12`) < command-line flags and `--set section.key=value`. Every resolved value remembers its
source, and the whole is written to run.json. An unknown key, a wrong type or an out-of-range value
raises `UsageError` naming the source (file), the key and what was expected, before anything starts.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.trainers import TRAINER_GAMES
from envs import GAMES, opponents, reward_parts

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
ALGOS = ("ppo", "dqn-per", "worldmodel")
# the section of each algorithm's hyperparameters
ALGO_SECTION = {"ppo": "ppo", "dqn-per": "dqn", "worldmodel": "worldmodel"}
# Every section only one algorithm's trainer reads, by algorithm.
ALGO_SECTIONS: dict[str, frozenset[str]] = {"ppo": frozenset({"ppo"}), "dqn-per": frozenset({"dqn", "per"}),
                                            "worldmodel": frozenset({"worldmodel", "data", "dist"})}


def read_by(key: str, algo: str) -> bool:
    """Whether a run of `algo` reads the setting `section.key` (any key, for an algo this build does not
    know, such as a wrapped trainer's label)."""
    if algo not in ALGO_SECTIONS:
        return True
    others = frozenset().union(*ALGO_SECTIONS.values()) - ALGO_SECTIONS[algo]
    return key.partition(".")[0] not in others


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default, allowed values and meaning."""

    type: type | tuple[type, ...]
    default: Any
    help: str
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    choices: tuple[str, ...] = ()


def _positive(v: Any) -> bool:
    return bool(v > 0)


def _non_negative(v: Any) -> bool:
    return bool(v >= 0)


def _unit(v: Any) -> bool:
    return bool(0.0 <= v <= 1.0)


def _open_unit(v: Any) -> bool:
    return bool(0.0 < v < 1.0)


def _number_table(v: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v.values())


def _int_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and x > 0 for x in v)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _port(v: Any) -> bool:
    return bool(1 <= v <= 65535)


def _above_zero_unit(v: Any) -> bool:
    return bool(0.0 < v <= 1.0)


POS, NONNEG, UNIT = (_positive, "> 0"), (_non_negative, ">= 0"), (_unit, "in [0, 1]")
OPEN_UNIT, ABOVE_ZERO_UNIT = (_open_unit, "in (0, 1)"), (_above_zero_unit, "in (0, 1]")


def _k(type_: type | tuple[type, ...], default: Any, help_: str, rule: tuple[Callable[[Any], bool], str]
       | None = None, choices: tuple[str, ...] = ()) -> Key:
    check, expected = rule if rule else (None, "")
    return Key(type_, default, help_, check, expected, choices)


NUMBER = (int, float)
# The (algo, game) pairs that train by self-play (selfplay.enabled), the pool entries that are not scripted
# players, and the shapes of its schedules (engine.selfplay).
SELFPLAY_RUNS = frozenset({("ppo", "beastybar")})
SELFPLAY_KINDS = ("current", "past")
SCHEDULES = ("linear", "cosine")

SCHEMA: dict[str, dict[str, Key]] = {
    "run": {
        "algo": _k(str, "ppo", "trainer", choices=ALGOS),
        "env": _k(str, "beastybar", "game (envs.GAMES)", choices=tuple(GAMES)),
        "total_steps": _k(int, 200_000, "env steps to train for", POS),
        "seed": _k(int, 0, "seed of the games, the policy and the samplers", NONNEG),
        "max_minutes": _k(NUMBER, 0, "minutes of the run process (start-up included) within which it stops as "
                          "if asked (with a checkpoint; resumable), early by its longest update or evaluation "
                          "so far so as to end in time; counted afresh by a resume; 0 = no limit",
                          NONNEG),
    },
    "env": {
        "num_envs": _k(int, 64, "games stepped together in one core call (NUM_ENVS)", POS),
        "opponent": _k(str, "random", "scripted opponent of the agent"),
        "scoring": _k(str, "points", "Beasty Bar scoring variant", choices=("points", "count")),
        "normalize": _k(bool, False, "PPO: VecNormalize of observations and rewards, its statistics saved in "
                        "every checkpoint"),
        "reward_weights": _k(dict, {}, "weights of the game's reward parts, {part = number}; parts left out keep "
                             "the game's own (soccer; beastybar: outcome, margin)",
                             (_number_table, "a table of finite numbers")),
    },
    "ppo": {
        "learning_rate": _k(NUMBER, 3e-4, "Adam step size at the start", POS),
        "learning_rate_end": _k(NUMBER, 3e-4, "step size at the end (linear schedule)", NONNEG),
        "n_steps": _k(int, 64, "rollout length per env before each update", POS),
        "batch_size": _k(int, 1024, "minibatch size of the update", POS),
        "n_epochs": _k(int, 4, "passes over each rollout", POS),
        "gamma": _k(NUMBER, 0.99, "discount", UNIT),
        "gae_lambda": _k(NUMBER, 0.95, "GAE lambda", UNIT),
        "clip_range": _k(NUMBER, 0.2, "PPO clip range", POS),
        "ent_coef": _k(NUMBER, 0.01, "entropy bonus at the start", NONNEG),
        "ent_coef_end": _k(NUMBER, 0.01, "entropy bonus at the end (linear schedule)", NONNEG),
        "vf_coef": _k(NUMBER, 0.5, "value loss weight", NONNEG),
        "max_grad_norm": _k(NUMBER, 0.5, "gradient clipping norm", POS),
        "net_arch": _k(list, [128, 128], "hidden layer sizes of policy and value nets", (_int_list,
                       "a list of positive integers")),
        "target_kl": _k(NUMBER, 0.0, "early stop of an update past this KL (0 = off)", NONNEG),
    },
    "dqn": {
        "learning_rate": _k(NUMBER, 1e-4, "Adam step size", POS),
        "buffer_size": _k(int, 200_000, "replay capacity in transitions", POS),
        "batch_size": _k(int, 256, "replay batch per gradient step (batch_size)", POS),
        "warmup_steps": _k(int, 2000, "env steps before learning starts (warmup_steps)", NONNEG),
        "updates_per_step": _k(int, 1, "gradient steps per vec-env step (UPDATES_PER_STEP)", POS),
        "gamma": _k(NUMBER, 0.99, "discount", UNIT),
        "target_update_interval": _k(int, 2000, "env steps between target-network syncs", POS),
        "exploration_fraction": _k(NUMBER, 0.2, "share of training over which epsilon decays", UNIT),
        "exploration_initial_eps": _k(NUMBER, 1.0, "epsilon at the start", UNIT),
        "exploration_final_eps": _k(NUMBER, 0.05, "epsilon at the end of the decay", UNIT),
        "double_dqn": _k(bool, True, "double-DQN target"),
        "max_grad_norm": _k(NUMBER, 10.0, "gradient clipping norm", POS),
        "net_arch": _k(list, [256, 256], "hidden layer sizes of the Q-network", (_int_list,
                       "a list of positive integers")),
    },
    "per": {
        "alpha": _k(NUMBER, 0.6, "priority exponent", NONNEG),
        "beta": _k(NUMBER, 0.4, "importance-sampling exponent at the start", UNIT),
        "beta_end": _k(NUMBER, 1.0, "importance-sampling exponent at the end", UNIT),
        "eps": _k(NUMBER, 1e-6, "added to |TD error|", POS),
        "prefetch": _k(bool, True, "PREFETCH: sample the next batch on a background thread"),
    },
    # The supervised world-model trainer (engine/worldmodel.py, docs/worldmodel.md): its budget is epochs over
    # the dataset in data.dir, and its step is the training samples seen.
    "worldmodel": {
        "batch_size": _k(int, 1024, "training samples per gradient step (BATCH_SIZE)", POS),
        "lr": _k(NUMBER, 0.0, "Adam step size; 0 = lr_base x sqrt(batch_size / batch_base)", NONNEG),
        "lr_base": _k(NUMBER, 1e-3, "step size at batch_base (the square-root rule scales it to batch_size)", POS),
        "batch_base": _k(int, 1024, "the batch size lr_base was tuned at", POS),
        "epochs": _k(int, 60, "passes over the training split (the run's budget)", POS),
        "early_stop_patience": _k(int, 15, "epochs without a better val_total before stopping (0 = off)", NONNEG),
        "plateau_factor": _k(NUMBER, 0.5, "step size x this when val_total plateaus", OPEN_UNIT),
        "plateau_patience": _k(int, 5, "epochs without a better val_total before the step size drops", NONNEG),
        "w_pass": _k(NUMBER, 5.0, "weight of the HP-delta loss on turns where the agent passed", NONNEG),
        "w_attack_hp": _k(NUMBER, 12.0, "weight of the HP-delta loss on turns where the agent attacked", NONNEG),
        "w_switch_hp": _k(NUMBER, 1.0, "weight of the HP-delta loss on turns where the agent switched", NONNEG),
        "w_ko": _k(NUMBER, 1.0, "weight of the KO flags' loss", NONNEG),
        "w_done": _k(NUMBER, 1.0, "weight of the done flag's loss", NONNEG),
        "w_reward": _k(NUMBER, 1.0, "weight of the reward's loss", NONNEG),
        "hp_noise": _k(int, 0, "training only: raise each living creature's HP input by 0..this HP, drawn each epoch "
                       "(the rollout's drift; 0 = clean inputs)", NONNEG),
        "hidden": _k(list, [256, 256], "hidden layer sizes of the MLP", (_int_list, "a list of positive integers")),
        "eval_batch_size": _k(int, 8192, "validation samples per forward pass", POS),
        "checkpoint_every_epochs": _k(int, 1, "epochs between periodic checkpoints (checkpoint.keep of them kept)",
                                      POS),
    },
    "data": {
        "dir": _k(str, "", "the dataset folder a supervised trainer reads (`trainctl data gen`; --data DIR)"),
    },
    # Many processes, many machines (engine.distributed): the world-model trainer through torch.distributed.run.
    "dist": {
        "nproc": _k(int, 1, "processes on this machine (--nproc; torchrun's --nproc-per-node; at most its cores, "
                    "or its GPUs on CUDA)", POS),
        "nnodes": _k(int, 1, "machines in the job (--nnodes)", POS),
        "node_rank": _k(int, 0, "this machine's place among them, 0 for the one that writes the run (--node-rank)",
                        NONNEG),
        "master_addr": _k(str, "127.0.0.1", "address of machine 0 (--master-addr; read when nnodes > 1)"),
        "master_port": _k(int, 29500, "rendezvous port on machine 0 (--master-port; read when nnodes > 1)",
                          (_port, "in 1..65535")),
    },
    "torch": {
        "device": _k(str, "auto", "auto = cuda when present", choices=("auto", "cpu", "cuda")),
        "amp": _k(bool, False, "USE_AMP: mixed precision on CUDA (off on CPU)"),
        "compile": _k(bool, False, "USE_COMPILE: torch.compile the networks on CUDA (off on CPU)"),
        "tf32": _k(bool, False, "TF32 matmuls on CUDA"),
        "cudnn_benchmark": _k(bool, False, "cuDNN autotuner on CUDA"),
        "pin_memory": _k(bool, False, "PIN_MEMORY: page-locked host buffers for transfers to CUDA"),
        "threads": _k(int, 0, "torch CPU threads (0 = a fair share of the cores among the runs on this "
                      "machine)", NONNEG),
    },
    "log": {
        "enabled": _k(bool, True, "TRAIN_LOG_ENABLED: metric events (losses, rewards, rates)"),
        "console": _k(bool, True, "TRAIN_LOG_TO_CONSOLE: echo [PERF]/[METRIC] lines to stdout"),
        "tensorboard": _k(bool, True, "TRAIN_LOG_TO_FILE: TensorBoard logs in tb/ (events.jsonl is "
                          "always written: it is the run's contract)"),
        "every_steps": _k(int, 10_000, "LOG_EVERY: env steps between perf/metric events", POS),
        "every_seconds": _k(NUMBER, 10.0, "seconds of wall time between perf/metric events at most (an event "
                            "comes at the first vec-env step past it, whatever every_steps says)", POS),
        "reward_debug": _k(bool, False, "REWARD_DEBUG: log the reward's parts"),
        "timing": _k(bool, True, "time the [PERF] phases (off only to measure what timing costs)"),
    },
    "checkpoint": {
        "every_steps": _k(int, 100_000, "env steps between checkpoints (0 = only at the end)", NONNEG),
        "keep": _k(int, 3, "periodic checkpoints kept", POS),
    },
    "eval": {
        "every_steps": _k(int, 0, "env steps between evaluations against eval.suite, the best policy kept in "
                          "best/ (0 = off; PPO on Beasty Bar and soccer)", NONNEG),
        "games": _k(int, 200, "games against each player of the suite, each side moving first in half", POS),
        "suite": _k(list, [], "scripted players to evaluate against ([] = every one the game has)",
                    (_str_list, "a list of player names")),
        "seed": _k(int, 10_000, "first deal seed of the evaluation games (the same deals every time)", NONNEG),
    },
    # Self-play (engine.selfplay, docs/selfplay.md): PPO on Beasty Bar against a pool of opponents.
    "selfplay": {
        "enabled": _k(bool, False, "train against an opponent pool (the live policy, frozen past policies, "
                      "scripted players) instead of env.opponent; PPO on Beasty Bar"),
        "pool_size": _k(int, 5, "frozen past policies kept in the pool (K; the oldest dropped)", POS),
        "snapshot_every_updates": _k(int, 10, "PPO updates between frozen copies of the policy (M)", POS),
        "weight_floor": _k(NUMBER, 0.05, "least draw weight of an entry before normalising: weight = "
                           "max(1 - win rate, floor)", ABOVE_ZERO_UNIT),
        "opponents": _k(list, [], "pool entries: scripted player names, \"current\" (the live policy), \"past\" "
                        "(the frozen copies); [] = all of them", (_str_list, "a list of names")),
        "temperature": _k(NUMBER, 1.0, "sampling temperature of the neural opponents at the start (1 = the "
                          "policy's own distribution, lower is greedier)", POS),
        "temperature_end": _k(NUMBER, 1.0, "sampling temperature at the end", POS),
        "temperature_schedule": _k(str, "linear", "shape of the temperature schedule",
                                   choices=SCHEDULES),
        "entropy_schedule": _k(str, "linear", "shape of the entropy bonus schedule ppo.ent_coef -> "
                               "ppo.ent_coef_end", choices=SCHEDULES),
    },
}
# The (algo, game) pairs whose trainer evaluates during training (eval.every_steps > 0).
EVAL_RUNS = frozenset({("ppo", "beastybar"), ("ppo", "soccer")})

# Environment overrides, under the names game-AI training scripts already use. "{algo}" is the section of
# the run's algorithm.
ENV_OVERRIDES: dict[str, str] = {
    "NUM_ENVS": "env.num_envs",
    "UPDATES_PER_STEP": "dqn.updates_per_step",
    "BATCH_SIZE": "{algo}.batch_size",
    "WARMUP_STEPS": "dqn.warmup_steps",
    "USE_AMP": "torch.amp",
    "USE_COMPILE": "torch.compile",
    "PREFETCH": "per.prefetch",
    "PIN_MEMORY": "torch.pin_memory",
    "TRAIN_LOG_ENABLED": "log.enabled",
    "TRAIN_LOG_TO_CONSOLE": "log.console",
    "TRAIN_LOG_TO_FILE": "log.tensorboard",
    "LOG_EVERY": "log.every_steps",
    "REWARD_DEBUG": "log.reward_debug",
}

# Hyperparameters that suit an algorithm on a game, between the defaults and the profile.
HYPERPARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "beastybar"): {"ppo.n_steps": 64, "ppo.gamma": 0.995, "ppo.ent_coef": 0.02,
                           "ppo.ent_coef_end": 0.005},
    ("dqn-per", "skirmish"): {"dqn.gamma": 0.98, "env.opponent": "scripted"},
    # Entropy 0.001 -> 0, not the seed plan's 0.01 -> 0.001: at 0.01 the Gaussian's std grew past 1 and the
    # policy never beat the chaser in 36 min; at 0.001 -> 0 it did in 10 (docs/games/soccer.md, *Learning*).
    ("ppo", "soccer"): {"env.opponent": "chaser", "env.normalize": True, "ppo.gamma": 0.995,
                        "ppo.learning_rate": 3e-4, "ppo.learning_rate_end": 5e-5, "ppo.ent_coef": 0.001,
                        "ppo.ent_coef_end": 0.0},
}


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str


class ResolvedConfig:
    """The resolved configuration: `cfg["ppo.batch_size"]` or `cfg.section("ppo")`; `.source(key)` says
    where each value came from."""

    def __init__(self, settings: Mapping[str, Setting], profile: str) -> None:
        self._settings = dict(settings)
        self.profile = profile

    def __getitem__(self, dotted: str) -> Any:
        return self._settings[dotted].value

    def source(self, dotted: str) -> str:
        return self._settings[dotted].source

    def section(self, name: str) -> dict[str, Any]:
        prefix = name + "."
        return {k[len(prefix):]: s.value for k, s in self._settings.items() if k.startswith(prefix)}

    def items(self) -> Iterable[tuple[str, Setting]]:
        return self._settings.items()

    def to_json(self) -> dict[str, dict[str, Any]]:
        """{"section.key": {"value": v, "source": s}} for run.json."""
        return {k: {"value": s.value, "source": s.source} for k, s in self._settings.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], profile: str) -> ResolvedConfig:
        """Rebuild from run.json's "config" (values are re-checked against the schema)."""
        settings = {}
        for dotted, entry in data.items():
            if not isinstance(entry, dict) or "value" not in entry:
                raise UsageError(f"run.json: config entry {dotted!r} should be {{value, source}}")
            settings[dotted] = Setting(_check(dotted, entry["value"], "run.json"), str(entry.get("source")))
        # A run made before a key existed ran as that key's default: resume and read it that way.
        for dotted in _all_keys():
            if dotted not in settings:
                section, _, name = dotted.partition(".")
                settings[dotted] = Setting(SCHEMA[section][name].default, "default (key newer than the run)")
        _check_together(settings)
        return cls(settings, profile)


def _all_keys() -> list[str]:
    return [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys]


def _check(dotted: str, value: Any, source: str) -> Any:
    """The value, validated against the schema (ints accepted where floats are expected)."""
    section, _, name = dotted.partition(".")
    key = SCHEMA.get(section, {}).get(name)
    if key is None:
        in_section = [f"{section}.{k}" for k in SCHEMA[section]] if section in SCHEMA else _all_keys()
        known = ", ".join(in_section)
        raise UsageError(f"{source}: unknown key {dotted!r}; expected one of: {known}")
    types = key.type if isinstance(key.type, tuple) else (key.type,)
    ok_type = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok_type:
        want = " or ".join(t.__name__ for t in types)
        raise UsageError(f"{source}: {dotted} = {value!r} has the wrong type; expected {want}")
    if key.choices and value not in key.choices:
        raise UsageError(f"{source}: {dotted} = {value!r} is not allowed; expected one of: {', '.join(key.choices)}")
    if key.check is not None and not key.check(value):
        raise UsageError(f"{source}: {dotted} = {value!r} is out of range; expected {key.expected}")
    return value


@dataclass(frozen=True)
class Layer:
    """One file's values: `values` apply to every run, `by_algo[name]` only to runs of that algo
    (written `[algo.NAME.section]`, e.g. `[algo.dqn-per.env]`), on top of `values`, and `by_game[name]`
    only to runs of that game (`[game.NAME.section]`, e.g. `[game.soccer.ppo]`), on top of both."""

    source: str
    values: dict[str, Any]
    by_algo: dict[str, dict[str, Any]]
    by_game: dict[str, dict[str, Any]]


def _flatten(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """{"section": {"key": v}} -> {"section.key": v}, rejecting anything that is not two levels deep."""
    flat = {}
    for section, body in table.items():
        if not isinstance(body, dict):
            raise UsageError(f"{source}: {section!r} should be a [section] table; expected sections "
                             f"{', '.join(SCHEMA)}")
        for key, value in body.items():
            flat[f"{section}.{key}"] = value
    return flat


def _layer(table: Mapping[str, Any], source: str, label: str) -> Layer:
    """A Layer from a parsed TOML file (`extends` is the caller's business)."""
    body = {k: v for k, v in table.items() if k not in ("extends", "algo", "game")}
    return Layer(label, _flatten(body, source), _scoped(table, "algo", ALGOS, source),
                 _scoped(table, "game", tuple(GAMES), source))


def _scoped(table: Mapping[str, Any], scope: str, names: tuple[str, ...], source: str) -> dict[str, dict[str, Any]]:
    """The `[SCOPE.NAME.section]` tables of a profile file, flat by NAME; they cannot choose the algo or
    game that selects them."""
    scoped = table.get(scope, {})
    if not isinstance(scoped, dict) or any(n not in names for n in scoped):
        raise UsageError(f"{source}: [{scope}.NAME.section] tables need NAME in: {', '.join(names)}")
    flat = {n: _flatten(t, source) for n, t in scoped.items()}
    for name, values in flat.items():
        if {"run.algo", "run.env"} & values.keys():
            raise UsageError(f"{source}: [{scope}.{name}.run] cannot set run.algo or run.env")
    return flat


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def list_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in profiles_dir.glob("*.toml"))


def profile_summary(name: str, profiles_dir: Path = PROFILES_DIR) -> str:
    """The profile file's first comment line, without the `#`."""
    for line in (profiles_dir / f"{name}.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_profile(name: str, profiles_dir: Path = PROFILES_DIR) -> list[Layer]:
    """The profile's layers, base first, following `extends`."""
    layers: list[Layer] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            raise UsageError(f"profile {name!r}: `extends` loops through {' -> '.join([*seen, current])}")
        path = profiles_dir / f"{current}.toml"
        if not path.is_file():
            known = ", ".join(list_profiles(profiles_dir)) or "none"
            raise UsageError(f"unknown profile {current!r}; expected one of: {known}")
        seen.append(current)
        table = _load_toml(path)
        parent = table.get("extends")
        if parent is not None and not isinstance(parent, str):
            raise UsageError(f"{path}: extends = {parent!r}; expected a profile name")
        layers.insert(0, _layer(table, str(_display(path)), f"profile:{current} ({_display(path)})"))
        current = parent
    return layers


def _display(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def parse_assignment(text: str, source: str = "--set") -> tuple[str, Any]:
    """`section.key=value` -> (dotted key, value); the value is read as TOML (numbers, booleans, lists)
    and otherwise taken as a plain string."""
    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise UsageError(f"{source} {text!r}: expected section.key=value")
    if "." not in dotted:
        raise UsageError(f"{source} {text!r}: key {dotted!r} should be section.key (e.g. ppo.batch_size)")
    return dotted, _parse_value(raw.strip())


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _parse_env_value(raw: str, dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    if SCHEMA[section][name].type is bool and raw.strip().lower() in ("0", "1", "true", "false", "yes", "no"):
        return raw.strip().lower() in ("1", "true", "yes")
    return _parse_value(raw)


def resolve(
    profile: str,
    *,
    algo: str | None = None,
    env: str | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    assignments: Iterable[str] = (),
    profiles_dir: Path = PROFILES_DIR,
) -> ResolvedConfig:
    """Resolve every key through the layers; `cli` holds flags such as {"run.total_steps": 4096}."""
    settings = {dotted: Setting(key_default, "default") for dotted, key_default in
                ((f"{s}.{k}", key.default) for s, keys in SCHEMA.items() for k, key in keys.items())}

    def apply(values: Mapping[str, Any], source: str) -> None:
        for dotted, value in values.items():
            settings[dotted] = Setting(_check(dotted, value, source), source)

    profile_layers = load_profile(profile, profiles_dir)
    config_layer = _layer(_load_toml(config_file), str(config_file), str(config_file)) if config_file else None
    cli = dict(cli or {})
    if algo is not None:
        cli["run.algo"] = algo
    if env is not None:
        cli["run.env"] = env
    sets = [parse_assignment(a) for a in assignments]

    # algo and env choose the hyperparameter layer, so find them first through the same precedence.
    def pick(dotted: str) -> Any:
        value = settings[dotted].value
        for layer in profile_layers:
            value = layer.values.get(dotted, value)
        if config_layer:
            value = config_layer.values.get(dotted, value)
        value = cli.get(dotted, value)
        for k, v in sets:
            value = v if k == dotted else value
        return _check(dotted, value, "run")

    algo_name, env_name = pick("run.algo"), pick("run.env")
    apply(HYPERPARAMS.get((algo_name, env_name), {}), f"hyperparams:{algo_name}/{env_name}")
    for layer in (*profile_layers, *([config_layer] if config_layer else [])):
        apply(layer.values, layer.source)
        apply(layer.by_algo.get(algo_name, {}), f"{layer.source} [algo.{algo_name}]")
        apply(layer.by_game.get(env_name, {}), f"{layer.source} [game.{env_name}]")
    environ = os.environ if environ is None else environ
    for name, target in ENV_OVERRIDES.items():
        if name in environ:
            dotted = target.format(algo=ALGO_SECTION[algo_name])
            apply({dotted: _parse_env_value(environ[name], dotted)}, f"env:{name}")
    apply(cli, "cli")
    for dotted, value in sets:
        apply({dotted: value}, "--set")
    _check_together(settings)
    return ResolvedConfig(settings, profile)


def _check_together(settings: Mapping[str, Setting]) -> None:
    """Constraints between keys, named by the source of the value that breaks them."""
    def v(k: str) -> Any:
        return settings[k].value

    algo, game = v("run.algo"), v("run.env")
    if algo == "worldmodel":  # the data folder first: a wrong folder is the likelier mistake than the game
        _check_worldmodel(settings)
    if game not in TRAINER_GAMES[algo]:
        raise UsageError(f"{settings['run.env'].source}: run.env = {game!r} has no {algo} trainer; expected one of: "
                         f"{', '.join(TRAINER_GAMES[algo])}")
    unknown = sorted(set(v("env.reward_weights")) - set(reward_parts(game)))
    if unknown:
        raise UsageError(f"{settings['env.reward_weights'].source}: env.reward_weights has "
                         f"{', '.join(map(repr, unknown))}, not a reward part of {game}; expected: "
                         f"{', '.join(reward_parts(game)) or 'none'}")
    if v("env.opponent") not in opponents(game):
        raise UsageError(f"{settings['env.opponent'].source}: env.opponent = {v('env.opponent')!r} is not an opponent "
                         f"of {game}; expected one of: {', '.join(opponents(game))}")
    if v("eval.every_steps") and (algo, game) not in EVAL_RUNS:
        raise UsageError(f"{settings['eval.every_steps'].source}: eval.every_steps = {v('eval.every_steps')} but "
                         f"{algo} on {game} does not evaluate during training; expected 0 (or "
                         f"{', '.join(f'{a} on {g}' for a, g in sorted(EVAL_RUNS))})")
    unknown = [name for name in v("eval.suite") if name not in opponents(game)]
    if unknown:
        raise UsageError(f"{settings['eval.suite'].source}: eval.suite names {', '.join(map(repr, unknown))}, not "
                         f"a scripted player of {game}; expected some of: {', '.join(opponents(game))}")
    _check_selfplay(settings)
    _check_dist(settings)
    rollout = v("ppo.n_steps") * v("env.num_envs")
    if v("run.algo") == "ppo" and v("ppo.batch_size") > rollout:
        raise UsageError(f"{settings['ppo.batch_size'].source}: ppo.batch_size = {v('ppo.batch_size')} exceeds "
                         f"the rollout (ppo.n_steps x env.num_envs = {rollout}); expected <= {rollout}")
    # SB3 keeps buffer_size // num_envs rows of num_envs transitions: that is the replay capacity.
    capacity = max(v("dqn.buffer_size") // v("env.num_envs"), 1) * v("env.num_envs")
    if capacity < v("dqn.batch_size"):
        raise UsageError(f"{settings['dqn.buffer_size'].source}: dqn.buffer_size = {v('dqn.buffer_size')} holds "
                         f"{capacity} transitions with env.num_envs = {v('env.num_envs')}, below dqn.batch_size = "
                         f"{v('dqn.batch_size')}; expected capacity >= batch size")



def _check_selfplay(settings: Mapping[str, Setting]) -> None:
    """The `selfplay.*` keys against the run: a game and trainer that self-play, names the pool knows."""
    def v(k: str) -> Any:
        return settings[k].value

    algo, game = v("run.algo"), v("run.env")
    if not v("selfplay.enabled"):
        return
    if (algo, game) not in SELFPLAY_RUNS:
        raise UsageError(f"{settings['selfplay.enabled'].source}: selfplay.enabled = true but {algo} on {game} "
                         f"does not self-play; expected false (or "
                         f"{', '.join(f'{a} on {g}' for a, g in sorted(SELFPLAY_RUNS))})")
    if v("env.normalize"):
        raise UsageError(f"{settings['env.normalize'].source}: env.normalize = true with selfplay.enabled; expected "
                         f"false (the pool's opponents read raw observations)")
    known = (*SELFPLAY_KINDS, *opponents(game))
    unknown = [name for name in v("selfplay.opponents") if name not in known]
    if unknown:
        raise UsageError(f"{settings['selfplay.opponents'].source}: selfplay.opponents names "
                         f"{', '.join(map(repr, unknown))}; expected some of: {', '.join(known)}")


def _check_dist(settings: Mapping[str, Setting]) -> None:
    """More than one process only for the trainer that runs on torchrun, and a node rank among the nodes."""
    def v(k: str) -> Any:
        return settings[k].value

    if (v("dist.nproc") > 1 or v("dist.nnodes") > 1) and v("run.algo") != "worldmodel":
        key = "dist.nproc" if v("dist.nproc") > 1 else "dist.nnodes"
        raise UsageError(f"{settings[key].source}: {key} = {v(key)} but the {v('run.algo')} trainer runs in one "
                         "process; expected 1 (only --algo worldmodel runs on many processes)")
    if v("dist.node_rank") >= v("dist.nnodes"):
        raise UsageError(f"{settings['dist.node_rank'].source}: dist.node_rank = {v('dist.node_rank')} is not "
                         f"below dist.nnodes = {v('dist.nnodes')}; expected 0..{v('dist.nnodes') - 1}")


def _check_worldmodel(settings: Mapping[str, Setting]) -> None:
    """The world-model trainer's data folder: given, a dataset (engine.datasets), and of the run's game."""
    from engine.datasets import read_meta  # numpy: only for a world-model run

    folder, env = settings["data.dir"], settings["run.env"]
    if not folder.value:
        raise UsageError(f"{folder.source}: data.dir is empty; expected --data DIR, a folder written by "
                         "`trainctl data gen`")
    game = read_meta(Path(folder.value))["game"]
    if game != env.value:
        raise UsageError(f"{env.source}: run.env = {env.value!r} but {folder.value} holds a dataset of {game!r}; "
                         f"expected --env {game} (or no --env)")
