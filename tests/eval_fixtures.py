"""Players for the eval and arena tests: a tiny PPO checkpoint written by the project's checkpoint
writer (an untrained policy: what matters is that it is a network, not how well it plays), and `py:`
bots written into a temporary module."""

from __future__ import annotations

from pathlib import Path

import torch

import envs
from engine import ppo
from engine.checkpoint import save_checkpoint
from engine.profiles import resolve

BOTS = '''
def first_legal(state, rng):
    return state.legal_actions()[0]

def illegal(state, rng):
    return 99

def raises(state, rng):
    raise RuntimeError("my bot broke")

def vandal(state, rng):
    action = state.legal_actions()[0]
    state.queue.clear()
    state.hands[state.current_player].clear()
    return action
'''


def write_ppo_checkpoint(folder: Path, step: int = 1234, seed: int = 0, env: str = "beastybar") -> Path:
    """A complete PPO checkpoint of an untrained [16]-unit policy, through engine.checkpoint's writer."""
    cfg = resolve("balance", algo="ppo", env="beastybar", environ={},
                  assignments=["ppo.net_arch=[16]", "env.num_envs=2", "ppo.n_steps=8", "ppo.batch_size=8"])
    torch.manual_seed(seed)
    model = ppo.MaskablePPO("MlpPolicy", envs.make_vec("beastybar", 2, seed=0), n_steps=8, batch_size=8,
                            policy_kwargs={"net_arch": {"pi": [16], "vf": [16]}}, device="cpu", seed=seed)
    state = {**ppo.checkpoint_state(model, cfg), "step": step, "env": env}
    return save_checkpoint(folder, step, state)


def write_bots(folder: Path, name: str = "eval_test_bots") -> str:
    """A module of `py:` bots in `folder` (put it on sys.path); returns its name."""
    (folder / f"{name}.py").write_text(BOTS)
    (folder / "eval_test_broken.py").write_text("import no_such_module_here\n")
    return name
