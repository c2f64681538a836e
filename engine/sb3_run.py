"""Starting and running an SB3-based trainer's `learn()` (engine.ppo, engine.dqn): the torch set-up
and start banner, then SB3's own `learn()` with the run's callbacks (engine.sb3_callbacks).

Each trainer keeps what is its own: how it builds its model, which metrics it gathers, what its
checkpoint holds. Nothing here knows PPO or DQN; nothing here writes run files except through the
RunContext.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from engine.context import RunContext, TorchSetup, setup_torch, versions
from engine.sb3_callbacks import RunCallbacks


def start_run(ctx: RunContext, algo_line: str, resume_step: int, details: Mapping[str, str]) -> TorchSetup:
    """Set torch up, print the start banner (common lines, then the trainer's `details`) and log each
    CUDA switch's fate."""
    cfg = ctx.cfg
    torch_setup = setup_torch(cfg)
    ver = versions()
    ctx.banner({
        "algo": algo_line,
        "versions": " ".join(f"{k}={v}" for k, v in ver.items()),
        "device": f"{torch_setup.device} (threads {torch.get_num_threads()}, amp {torch_setup.amp}, "
                  f"compile {torch_setup.compile})",
        "profile": cfg.profile,
        "steps": f"{cfg['run.total_steps']:,}" + (f" (resuming at {resume_step:,}; total from "
                                                   f"{cfg.source('run.total_steps')})" if resume_step else ""),
        "seed": cfg["run.seed"],
        **details,
        "logging": f"every {cfg['log.every_steps']:,} steps or {cfg['log.every_seconds']:g} s, timing "
                   f"{cfg['log.timing']}, tensorboard {cfg['log.tensorboard']}, "
                   f"checkpoint every {cfg['checkpoint.every_steps']:,}",
    })
    for note in torch_setup.notes:
        ctx.log("info", note)
    return torch_setup


def learn(model: BaseAlgorithm, callbacks: RunCallbacks, ctx: RunContext, done: int, **learn_kwargs: Any) -> str:
    """Run SB3's `learn()` for the steps left with the run's `callbacks` (which make the last emission and
    checkpoint when it returns); with none left, only those. Returns "stopped" or "finished"."""
    remaining = ctx.cfg["run.total_steps"] - done
    if remaining > 0:
        model.learn(remaining, callback=callbacks, reset_num_timesteps=done == 0, **learn_kwargs)
    else:
        ctx.log("info", f"nothing to train: {done:,} of {ctx.cfg['run.total_steps']:,} steps already done")
        callbacks.init_callback(model)
        callbacks.on_training_start({}, {})
        callbacks.on_training_end()
    return "stopped" if ctx.stop else "finished"
