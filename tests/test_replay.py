"""PrioritizedReplayBuffer: SB3 layout and semantics, priorities, weights, bad input, and SB3's DQN."""

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from scipy.stats import chisquare
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from engine.errors import UsageError
from engine.prefetch import BatchPrefetcher
from engine.replay import PrioritizedReplayBuffer

OBS_SPACE = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
ACTION_SPACE = gym.spaces.Discrete(4)


def make_buffer(capacity: int = 64, n_envs: int = 1, **kwargs) -> PrioritizedReplayBuffer:
    kwargs.setdefault("seed", 0)
    return PrioritizedReplayBuffer(capacity, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=n_envs, **kwargs)


def add_steps(buffer: PrioritizedReplayBuffer, steps: int, start: int = 0, **kwargs) -> None:
    """Step t of env e stores obs [t, e, 0], action (t + e) % 4, reward t + e / 10."""
    n = buffer.n_envs
    for t in range(start, start + steps):
        obs = np.array([[t, e, 0] for e in range(n)], dtype=np.float32)
        buffer.add(
            obs,
            obs + 1,
            np.array([(t + e) % 4 for e in range(n)]),
            np.array([t + e / 10 for e in range(n)], dtype=np.float32),
            np.zeros(n, dtype=np.float32),
            [{} for _ in range(n)],
            **kwargs,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "alpha"),
        ({"beta": 1.5}, "beta"),
        ({"beta": -0.01}, "beta"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"batch_size": 65}, "capacity=64"),
        ({"optimize_memory_usage": True}, "optimize_memory_usage"),
    ],
)
def test_parameters_out_of_range_are_usage_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_buffer(**kwargs)


def test_sample_refuses_a_batch_larger_than_capacity_and_a_bad_beta() -> None:
    buffer = make_buffer(16)
    add_steps(buffer, 4)
    with pytest.raises(UsageError, match="capacity=16"):
        buffer.sample(17)
    with pytest.raises(UsageError, match="beta"):
        buffer.sample(4, beta=2.0)
    with pytest.raises(ValueError, match="nothing stored"):
        make_buffer().sample(4)


def test_tree_index_maps_to_position_and_env() -> None:
    buffer = make_buffer(300, n_envs=3)
    add_steps(buffer, 7)
    batch = buffer.sample(200)
    positions, envs = np.divmod(batch.indices, 3)
    assert positions.max() < 7
    np.testing.assert_array_equal(batch.observations[:, 0].numpy(), positions)
    np.testing.assert_array_equal(batch.observations[:, 1].numpy(), envs)
    np.testing.assert_array_equal(batch.next_observations.numpy(), batch.observations.numpy() + 1)
    np.testing.assert_array_equal(batch.actions[:, 0].numpy(), (positions + envs) % 4)
    np.testing.assert_allclose(batch.rewards[:, 0].numpy(), positions + envs / 10, rtol=1e-6)
    assert batch.observations.shape == (200, 3)
    assert batch.actions.shape == (200, 1)
    assert batch.dones.shape == batch.rewards.shape == batch.weights.shape == (200, 1)
    assert batch.discounts is None and batch.next_action_masks is None


def test_new_transitions_get_the_max_priority_and_updates_steer_sampling() -> None:
    buffer = make_buffer(64, alpha=1.0, epsilon=0.5)
    add_steps(buffer, 8)
    assert buffer.tree.get(np.arange(8)).tolist() == [1.0] * 8
    buffer.update_priorities(np.arange(8), np.array([0.5, 1.5, 3.5, 0.5, 0.5, 0.5, 0.5, 9.5]))
    assert buffer.tree.get(np.arange(8)).tolist() == [1.0, 2.0, 4.0, 1.0, 1.0, 1.0, 1.0, 10.0]
    add_steps(buffer, 1, start=8)
    assert buffer.tree.get(np.array([8])).tolist() == [10.0]  # the largest priority written so far
    counts = np.zeros(9)
    for _ in range(800):
        counts += np.bincount(buffer.sample(50).indices, minlength=9)
    expected = np.array([1, 2, 4, 1, 1, 1, 1, 10, 10]) / 31 * counts.sum()
    assert chisquare(counts, expected).pvalue > 1e-3


