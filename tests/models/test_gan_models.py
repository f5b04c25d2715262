"""Shapes at every supported size, conditioning, and layer identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.models.gan import Discriminator, Generator, pixel_norm
from medgen_jax.models.layers import (Upsample2x, depth_to_space,
                                      num_resolution_stages)


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsample", ["subpixel", "transpose"])
def test_generator_matches_discriminator(size, channels, upsample):
  g = Generator(image_size=size, channels=channels, width=8, upsample=upsample)
  d = Discriminator(image_size=size, width=8, norm="batch")
  z = jnp.zeros((3, 4))
  gv = g.init(jax.random.key(0), z, train=False)
  x = g.apply(gv, jax.random.normal(jax.random.key(1), (3, 4)), train=False)
  assert x.shape == (3, size, size, channels)
  assert float(jnp.max(jnp.abs(x))) < 1.0  # tanh output
  dv = d.init(jax.random.key(2), x, train=False)
  logits = d.apply(dv, x, train=False)
  assert logits.shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_conditional_models_use_labels(norm):
  g = Generator(image_size=16, channels=1, width=8, num_classes=3)
  d = Discriminator(image_size=16, width=8, num_classes=3, norm=norm)
  z = jax.random.normal(jax.random.key(0), (2, 4))
  z = jnp.concatenate([z[:1], z[:1]])  # same z, different labels
  y = jnp.array([0, 2])
  gv = g.init(jax.random.key(1), z, y, train=False)
  x = g.apply(gv, z, y, train=False)
  assert not np.allclose(x[0], x[1])
  dv = d.init(jax.random.key(2), x, y, train=False)
  same_x = jnp.concatenate([x[:1], x[:1]])
  logits = d.apply(dv, same_x, y, train=False)
  assert logits.shape == (2,)
  assert not np.isclose(logits[0], logits[1])


def test_unsupported_sizes_are_rejected():
  for size in (9, 30, 4, 100):
    with pytest.raises(ValueError, match="not base"):
      num_resolution_stages(size)
  assert num_resolution_stages(28) == (7, 2)
  assert num_resolution_stages(64) == (4, 4)


def test_depth_to_space_by_hand():
  # One pixel with 4 channels becomes a 2x2 block in (row, col) order.
  x = jnp.arange(8.0).reshape(1, 1, 1, 8)  # r=2, c=2
  y = depth_to_space(x, 2)
  assert y.shape == (1, 2, 2, 2)
  np.testing.assert_array_equal(y[0, :, :, 0], [[0, 2], [4, 6]])
  np.testing.assert_array_equal(y[0, :, :, 1], [[1, 3], [5, 7]])


def test_subpixel_init_is_nearest_neighbour_upsampling():
  # ICNR: at init every 2x2 output block is constant (no checkerboard).
  layer = Upsample2x(5, kind="subpixel", use_bias=False)
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
  v = layer.init(jax.random.key(1), x)
  y = layer.apply(v, x)
  assert y.shape == (2, 12, 12, 5)
  np.testing.assert_allclose(y[:, 0::2, 0::2], y[:, 1::2, 1::2], rtol=1e-6)
  np.testing.assert_allclose(y[:, 0::2, 1::2], y[:, 1::2, 0::2], rtol=1e-6)


def test_every_supported_size_by_shape_inference():
  # All base*2**k sizes up to 224 (MedMNIST+'s largest), without compiling.
  sizes = sorted({b * 2**k for b in range(4, 8) for k in range(1, 6)
                  if b * 2**k <= 224})
  assert {28, 64, 128, 224} <= set(sizes)
  for size in sizes:
    g = Generator(image_size=size, channels=3, width=4, num_classes=2)
    d = Discriminator(image_size=size, width=4, num_classes=2, norm="layer")
    z, y = jnp.zeros((2, 4)), jnp.zeros((2,), jnp.int32)
    gv = jax.eval_shape(lambda: g.init(jax.random.key(0), z, y, train=False))
    x = jax.eval_shape(lambda v: g.apply(v, z, y, train=False), gv)
    assert x.shape == (2, size, size, 3), size
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros(x.shape), y,
                                       train=False))
    logits = jax.eval_shape(lambda v: d.apply(v, jnp.zeros(x.shape), y,
                                              train=False), dv)
    assert logits.shape == (2,), size


def test_minibatch_std_feature_couples_a_group_in_training_only():
  d = Discriminator(image_size=8, width=4, norm="none", minibatch_std=4)
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 1))
  variables = d.init(jax.random.key(1), x, train=False)
  assert float(variables["batch_stats"]["mbstd"]) == 0.0

  def train_logits(xb):
    out, new = d.apply(variables, xb, train=True, mutable=["batch_stats"])
    return out, new["batch_stats"]["mbstd"]

  base, running = train_logits(x)
  moved, _ = train_logits(x.at[0].multiply(3.0))
  changed = np.abs(np.asarray(moved - base)) > 1e-6
  # Example 0 is in the group of examples 0..3; examples 4..7 form another.
  assert changed[:4].all() and not changed[4:].any()

  # The statistic by hand from the last block's activations: the std of
  # each feature over a group of 4 (population std), averaged; the running
  # mean starts at 0 and moves 10 % of the way to the batch's mean.
  _, state = d.apply(variables, x, train=True, mutable=["batch_stats"],
                     capture_intermediates=True)
  convs = sorted(k for k in state["intermediates"] if k.startswith("down"))
  h = np.asarray(jax.nn.leaky_relu(
      state["intermediates"][convs[-1]]["__call__"][0], 0.2))
  groups = h.reshape((2, 4) + h.shape[1:])
  stat = np.sqrt(groups.var(axis=1) + 1e-8).reshape(2, -1).mean(axis=1)
  np.testing.assert_allclose(float(running), 0.1 * stat.mean(), rtol=1e-5)

  # Inference mode: the running statistic, so each logit is its own.
  trained = {"params": variables["params"], "batch_stats": {"mbstd": running}}
  alone = jnp.concatenate([d.apply(trained, x[i:i + 1], train=False)
                           for i in range(8)])
  together = d.apply(trained, x, train=False)
  np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)


def test_pixel_norm_by_hand():
  h = jnp.array([[[3.0, 4.0], [0.0, 0.0]]])  # two positions of 2 features
  got = np.asarray(pixel_norm(h))
  # [3, 4] / sqrt((9 + 16) / 2); a zero vector stays zero.
  np.testing.assert_allclose(got[0, 0], np.array([3.0, 4.0]) / np.sqrt(12.5),
                             rtol=1e-6)
  np.testing.assert_array_equal(got[0, 1], [0.0, 0.0])


@pytest.mark.parametrize("norm", ["pixel", "none"])
def test_generator_without_batch_norm_is_per_example(norm):
  g = Generator(image_size=8, width=4, norm=norm)
  z = jax.random.normal(jax.random.key(0), (4, 6))
  variables = g.init(jax.random.key(1), z, train=True)
  assert "batch_stats" not in variables  # nothing couples the examples
  # With biases where batch norm's offset was.
  assert "bias" in variables["params"]["project"]
  together = g.apply(variables, z, train=True)
  alone = jnp.concatenate([g.apply(variables, z[i:i + 1], train=True)
                           for i in range(4)])
  np.testing.assert_allclose(np.asarray(together), np.asarray(alone),
                             atol=1e-6)
  # A batch-norm generator in training mode is not: one example moves the rest.
  bn = Generator(image_size=8, width=4, norm="batch")
  bv = bn.init(jax.random.key(1), z, train=True)
  run = lambda zz: bn.apply(bv, zz, train=True, mutable=["batch_stats"])[0]
  assert float(jnp.max(jnp.abs(run(z)[1:] - run(z.at[0].multiply(3.0))[1:]))) > 1e-4


def test_generator_refuses_an_unknown_norm():
  with pytest.raises(ValueError, match="norm must be one of"):
    Generator(image_size=8, width=4, norm="layer").init(
        jax.random.key(0), jnp.zeros((1, 4)))


def test_packing_discriminator_judges_channel_stacked_pairs():
  # PacGAN with m = 2: D's logit for examples (0, 1) is an ordinary D's
  # logit for the one 2-channel image [x0 | x1], repeated for both members.
  x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1))
  packed = Discriminator(image_size=8, width=4, norm="none", pack=2)
  plain = Discriminator(image_size=8, width=4, norm="none")
  variables = packed.init(jax.random.key(1), x)
  got = packed.apply(variables, x)
  pairs = jnp.concatenate([x[0::2], x[1::2]], axis=-1)  # [3, 8, 8, 2]
  want = plain.apply(variables, pairs)
  assert got.shape == (6,)
  np.testing.assert_allclose(got, jnp.repeat(want, 2), rtol=1e-6)
  # The pack's members are judged together: changing one moves both logits.
  moved = packed.apply(variables, x.at[1].set(0.0))
  assert abs(float(moved[0] - got[0])) > 1e-4
  np.testing.assert_array_equal(moved[2:], got[2:])
  with pytest.raises(ValueError, match="multiple of 2"):
    packed.apply(variables, x[:5])
