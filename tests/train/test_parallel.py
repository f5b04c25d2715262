"""Data-parallel steps on 8 fake CPU devices compute the single-device step."""

import jax
import numpy as np
import pytest

from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError
from medgen_jax.families.gan import GanTask
from medgen_jax.train import parallel


def _run(task, train, sampler, mesh, n_steps=2):
  state = jax.jit(task.init_state,
                  out_shardings=parallel.replicated(mesh))(jax.random.key(0))
  axes = task.batch_axes(task.make_batch(train, sampler, 0))
  shardings = parallel.batch_shardings(mesh, axes)
  step = parallel.jit_sharded_step(task.train_step, mesh, shardings)
  for i in range(n_steps):
    batch = parallel.put_batch(task.make_batch(train, sampler, i), shardings)
    state, metrics = step(state, batch, jax.random.key(1))
  return state, metrics, batch


def test_sharded_step_equals_single_device(tiny_config):
  if jax.device_count() < 8:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 "
                "set before JAX starts (tests/conftest.py does this)")
  config = tiny_config(d_steps=2)
  ds = load_dataset(config.data)
  task = GanTask(config, ds)
  train = ds.split("train")
  sampler = IndexSampler(len(train), config.train.batch_size, seed=0)

  one, m1, _ = _run(task, train, sampler, parallel.make_mesh(1))
  eight, m8, batch = _run(task, train, sampler, parallel.make_mesh(8))
  # The batch really is split on its example axis (axis 1 of [d_steps, b,
  # ...]): each device holds 16 / 8 = 2 examples of both real batches.
  shards = batch["image"].addressable_shards
  assert len(shards) == 8 and shards[0].data.shape == (2, 2, 16, 16, 1)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4,
                               atol=2e-5)
  np.testing.assert_allclose(float(m1["d_loss"]), float(m8["d_loss"]),
                             rtol=1e-4)


def test_batch_shardings_per_array():
  if jax.device_count() < 8:
    pytest.skip("needs 8 fake devices")
  mesh = parallel.make_mesh(8)
  sh = parallel.batch_shardings(mesh, {"x": 0, "mask": 1, "prior": None})
  batch = {"x": np.zeros((16, 3)), "mask": np.zeros((2, 8)),
           "prior": np.arange(5.0)}
  parallel.check_batch(batch, {"x": 0, "mask": 1, "prior": None}, mesh)
  put = parallel.put_batch(batch, sh)
  assert put["x"].addressable_shards[0].data.shape == (2, 3)
  assert put["mask"].addressable_shards[0].data.shape == (2, 1)
  assert put["prior"].addressable_shards[0].data.shape == (5,)  # replicated
  with pytest.raises(ConfigError, match="'x' has 12 examples"):
    parallel.check_batch({"x": np.zeros((12, 3))}, {"x": 0}, mesh)
  with pytest.raises(ValueError, match="batch_axes"):
    parallel.check_batch({"x": np.zeros((16, 3))}, {"y": 0}, mesh)


def test_mesh_errors():
  if jax.device_count() < 8:
    pytest.skip("needs 8 fake devices")
  with pytest.raises(ConfigError, match="not divisible by the 8 devices"):
    parallel.check_batch({"image": np.zeros((12, 4))}, {"image": 0},
                         parallel.make_mesh(8))
  with pytest.raises(ConfigError, match="devices are visible"):
    parallel.make_mesh(jax.device_count() + 1)
