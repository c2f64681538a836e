"""Profiles: resolution order, provenance, and one clear error per bad value."""

from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.profiles import HYPERPARAMS, SCHEMA, ResolvedConfig, list_profiles, parse_assignment, resolve


def test_shipped_profiles_resolve_and_cover_seed_004_knobs() -> None:
    assert {"speed", "balance"} <= set(list_profiles())
    speed = resolve("speed", environ={})
    assert speed.source("env.num_envs").startswith("profile:speed")
    # Each knob the profiles document is set by the profile file itself.
    for dotted in ("env.num_envs", "log.every_seconds", "dqn.updates_per_step", "dqn.batch_size", "dqn.warmup_steps",
                   "torch.amp", "torch.compile", "per.prefetch", "torch.pin_memory", "log.enabled",
                   "log.console", "log.tensorboard", "log.every_steps"):
        assert speed.source(dotted).startswith("profile:speed"), dotted


def test_layers_apply_in_order_with_sources(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("[ppo]\nbatch_size = 512\nn_epochs = 7\n[env]\nnum_envs = 32\n")
    cfg = resolve("balance", config_file=config, environ={"NUM_ENVS": "48", "USE_AMP": "0"},
                  cli={"run.total_steps": 1000}, assignments=["ppo.n_epochs=9"])
    assert cfg["ppo.gamma"] == 0.995 and cfg.source("ppo.gamma") == "hyperparams:ppo/beastybar"
    assert cfg["ppo.batch_size"] == 512 and cfg.source("ppo.batch_size") == str(config)
    assert cfg["env.num_envs"] == 48 and cfg.source("env.num_envs") == "env:NUM_ENVS"
    assert cfg["torch.amp"] is False and cfg.source("torch.amp") == "env:USE_AMP"
    assert cfg["run.total_steps"] == 1000 and cfg.source("run.total_steps") == "cli"
    assert cfg["ppo.n_epochs"] == 9 and cfg.source("ppo.n_epochs") == "--set"
    assert cfg["ppo.clip_range"] == 0.2 and cfg.source("ppo.clip_range") == "default"


def test_batch_size_env_override_follows_the_algo() -> None:
    assert resolve("balance", algo="ppo", environ={"BATCH_SIZE": "128"})["ppo.batch_size"] == 128
    dqn = resolve("balance", algo="dqn-per", env="skirmish", environ={"BATCH_SIZE": "128"})
    assert dqn["dqn.batch_size"] == 128 and dqn.source("dqn.batch_size") == "env:BATCH_SIZE"


def test_extends_chain_and_loop(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("[ppo]\nn_epochs = 2\n[env]\nnum_envs = 16\n")
    (tmp_path / "child.toml").write_text('extends = "base"\n[ppo]\nn_epochs = 3\n')
    cfg = resolve("child", profiles_dir=tmp_path, environ={})
    assert cfg["ppo.n_epochs"] == 3 and cfg.source("ppo.n_epochs").startswith("profile:child")
    assert cfg["env.num_envs"] == 16 and cfg.source("env.num_envs").startswith("profile:base")
    (tmp_path / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "b.toml").write_text('extends = "a"\n')
    with pytest.raises(UsageError, match="loops"):
        resolve("a", profiles_dir=tmp_path, environ={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile": "nope"}, r"unknown profile 'nope'; expected one of: .*balance.*speed"),
        ({"assignments": ["ppo.bogus=1"]}, r"--set: unknown key 'ppo.bogus'; expected one of: ppo.learning_rate"),
        ({"assignments": ["nosection.key=1"]}, r"unknown key 'nosection.key'"),
        ({"assignments": ["ppo.n_epochs=two"]}, r"ppo.n_epochs = 'two' has the wrong type; expected int"),
        ({"assignments": ["ppo.n_epochs=2.5"]}, r"wrong type; expected int"),
        ({"assignments": ["log.console=1"]}, r"log.console = 1 has the wrong type; expected bool"),
        ({"assignments": ["ppo.gamma=1.5"]}, r"ppo.gamma = 1.5 is out of range; expected in \[0, 1\]"),
        ({"assignments": ["env.num_envs=0"]}, r"env.num_envs = 0 is out of range; expected > 0"),
        ({"assignments": ["torch.device=tpu"]}, r"torch.device = 'tpu' is not allowed; expected one of: auto, cpu"),
        ({"assignments": ["ppo.net_arch=[64, 0]"]}, r"expected a list of positive integers"),
        ({"assignments": ["ppo.batch_size=100000"]}, r"ppo.batch_size = 100000 exceeds the rollout"),
        ({"assignments": ["dqn.buffer_size=10"]}, r"expected capacity >= batch size"),
        ({"assignments": ["gamma"]}, r"expected section.key=value"),
        ({"assignments": ["gamma=1"]}, r"should be section.key"),
        ({"environ": {"NUM_ENVS": "many"}}, r"env:NUM_ENVS: env.num_envs = 'many' has the wrong type"),
        ({"algo": "a2c"}, r"run.algo = 'a2c' is not allowed; expected one of: ppo, dqn-per"),
        ({"env": "skirmish"}, r"cli: run.env = 'skirmish' has no ppo trainer; expected one of: beastybar"),
        ({"assignments": ["env.opponent=bob"]}, r"env.opponent = 'bob' is not an opponent of beastybar; "
                                                r"expected one of: random, heuristic"),
        ({"algo": "dqn-per", "env": "skirmish", "assignments": ["env.opponent=random"]},
         r"env.opponent = 'random' is not an opponent of skirmish; expected one of: scripted"),
    ],
)
def test_bad_values_name_source_key_and_expectation(kwargs: dict, message: str) -> None:
    kwargs = {"profile": "balance", "environ": {}, **kwargs}
    with pytest.raises(UsageError, match=message) as info:
        resolve(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_config_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ppo]\nn_epochs = 'x'\n")
    with pytest.raises(UsageError, match=rf"{bad}: ppo.n_epochs = 'x'"):
        resolve("balance", config_file=bad, environ={})
    bad.write_text("[ppo\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        resolve("balance", config_file=bad, environ={})
    bad.write_text("n_epochs = 3\n")
    with pytest.raises(UsageError, match="should be a \\[section\\] table"):
        resolve("balance", config_file=bad, environ={})
    with pytest.raises(UsageError, match="does not exist"):
        resolve("balance", config_file=tmp_path / "missing.toml", environ={})


def test_bad_profile_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[log]\nevery_steps = -5\n")
    with pytest.raises(UsageError, match=r"broken.toml\): log.every_steps = -5 is out of range"):
        resolve("broken", profiles_dir=tmp_path, environ={})


def test_assignment_values_are_typed() -> None:
    assert parse_assignment("ppo.net_arch=[64, 64]") == ("ppo.net_arch", [64, 64])
    assert parse_assignment("torch.device=cpu") == ("torch.device", "cpu")
    assert parse_assignment("log.console=false") == ("log.console", False)
    assert parse_assignment("ppo.learning_rate=1e-3") == ("ppo.learning_rate", 1e-3)


def test_resolved_config_round_trips_through_run_json() -> None:
    cfg = resolve("speed", environ={}, assignments=["ppo.n_epochs=5"])
    again = ResolvedConfig.from_json(cfg.to_json(), "speed")
    assert dict(again.items()) == dict(cfg.items())



def test_a_run_made_before_a_key_existed_reads_as_its_default() -> None:
    """Resuming or reporting an older run: a key added since is the default the run ran with."""
    data = resolve("speed", environ={}, assignments=["ppo.n_epochs=5"]).to_json()
    del data["env.normalize"], data["ppo.n_epochs"]
    old = ResolvedConfig.from_json(data, "speed")
    assert old["env.normalize"] is SCHEMA["env"]["normalize"].default
    assert old["ppo.n_epochs"] == SCHEMA["ppo"]["n_epochs"].default
    assert old.source("env.normalize") == "default (key newer than the run)"


def test_every_key_has_help_and_a_valid_default() -> None:
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            assert key.help, f"{section}.{name}"
    resolve("balance", environ={})  # defaults pass their own checks through the layers


def test_algo_tables_apply_only_to_their_algo(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("[env]\nnum_envs = 64\n[algo.dqn-per.env]\nnum_envs = 8\n")
    assert resolve("p", profiles_dir=tmp_path, environ={})["env.num_envs"] == 64
    dqn = resolve("p", algo="dqn-per", env="skirmish", profiles_dir=tmp_path, environ={})
    assert dqn["env.num_envs"] == 8 and dqn.source("env.num_envs").endswith("[algo.dqn-per]")
    assert resolve("p", algo="dqn-per", env="skirmish", profiles_dir=tmp_path, environ={"NUM_ENVS": "4"},
                   )["env.num_envs"] == 4  # later layers still win
    (tmp_path / "bad.toml").write_text("[algo.a2c.env]\nnum_envs = 8\n")
    with pytest.raises(UsageError, match=r"NAME in: ppo, dqn-per"):
        resolve("bad", profiles_dir=tmp_path, environ={})
    (tmp_path / "bad.toml").write_text("[algo.ppo.run]\nalgo = 'dqn-per'\n")
    with pytest.raises(UsageError, match=r"cannot set run\.algo"):
        resolve("bad", profiles_dir=tmp_path, environ={})


def test_game_tables_apply_only_to_their_game_over_the_algo_tables(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("[ppo]\nn_epochs = 4\n[algo.ppo.ppo]\nn_epochs = 5\n"
                                     "[game.soccer.ppo]\nn_epochs = 6\n")
    assert resolve("p", algo="ppo", env="beastybar", profiles_dir=tmp_path, environ={})["ppo.n_epochs"] == 5
    soccer = resolve("p", algo="ppo", env="soccer", profiles_dir=tmp_path, environ={})
    assert soccer["ppo.n_epochs"] == 6 and soccer.source("ppo.n_epochs").endswith("[game.soccer]")
    assert resolve("p", algo="ppo", env="soccer", profiles_dir=tmp_path, environ={},
                   assignments=["ppo.n_epochs=7"])["ppo.n_epochs"] == 7  # later layers still win
    (tmp_path / "bad.toml").write_text("[game.chess.ppo]\nn_epochs = 8\n")
    with pytest.raises(UsageError, match=r"\[game\.NAME\.section\] tables need NAME in: .*soccer"):
        resolve("bad", profiles_dir=tmp_path, environ={})
    (tmp_path / "bad.toml").write_text("[game.soccer.run]\nenv = 'beastybar'\n")
    with pytest.raises(UsageError, match=r"\[game\.soccer\.run\] cannot set run\.algo or run\.env"):
        resolve("bad", profiles_dir=tmp_path, environ={})


def test_speed_profile_keeps_the_soccer_entropy_schedule() -> None:
    # The speed profile's entropy 0.01 -> 0.001 widened soccer's Gaussian instead of sharpening it
    # (docs/games/soccer.md, *Learning*): on soccer it uses the game's own schedule.
    soccer = resolve("speed", algo="ppo", env="soccer", environ={})
    game = HYPERPARAMS[("ppo", "soccer")]
    assert (soccer["ppo.ent_coef"], soccer["ppo.ent_coef_end"]) == (game["ppo.ent_coef"], game["ppo.ent_coef_end"])
    assert resolve("speed", algo="ppo", env="beastybar", environ={})["ppo.ent_coef_end"] == 0.001


def test_env_subproc_is_gone_and_use_subproc_envs_is_not_read(tmp_path: Path) -> None:
    # The batched core steps every game in one in-process call: there is no subprocess mode to switch on.
    with pytest.raises(UsageError, match=r"--set: unknown key 'env.subproc'; expected one of: env.num_envs"):
        resolve("balance", environ={}, assignments=["env.subproc=true"])
    (tmp_path / "old.toml").write_text("[env]\nsubproc = false\n")
    with pytest.raises(UsageError, match=r"old.toml\): unknown key 'env.subproc'"):
        resolve("old", profiles_dir=tmp_path, environ={})
    # An environment variable trainctl does not map is not its input: a stale USE_SUBPROC_ENVS changes nothing.
    assert dict(resolve("balance", environ={"USE_SUBPROC_ENVS": "1"}).items()) == dict(
        resolve("balance", environ={}).items())