def test_weights_are_min_over_priority_to_the_beta() -> None:
    buffer = make_buffer(64, alpha=0.5, beta=0.6)
    add_steps(buffer, 10)
    raw = np.linspace(0.0, 9.0, 10)
    buffer.update_priorities(np.arange(10), raw)
    tree_priorities = (raw + buffer.epsilon) ** 0.5
    batch = buffer.sample(50)
    expected = (tree_priorities.min() / tree_priorities[batch.indices]) ** 0.6
    np.testing.assert_allclose(batch.weights[:, 0].numpy(), expected, rtol=1e-6)
    assert batch.weights.max() <= 1.0
    np.testing.assert_allclose(buffer.sample(50, beta=0.0).weights.numpy(), 1.0)


def test_the_buffers_beta_is_fixed_and_serves_only_a_sample_given_none() -> None:
    buffers = [make_buffer(64, n_envs=2, alpha=1.0, beta=0.3, seed=5) for _ in range(2)]
    for buffer in buffers:
        add_steps(buffer, 30)  # stored transitions do not move it
        buffer.update_priorities(np.arange(8), np.linspace(0.0, 7.0, 8))
        assert buffer.beta == 0.3
    default, explicit = buffers[0].sample(16), buffers[1].sample(16, beta=0.9)
    assert np.array_equal(default.indices, explicit.indices)  # the same draws, weighted by each beta
    np.testing.assert_allclose(default.weights.numpy() ** (0.9 / 0.3), explicit.weights.numpy(), rtol=1e-5)
    assert buffers[0].checked_beta(None) == 0.3 and buffers[0].checked_beta(1.0) == 1.0


@pytest.mark.parametrize("bad", [math.nan, -0.5, math.inf])
def test_a_bad_priority_is_refused_by_index_and_nothing_is_written(bad: float) -> None:
    buffer = make_buffer()
    add_steps(buffer, 10)
    before = buffer.tree.leaves()
    with pytest.raises(ValueError, match="replay index 6"):
        buffer.update_priorities(np.array([2, 4, 6]), np.array([1.0, 2.0, bad]))
    assert np.array_equal(buffer.tree.leaves(), before)
    assert buffer.max_priority == 1.0


def test_an_index_that_holds_no_transition_is_refused() -> None:
    buffer = make_buffer(32, n_envs=2)
    add_steps(buffer, 3)  # tree indices 0..5 hold transitions
    buffer.update_priorities(np.array([5]), np.array([1.0]))
    with pytest.raises(ValueError, match="replay index 6 holds no transition"):
        buffer.update_priorities(np.array([0, 6]), np.array([1.0, 1.0]))


def test_timeouts_are_not_terminations_when_handled() -> None:
    for handle, expected in ((True, 0.0), (False, 1.0)):
        buffer = make_buffer(8, handle_timeout_termination=handle)
        obs = np.zeros((1, 3), dtype=np.float32)
        buffer.add(obs, obs, np.array([0]), np.array([1.0]), np.array([1.0]), [{"TimeLimit.truncated": True}])
        assert buffer.sample(4).dones.unique().tolist() == [expected]
        assert buffer.dones[0, 0] == 1.0 and buffer.timeouts[0, 0] == float(handle)


def test_env_normalisation_is_applied_like_sb3() -> None:
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), gamma=0.9)
    venv.reset()
    for _ in range(20):
        venv.step(np.array([venv.action_space.sample()]))
    space = venv.observation_space
    buffer = PrioritizedReplayBuffer(16, space, venv.action_space, device="cpu", seed=0)
    raw = np.ones((1, 4), dtype=np.float32)
    buffer.add(raw, raw * 2, np.array([1]), np.array([3.0], dtype=np.float32), np.array([0.0]), [{}])
    batch = buffer.sample(2, env=venv)
    np.testing.assert_allclose(batch.observations[0].numpy(), venv.normalize_obs(raw)[0], rtol=1e-6)
    np.testing.assert_allclose(batch.next_observations[0].numpy(), venv.normalize_obs(raw * 2)[0], rtol=1e-6)
    np.testing.assert_allclose(batch.rewards[0].numpy(), venv.normalize_reward(np.array([3.0])), rtol=1e-6)


def test_next_action_masks_are_stored_and_required() -> None:
    buffer = make_buffer(64, n_envs=2, n_actions=4)
    masks = np.array([[True, False, True, False], [False, False, False, True]])
    add_steps(buffer, 3, next_action_masks=masks)
    batch = buffer.sample(40)
    assert batch.next_action_masks is not None and batch.next_action_masks.dtype == th.bool
    np.testing.assert_array_equal(batch.next_action_masks.numpy(), masks[batch.indices % 2])
    with pytest.raises(ValueError, match="next_action_masks"):
        add_steps(buffer, 1)
    with pytest.raises(ValueError, match="next_action_masks"):
        add_steps(make_buffer(), 1, next_action_masks=masks)


