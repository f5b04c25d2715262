"""DiffAugment and ADA for the GAN (families/gan/augment.py, step.py)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.families.gan import augment as aug


def _images(shape=(4, 16, 16, 1), seed=0):
  return jax.random.uniform(jax.random.key(seed), shape, minval=-1.0,
                            maxval=1.0)


def test_translation_moves_an_impulse_by_its_own_shift_per_example():
  x = jnp.zeros((8, 16, 16, 1)).at[:, 8, 8, 0].set(1.0)
  y = np.asarray(aug.translate(x, jax.random.key(3)))
  positions = [tuple(np.argwhere(y[i, ..., 0] == 1.0)[0]) for i in range(8)]
  for r, c in positions:  # at most round(16 / 8) = 2 pixels away
    assert abs(r - 8) <= 2 and abs(c - 8) <= 2
  assert len(set(positions)) > 1  # per-example shifts
  np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), 1.0)  # nothing else moved in
  # Pixels shifted in from outside are 0; 3-D volumes shift on every axis.
  ones = aug.translate(jnp.ones((8, 16, 16, 1)), jax.random.key(4))
  assert float(ones.min()) == 0.0 and float(ones.max()) == 1.0
  v = aug.translate(jnp.ones((2, 8, 8, 8, 1)), jax.random.key(5))
  assert v.shape == (2, 8, 8, 8, 1)


def test_cutout_zeros_one_box_of_half_the_side():
  y = np.asarray(aug.cutout(jnp.ones((16, 12, 12, 1)), jax.random.key(0)))
  for img in y[..., 0]:
    rows = np.flatnonzero((img == 0).any(axis=1))
    cols = np.flatnonzero((img == 0).any(axis=0))
    assert len(rows) and len(cols)
    # A rectangle (clipped at the border), at most 6 x 6.
    assert len(rows) <= 6 and len(cols) <= 6
    assert (img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] == 0).all()
    assert (img == 0).sum() == len(rows) * len(cols)
  assert (y == 0).sum(axis=(1, 2, 3)).max() == 36  # some box lies inside


def test_color_is_brightness_and_contrast_per_example():
  x = jnp.full((64, 4, 4, 1), 0.25)
  y = np.asarray(aug.color(x, jax.random.key(0)))
  shift = y[:, 0, 0, 0] - 0.25  # contrast leaves a constant image as it is
  np.testing.assert_allclose(
      y, np.broadcast_to(shift[:, None, None, None] + 0.25, y.shape), atol=1e-6)
  assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.std() > 0.1
  # Contrast scales deviations from the example's mean by U(0.5, 1.5).
  x = _images((64, 4, 4, 1))
  y = aug.color(x, jax.random.key(1))
  dev_in = x - x.mean(axis=(1, 2, 3), keepdims=True)
  dev_out = y - y.mean(axis=(1, 2, 3), keepdims=True)
  ratio = np.asarray(dev_out[:, 0, 0, 0] / dev_in[:, 0, 0, 0])
  assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4


def test_augment_is_per_example_differentiable_and_gated_by_p():
  x = _images()
  key = jax.random.key(7)
  ops = ("translation", "cutout", "color")
  np.testing.assert_array_equal(aug.augment(x, key, ops, 0.0), x)
  assert not np.allclose(aug.augment(x, key, ops, 1.0), x)
  # Example 0's result does not depend on example 1 (losses stay per example).
  other = x.at[1].set(0.0)
  np.testing.assert_allclose(aug.augment(x, key, ops)[0],
                             aug.augment(other, key, ops)[0], atol=1e-6)
  g = jax.grad(lambda x: jnp.sum(aug.augment(x, key, ops) ** 2))(x)
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0
  with pytest.raises(ValueError, match="unknown augmentation"):
    aug.parse_ops("translation,flip")


def _config(tiny_config, steps):
  return tiny_config(**{"gan.augment": "translation,cutout,color",
                        "gan.ada_target": 0.6, "gan.ada_kimg": 0.1,
                        "train.steps": steps})


def test_ada_moves_p_toward_the_target_r_t(tiny_config):
  from medgen_jax.data.pipeline import IndexSampler
  from medgen_jax.data.registry import load_dataset
  from medgen_jax.families.gan import GanTask
  c = _config(tiny_config, 1)
  ds = load_dataset(c.data)
  task = GanTask(c, ds)
  state = task.init_state(jax.random.key(0))
  assert float(state.augment_p) == 0.0  # ADA starts without augmentation
  sampler = IndexSampler(len(ds.split("train")), 16, seed=0)
  batch = task.make_batch(ds.split("train"), sampler, 0)
  for start in (0.5, 0.0, 1.0):
    new, metrics = jax.jit(task.train_step)(
        state.replace(augment_p=jnp.float32(start)), batch, jax.random.key(1))
    r_t = float(metrics["d_real_sign"])
    # One D update: p moves by batch / (ada_kimg * 1000) = 16 / 100 toward
    # the side that sign(r_t - 0.6) says, clipped to [0, 1].
    want = np.clip(start + np.sign(r_t - 0.6) * 0.16, 0.0, 1.0)
    np.testing.assert_allclose(float(new.augment_p), want, atol=1e-6)
    np.testing.assert_allclose(float(metrics["augment_p"]), want, atol=1e-6)


def test_augmented_run_resumes_exactly(tiny_config, tmp_path, leaves):
  from medgen_jax.train.loop import train_and_evaluate
  full = train_and_evaluate(_config(tiny_config, 6), tmp_path / "full")
  train_and_evaluate(_config(tiny_config, 3), tmp_path / "split")
  resumed = train_and_evaluate(_config(tiny_config, 6), tmp_path / "split",
                               resume=True)["state"]
  assert resumed.augment_p is not None
  chex.assert_trees_all_equal(leaves(resumed), leaves(full["state"]))


def test_ada_needs_ops(tiny_config):
  from medgen_jax.errors import ConfigError
  from medgen_jax.families.gan import GanTask
  c = tiny_config(**{"gan.ada_target": 0.6})
  with pytest.raises(ConfigError, match="--ada-target.*--augment"):
    GanTask.validate_config(c)
  c = tiny_config(**{"gan.augment": "rotate"})
  with pytest.raises(ConfigError, match="--augment: unknown augmentation"):
    GanTask.validate_config(c)
