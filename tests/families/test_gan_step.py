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
@pytest.mark.parametrize("loss,d_steps,conditional,r1,extra", [
    ("nonsaturating", 1, False, 0.0, {}),
    ("wgan-gp", 2, True, 1.0, {}),
    # D's batch norm over [real; fake]
    ("nonsaturating", 1, True, 0.5, {"d_joint_batch": True}),
    ("nonsaturating", 1, False, 0.0, {"d_pack": 2}),  # PacGAN
])
def test_step_compiles_once_and_updates(tiny_config, loss, d_steps, conditional,
                                        r1, extra):
  config = tiny_config(loss=loss, d_steps=d_steps, conditional=conditional,
                       r1_weight=r1, **extra)
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


def _d_logits(state, x, train=True):
  """D's logits on one batch x, by hand (train mode: x's own batch stats)."""
  out = state.disc.apply_fn(state.disc.variables(state.disc.params), x, None,
                            train=train, mutable=["batch_stats"] if train
                            else False)
  return np.asarray(out[0] if train else out)


def test_joint_batch_normalises_real_and_fake_with_shared_statistics(
    tiny_config):
  # Separate batches: D's batch norm gives each batch its own statistics, so
  # the real logits do not depend on the fakes. Joint: D runs once on
  # [real; fake], and changing the fakes moves the real logits too.
  task, state, batch_at = _setup(tiny_config())  # batch norm in D
  real = batch_at(0)["image"][0]
  fakes = (real[::-1] * 0.5, real[::-1] * 0.5 + 0.3)
  logits = {}
  for joint in (False, True):
    cfg = gan_step.GanStepConfig(loss=GAN_LOSSES.get("nonsaturating"),
                                 latent_dim=8, conditional=False,
                                 joint_batch=joint)
    for i, fake in enumerate(fakes):
      r, f, _ = gan_step.discriminate(cfg, state.disc, state.disc.params,
                                      real, fake, None, None)
      logits[joint, i] = (np.asarray(r), np.asarray(f))
  np.testing.assert_allclose(logits[False, 0][0], _d_logits(state, real),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logits[False, 0][1],
                             _d_logits(state, fakes[0]), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(logits[False, 0][0], logits[False, 1][0])
  both = _d_logits(state, np.concatenate([real, fakes[0]]))
  np.testing.assert_allclose(logits[True, 0][0], both[:len(real)],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logits[True, 0][1], both[len(real):],
                             rtol=1e-5, atol=1e-6)
  assert np.abs(logits[True, 0][0] - logits[True, 1][0]).max() > 1e-3


def test_joint_batch_generator_loss_sees_fakes_beside_the_real_batch(
    tiny_config):
  task, state, batch_at = _setup(tiny_config())
  real = batch_at(0)["image"][0]
  z = jax.random.normal(jax.random.key(5), (len(real), 8))
  loss = GAN_LOSSES.get("nonsaturating")
  cfg = gan_step.GanStepConfig(loss=loss, latent_dim=8, conditional=False,
                               joint_batch=True)
  out = gan_step.generator_loss_fn(cfg, state.gen, state.disc)(
      state.gen.params, {"z": z, "label": np.zeros(len(z), np.int32),
                         "real": real},
      jax.random.key(0))
  fake = state.gen.apply_fn(state.gen.variables(state.gen.params), z, None,
                            train=True, mutable=["batch_stats"])[0]
  logits = _d_logits(state, np.concatenate([real, np.asarray(fake)]))
  np.testing.assert_allclose(out.losses, loss.generator(logits[len(real):]),
                             rtol=1e-5, atol=1e-6)


def test_g_width_widens_the_generator_alone(tiny_config):
  def shapes(**kw):
    config = tiny_config(width=8, **kw)
    task = GanTask(config, load_dataset(config.data))
    state = jax.eval_shape(task.init_state, jax.random.key(0))
    shape = lambda p: jax.tree.map(lambda a: a.shape, p)
    return shape(state.gen.params), shape(state.disc.params)
  g8, d8 = shapes()
  g16, d16 = shapes(g_width=16)
  assert d16 == d8  # D keeps --width
  # 16x16 images: 4x4 -> 8x8 -> 16x16; G's last hidden block has g_width
  # features and the one before twice that.
  assert g8["bn_project"]["scale"] == (16,)
  assert g16["bn_project"]["scale"] == (32,)
  assert g8["bn_up0"]["scale"] == (8,) and g16["bn_up0"]["scale"] == (16,)
  assert g16["to_image"]["Conv_0"]["kernel"][2] == 16


def test_ema_decay_warmup():
  assert float(ema_decay_at(0, 0.999)) == pytest.approx(0.1)
  assert float(ema_decay_at(10**6, 0.999)) == pytest.approx(0.999)