def test_reset_and_pickle_keep_the_views_working() -> None:
    buffer = make_buffer(16, n_envs=2, beta=0.7)
    add_steps(buffer, 5)
    buffer.update_priorities(np.array([1, 3]), np.array([4.0, 0.0]))
    copy = pickle.loads(pickle.dumps(buffer))
    assert np.array_equal(copy.tree.leaves(), buffer.tree.leaves())
    assert np.array_equal(copy.sample(8).indices, buffer.sample(8).indices)
    add_steps(copy, 1, start=5)
    assert copy.rewards[5, 1] == pytest.approx(5.1)  # SB3's array is still a view of the packed one
    assert copy.sample(16).rewards.max().item() == pytest.approx(5.1)
    copy.reset()
    assert copy.tree.total == 0.0 and copy.size() == 0 and copy.beta == 0.7


def test_wraparound_overwrites_at_the_max_priority() -> None:
    buffer = make_buffer(4)
    add_steps(buffer, 4)
    buffer.update_priorities(np.arange(4), np.array([0.0, 0.0, 0.0, 0.0]))
    add_steps(buffer, 1, start=4)  # overwrites position 0
    leaves = buffer.tree.leaves()
    assert leaves[0] == buffer.max_priority == 1.0
    assert (leaves[1:] < 1e-3).all()


class WeightedDQN(DQN):
    """The smallest PER DQN: IS-weighted Huber loss and priorities from |TD error|."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            with th.no_grad():
                next_q = self.q_net_target(batch.next_observations).max(dim=1).values.reshape(-1, 1)
                target = batch.rewards + (1 - batch.dones) * self.gamma * next_q
            current = th.gather(self.q_net(batch.observations), dim=1, index=batch.actions.long())
            loss = (batch.weights * F.smooth_l1_loss(current, target, reduction="none")).mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            self.policy.optimizer.step()
            td_errors = (current - target).abs().detach().numpy()
            self.replay_buffer.update_priorities(batch.indices, td_errors)  # type: ignore[union-attr]
        self._n_updates += gradient_steps


@pytest.fixture
def one_torch_thread():
    # A 32-unit net gains nothing from intra-op threads, and on a busy 2-core machine they spin.
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("algo", [DQN, WeightedDQN])
def test_sb3_dqn_trains_a_few_thousand_steps_on_it(algo: type[DQN], tmp_path, one_torch_thread) -> None:
    model = algo(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        buffer_size=5_000,
        learning_starts=300,
        batch_size=32,
        train_freq=4,
        target_update_interval=250,
        policy_kwargs={"net_arch": [32]},
        replay_buffer_class=PrioritizedReplayBuffer,
        replay_buffer_kwargs={"alpha": 0.6, "beta": 0.4, "batch_size": 32},
        seed=0,
        device="cpu",
    )
    model.learn(3000)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    assert buffer.size() == 3000
    leaves = buffer.tree.leaves()[:3000]
    assert (leaves > 0).all()
    if algo is WeightedDQN:
        assert len(np.unique(leaves)) > 500  # TD errors, not the max priority everywhere
    model.save_replay_buffer(tmp_path / "replay.pkl")
    model.load_replay_buffer(tmp_path / "replay.pkl")
    assert np.array_equal(model.replay_buffer.tree.leaves()[:3000], leaves)  # type: ignore[union-attr]
    model.learn(200, reset_num_timesteps=False)


def test_the_prefetcher_normalises_its_batches_like_sample() -> None:
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), gamma=0.9)
    venv.reset()
    for _ in range(20):
        venv.step(np.array([venv.action_space.sample()]))
    buffers = [PrioritizedReplayBuffer(16, venv.observation_space, venv.action_space, device="cpu", seed=0)
               for _ in range(2)]
    for buffer in buffers:
        for t in range(8):
            raw = np.full((1, 4), t, dtype=np.float32)
            buffer.add(raw, raw + 1, np.array([1]), np.array([t], dtype=np.float32), np.array([0.0]), [{}])
    expected = buffers[0].sample(6, env=venv, beta=0.5)
    for enabled in (False, True):
        with BatchPrefetcher(buffers[1], 6, enabled=enabled, env=venv, beta=0.5) as prefetcher:
            got = prefetcher.next_batch(prefetch_next=False)
        for name in ("observations", "next_observations", "rewards", "weights"):
            np.testing.assert_array_equal(getattr(got, name).numpy(), getattr(expected, name).numpy())
        expected = buffers[0].sample(6, env=venv, beta=0.5)  # the next draw of the same generator stream
