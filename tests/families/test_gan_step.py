"""The GAN train step: pure, compiled once, EMA as specified, every loss runs."""

import chex
import jax
import numpy as np
import pytest

from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.families.gan import GanTask
from medgen_jax.families.gan import step as gan_step
from medgen_jax.objectives import minimax
from medgen_jax.objectives.minimax import GAN_LOSSES
from medgen_jax.train.state import ema_decay_at


def _setup(config):
  ds = load_dataset(config.data)
  task = GanTask(config, ds)
  state = jax.jit(task.init_state)(jax.random.key(0))
  train = ds.split("train")
  sampler = IndexSampler(len(train), config.train.batch_size, seed=0)
  return task, state, (lambda i: task.make_batch(train, sampler, i))


# Compiling once is a property of the step's structure (one or several
# discriminator steps, with or without labels), not of the loss: two cases
# cover it. The other losses' values are tested in tests/objectives, and a
# conditional hinge run trains through the CLI in tests/test_cli.py.
@pytest.mark.parametrize("loss,d_steps,conditional,r1", [
    ("nonsaturating", 1, False, 0.0),
    ("wgan-gp", 2, True, 1.0),
])
def test_step_compiles_once_and_updates(tiny_config, loss, d_steps, conditional,
                                        r1):
  config = tiny_config(loss=loss, d_steps=d_steps, conditional=conditional,
                       r1_weight=r1)
  task, state, batch_at = _setup(config)
  params0 = jax.tree.map(np.asarray, state.gen.params)

  chex.clear_trace_counter()  # counts are per function name, across tests
  step = jax.jit(chex.assert_max_traces(task.train_step, n=1),
                 donate_argnums=0)
  key = jax.random.key(1)
  for i in range(3):
    batch = batch_at(i)
    assert batch["image"].shape == (d_steps, 16, 16, 16, 1)
    state, metrics = step(state, batch, key)
  assert int(state.step) == 3
  assert int(state.disc.step) == 3 * d_steps
  for name, value in metrics.items():
    assert np.isfinite(value), name
  if loss == "wgan-gp":
    assert "gradient_penalty" in metrics
  assert ("r1_penalty" in metrics) == (r1 > 0)
  moved = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b).max(),
                       state.gen.params, params0)
  assert max(jax.tree.leaves(moved)) > 0


def test_step_is_pure_and_ema_follows_formula(tiny_config):
  config = tiny_config(ema_decay=0.9)
  task, state, batch_at = _setup(config)
  step = jax.jit(task.train_step)
  batch, key = batch_at(0), jax.random.key(3)
  a, ma = step(state, batch, key)
  b, mb = step(state, batch, key)
  chex.assert_trees_all_equal(a, b)  # same inputs, same outputs
  decay = float(ema_decay_at(0, 0.9))  # (1 + 0) / (10 + 0) = 0.1
  assert decay == pytest.approx(0.1)
  want = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p,
                      state.ema_params, a.gen.params)
  chex.assert_trees_all_close(a.ema_params, want, rtol=1e-6)
  # A different key gives a different update (randomness comes from the key).
  c, _ = step(state, batch, jax.random.key(4))
  assert not np.allclose(c.gen.params["project"]["kernel"],
                         a.gen.params["project"]["kernel"])


def test_r1_adds_half_gamma_times_the_penalty_to_d_loss(tiny_config):
  # The same D, real and fake images: each example's loss differs only by
  # gamma / 2 * ||grad_x D(x_i)||^2 (the penalty's value is checked against
  # finite differences in tests/objectives/test_minimax.py). The step's
  # wiring of --r1 is checked by test_step_compiles_once_and_updates.
  gamma = 0.5
  task, state, batch_at = _setup(tiny_config(d_norm="none"))
  images = batch_at(0)["image"][0]
  batch = {"real": images, "fake": images[::-1] * 0.5,
           "label": np.zeros(len(images), np.int32)}
  key = jax.random.key(0)
  losses = {}
  for weight in (0.0, gamma):
    cfg = gan_step.GanStepConfig(loss=GAN_LOSSES.get("nonsaturating"),
                                 latent_dim=8, conditional=False,
                                 r1_weight=weight)
    losses[weight] = gan_step.discriminator_loss_fn(cfg, state.disc)(
        state.disc.params, batch, key)
  assert "r1_penalty" not in losses[0.0].metrics
  critic = lambda x: state.disc.apply_fn(state.disc.variables(
      state.disc.params), x, None, train=True)
  r1 = minimax.r1_penalty(critic, images)
  assert float(np.min(r1)) > 0
  np.testing.assert_allclose(losses[gamma].losses - losses[0.0].losses,
                             gamma / 2 * r1, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(losses[gamma].metrics["r1_penalty"],
                             np.mean(r1), rtol=1e-5)


def test_ema_decay_warmup():
  assert float(ema_decay_at(0, 0.999)) == pytest.approx(0.1)
  assert float(ema_decay_at(10**6, 0.999)) == pytest.approx(0.999)
