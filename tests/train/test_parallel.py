"""Data-parallel steps on 8 fake CPU devices compute the single-device step."""

import jax
import numpy as np
import pytest

from medgen_jax.data.pipeline import BatchSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError
from medgen_jax.train import parallel
from medgen_jax.train.gan_task import GanTask


def _run(task, sampler, mesh, n_steps=2):
  state = jax.jit(task.init_state,
                  out_shardings=parallel.replicated(mesh))(jax.random.key(0))
  step = parallel.jit_sharded_step(task.train_step, mesh, task.batch_axis)
  for i in range(n_steps):
    batch = parallel.put_batch(task.batch(sampler, i), mesh, task.batch_axis)
    state, metrics = step(state, batch, jax.random.key(1))
  return state, metrics, batch


def test_sharded_step_equals_single_device(tiny_config):
  if jax.device_count() < 8:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 "
                "set before JAX starts (tests/conftest.py does this)")
  config = tiny_config(d_steps=2)
  ds = load_dataset(config.data)
  task = GanTask(config, ds)
  sampler = BatchSampler(ds.split("train"), config.train.batch_size, seed=0)

  one, m1, _ = _run(task, sampler, parallel.make_mesh(1))
  eight, m8, batch = _run(task, sampler, parallel.make_mesh(8))
  # The batch really is split: each device holds 16 / 8 = 2 examples.
  shards = batch["image"].addressable_shards
  assert len(shards) == 8 and shards[0].data.shape == (2, 2, 16, 16, 1)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4,
                               atol=2e-5)
  np.testing.assert_allclose(float(m1["d_loss"]), float(m8["d_loss"]),
                             rtol=1e-4)


def test_batch_must_divide_devices():
  if jax.device_count() < 8:
    pytest.skip("needs 8 fake devices")
  with pytest.raises(ConfigError, match="not divisible by the 8 devices"):
    parallel.check_batch_size(12, parallel.make_mesh(8))
  with pytest.raises(ConfigError, match="devices are visible"):
    parallel.make_mesh(jax.device_count() + 1)
