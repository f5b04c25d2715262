"""3-D volumes [b, x, y, z, c] in the image models; 2-D models unchanged.

Sizes and widths are tiny: 3-D convolutions are slow on CPU.
"""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from medgen_jax.models.gan import Discriminator, Generator
from medgen_jax.models.layers import Upsample2x, depth_to_space, icnr_init
from medgen_jax.models.vae import VAE

# Variable shapes of the 2-D models as they were before 3-D support was added
# (computed from the unmodified code with jax.eval_shape), for the configs in
# `_two_d_models`. Existing checkpoints restore only if these never change.
REFERENCE_2D_SHAPES = {
    "G_subpixel": {
        "batch_stats/bn_project/mean": (16,),
        "batch_stats/bn_project/var": (16,),
        "batch_stats/bn_up0/mean": (8,),
        "batch_stats/bn_up0/var": (8,),
        "params/bn_project/bias": (16,),
        "params/bn_project/scale": (16,),
        "params/bn_up0/bias": (8,),
        "params/bn_up0/scale": (8,),
        "params/label_embed/embedding": (3, 4),
        "params/project/kernel": (8, 256),
        "params/to_image/Conv_0/bias": (4,),
        "params/to_image/Conv_0/kernel": (3, 3, 8, 4),
        "params/up0/Conv_0/kernel": (3, 3, 16, 32),
    },
    "G_transpose": {
        "batch_stats/bn_project/mean": (16,),
        "batch_stats/bn_project/var": (16,),
        "batch_stats/bn_up0/mean": (8,),
        "batch_stats/bn_up0/var": (8,),
        "params/bn_project/bias": (16,),
        "params/bn_project/scale": (16,),
        "params/bn_up0/bias": (8,),
        "params/bn_up0/scale": (8,),
        "params/label_embed/embedding": (3, 4),
        "params/project/kernel": (8, 256),
        "params/to_image/ConvTranspose_0/bias": (1,),
        "params/to_image/ConvTranspose_0/kernel": (4, 4, 8, 1),
        "params/up0/ConvTranspose_0/kernel": (4, 4, 16, 8),
    },
    "D_batch": {
        "batch_stats/bn1/mean": (16,),
        "batch_stats/bn1/var": (16,),
        "params/bn1/bias": (16,),
        "params/bn1/scale": (16,),
        "params/down0/bias": (8,),
        "params/down0/kernel": (4, 4, 1, 8),
        "params/down1/kernel": (4, 4, 8, 16),
        "params/logit/bias": (1,),
        "params/logit/kernel": (256, 1),
        "params/projection/embedding": (3, 256),
    },
    "D_layer": {
        "params/down0/bias": (8,),
        "params/down0/kernel": (4, 4, 1, 8),
        "params/down1/kernel": (4, 4, 8, 16),
        "params/ln1/bias": (16,),
        "params/ln1/scale": (16,),
        "params/logit/bias": (1,),
        "params/logit/kernel": (256, 1),
        "params/projection/embedding": (3, 256),
    },
    "D_none": {
        "params/down0/bias": (8,),
        "params/down0/kernel": (4, 4, 1, 8),
        "params/down1/bias": (16,),
        "params/down1/kernel": (4, 4, 8, 16),
        "params/logit/bias": (1,),
        "params/logit/kernel": (256, 1),
        "params/projection/embedding": (3, 256),
    },
    "VAE": {
        "params/condition/embedding": (3, 16),
        "params/down0/bias": (8,),
        "params/down0/kernel": (4, 4, 1, 8),
        "params/down1/bias": (16,),
        "params/down1/kernel": (4, 4, 8, 16),
        "params/project/bias": (256,),
        "params/project/kernel": (19, 256),
        "params/to_params/Conv_0/bias": (8,),
        "params/to_params/Conv_0/kernel": (3, 3, 8, 8),
        "params/up0/Conv_0/bias": (32,),
        "params/up0/Conv_0/kernel": (3, 3, 16, 32),
        "params/z_log_var/bias": (3,),
        "params/z_log_var/kernel": (272, 3),
        "params/z_mean/bias": (3,),
        "params/z_mean/kernel": (272, 3),
    },
}


def _flat_shapes(variables):
  flat = traverse_util.flatten_dict(dict(variables))
  return {"/".join(k): tuple(v.shape) for k, v in flat.items()}


def _two_d_models():
  z, y = jnp.zeros((2, 4)), jnp.zeros((2,), jnp.int32)
  x = jnp.zeros((2, 16, 16, 1))
  for up in ("subpixel", "transpose"):
    g = Generator(image_size=16, channels=1, width=8, num_classes=3,
                  upsample=up)
    yield f"G_{up}", lambda g=g: g.init(jax.random.key(0), z, y, train=False)
  for norm in ("batch", "layer", "none"):
    d = Discriminator(image_size=16, width=8, num_classes=3, norm=norm)
    yield f"D_{norm}", lambda d=d: d.init(jax.random.key(0), x, y, train=False)
  m = VAE(data_shape=(16, 16, 1), latent_dim=3, params=("mean", "log_scale"),
          width=8, num_conditions=3)
  yield "VAE", lambda: m.init(jax.random.key(0), x, y)


@pytest.mark.parametrize("name", sorted(REFERENCE_2D_SHAPES))
def test_2d_variable_trees_are_unchanged(name):
  init = dict(_two_d_models())[name]
  shapes = _flat_shapes(jax.eval_shape(init))
  assert shapes == REFERENCE_2D_SHAPES[name]


# ---------------------------------------------------------------- layers ---


def test_depth_to_space_2d_matches_index_loop():
  r, c = 3, 2
  x = np.random.default_rng(0).normal(size=(2, 2, 3, r * r * c))
  y = np.asarray(depth_to_space(jnp.asarray(x), r))
  assert y.shape == (2, 2 * r, 3 * r, c)
  want = np.zeros_like(y)
  for n, py, px, i, j, k in itertools.product(range(2), range(2), range(3),
                                              range(r), range(r), range(c)):
    want[n, py * r + i, px * r + j, k] = x[n, py, px, (i * r + j) * c + k]
  np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("r", [2, 3])
def test_depth_to_space_3d_matches_index_loop(r):
  c = 2
  x = np.random.default_rng(1).normal(size=(2, 2, 3, 1, r**3 * c))
  y = np.asarray(depth_to_space(jnp.asarray(x), r))
  assert y.shape == (2, 2 * r, 3 * r, 1 * r, c)
  want = np.zeros_like(y)
  for n, p, q, s in itertools.product(range(2), range(2), range(3), range(1)):
    for i, j, k, ch in itertools.product(range(r), range(r), range(r),
                                         range(c)):
      want[n, p * r + i, q * r + j, s * r + k, ch] = (
          x[n, p, q, s, ((i * r + j) * r + k) * c + ch])
  np.testing.assert_array_equal(y, want)


def test_depth_to_space_rejects_bad_channels():
  with pytest.raises(ValueError, match="not divisible"):
    depth_to_space(jnp.zeros((1, 2, 2, 2, 12)), 2)  # 12 % 8 != 0


def test_icnr_tiles_r_to_the_ndim_groups():
  kernel = icnr_init()(jax.random.key(0), (3, 3, 3, 2, 8 * 5))
  groups = np.split(np.asarray(kernel), 8, axis=-1)
  for g in groups[1:]:
    np.testing.assert_array_equal(g, groups[0])
  assert not np.allclose(groups[0][..., 0], groups[0][..., 1])


def test_3d_subpixel_init_is_nearest_neighbour_upsampling():
  feats = 3
  layer = Upsample2x(feats, kind="subpixel", use_bias=False)
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 2, 2))
  v = layer.init(jax.random.key(1), x)
  kernel = v["params"]["Conv_0"]["kernel"]
  assert kernel.shape == (3, 3, 3, 2, 8 * feats)
  y = layer.apply(v, x)
  assert y.shape == (2, 6, 8, 4, feats)
  # The stride-1 conv with the first sub-pixel group's kernel...
  conv = nn.Conv(feats, (3, 3, 3), padding="SAME", use_bias=False)
  low = conv.apply({"params": {"kernel": kernel[..., :feats]}}, x)
  # ...upsampled by repeating each voxel into a 2x2x2 block.
  nearest = jnp.repeat(jnp.repeat(jnp.repeat(low, 2, 1), 2, 2), 2, 3)
  np.testing.assert_allclose(y, nearest, rtol=1e-5, atol=1e-6)
  # Equivalently, all 8 voxels of each output block are equal.
  for i, j, k in itertools.product(range(2), repeat=3):
    np.testing.assert_allclose(y[:, i::2, j::2, k::2], y[:, 0::2, 0::2, 0::2],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["subpixel", "transpose"])
def test_upsample_3d_shapes(kind):
  layer = Upsample2x(3, kind=kind)
  x = jnp.zeros((2, 2, 2, 2, 4))
  v = jax.eval_shape(layer.init, jax.random.key(0), x)
  y = jax.eval_shape(layer.apply, v, x)
  assert y.shape == (2, 4, 4, 4, 3)
  (kernel,) = [s for k, s in _flat_shapes(v).items() if k.endswith("kernel")]
  assert kernel == ((3, 3, 3, 4, 24) if kind == "subpixel" else
                    (4, 4, 4, 4, 3))


# ------------------------------------------------------------------- GAN ---


@pytest.mark.parametrize("upsample", ["subpixel", "transpose"])
def test_3d_generator_matches_discriminator(upsample):
  size = 8
  g = Generator(image_size=size, channels=1, width=4, upsample=upsample,
                ndim=3)
  d = Discriminator(image_size=size, width=4, norm="batch", ndim=3)
  z = jax.random.normal(jax.random.key(1), (2, 4))
  gv = g.init(jax.random.key(0), z, train=False)
  assert gv["params"]["project"]["kernel"].shape == (4, 4**3 * 4)
  x = g.apply(gv, z, train=False)
  assert x.shape == (2, size, size, size, 1)
  assert float(jnp.max(jnp.abs(x))) < 1.0  # tanh output
  assert float(jnp.std(x)) > 0
  dv = d.init(jax.random.key(2), x, train=False)
  assert dv["params"]["down0"]["kernel"].shape == (4, 4, 4, 1, 4)
  logits = d.apply(dv, x, train=False)
  assert logits.shape == (2,)
  assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_3d_conditional_models_use_labels(norm):
  size = 16
  g = Generator(image_size=size, channels=1, width=4, num_classes=3, ndim=3)
  d = Discriminator(image_size=size, width=4, num_classes=3, norm=norm, ndim=3)
  z = jax.random.normal(jax.random.key(0), (1, 4))
  z = jnp.concatenate([z, z])  # same z, different labels
  y = jnp.array([0, 2])
  gv = g.init(jax.random.key(1), z, y, train=False)
  x = g.apply(gv, z, y, train=False)
  assert x.shape == (2, size, size, size, 1)
  assert not np.allclose(x[0], x[1])
  dv = d.init(jax.random.key(2), x, y, train=False)
  same_x = jnp.concatenate([x[:1], x[:1]])
  logits = d.apply(dv, same_x, y, train=False)
  assert logits.shape == (2,)
  assert not np.isclose(logits[0], logits[1])
  if norm == "batch":
    assert dv["batch_stats"]["bn1"]["mean"].shape == (8,)


def test_3d_layer_norm_is_per_example_over_all_axes():
  d = Discriminator(image_size=16, width=4, norm="layer", ndim=3)
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 16, 1))
  v = d.init(jax.random.key(1), x, train=False)
  _, state = d.apply(v, x, train=False, capture_intermediates=True,
                     mutable=["intermediates"])
  (h,) = state["intermediates"]["ln1"]["__call__"]  # [2, 4, 4, 4, 8]
  h = np.asarray(h)
  assert h.shape == (2, 4, 4, 4, 8)
  # Scale 1, bias 0 at init: each example is standardised as a whole...
  np.testing.assert_allclose(h.mean(axis=(1, 2, 3, 4)), 0, atol=1e-4)
  np.testing.assert_allclose(h.var(axis=(1, 2, 3, 4)), 1, atol=1e-2)
  # ...not each x-slice on its own (as reduction_axes=(-3, -2, -1) would).
  assert np.abs(h.mean(axis=(2, 3, 4))).max() > 1e-2
  # And the logit of one example does not depend on the other.
  x2 = x.at[1].multiply(3.0)
  np.testing.assert_allclose(d.apply(v, x, train=False)[0],
                             d.apply(v, x2, train=False)[0], rtol=1e-5)


def test_discriminator_rejects_wrong_ndim_input():
  d3 = Discriminator(image_size=8, width=4, ndim=3)
  with pytest.raises(ValueError, match="built for 8x8x8"):
    d3.init(jax.random.key(0), jnp.zeros((2, 8, 8, 1)), train=False)
  d2 = Discriminator(image_size=8, width=4)
  with pytest.raises(ValueError, match="built for 8x8"):
    d2.init(jax.random.key(0), jnp.zeros((2, 8, 8, 8, 1)), train=False)
  with pytest.raises(ValueError, match="ndim"):
    Generator(image_size=8, ndim=4).init(jax.random.key(0), jnp.zeros((2, 4)))


def test_3d_models_by_shape_inference_at_32():
  g = Generator(image_size=32, channels=1, width=4, num_classes=2, ndim=3)
  d = Discriminator(image_size=32, width=4, num_classes=2, norm="layer", ndim=3)
  z, y = jnp.zeros((2, 4)), jnp.zeros((2,), jnp.int32)
  gv = jax.eval_shape(lambda: g.init(jax.random.key(0), z, y, train=False))
  x = jax.eval_shape(lambda v: g.apply(v, z, y, train=False), gv)
  assert x.shape == (2, 32, 32, 32, 1)
  xz = jnp.zeros(x.shape)
  dv = jax.eval_shape(lambda: d.init(jax.random.key(0), xz, y, train=False))
  logits = jax.eval_shape(lambda v: d.apply(v, xz, y, train=False), dv)
  assert logits.shape == (2,)


# ------------------------------------------------------------------- VAE ---


@pytest.mark.parametrize("params", [("mean", "log_scale"), ("logits",)])
def test_3d_vae_encodes_and_decodes(params):
  shape = (8, 8, 8, 1)
  model = VAE(data_shape=shape, latent_dim=3, params=params, width=4,
              num_conditions=2)
  assert model.is_image
  x = jax.random.normal(jax.random.key(0), (2,) + shape)
  cond = jnp.array([0, 1])
  v = model.init(jax.random.key(1), x, cond)
  assert v["params"]["down0"]["kernel"].shape == (4, 4, 4, 1, 4)
  mean, log_var = model.apply(v, x, cond, method=VAE.encode)
  assert mean.shape == log_var.shape == (2, 3)
  out = model.apply(v, mean, cond, method=VAE.decode)
  assert set(out) == set(params)
  assert all(o.shape == (2,) + shape for o in out.values())
  # IWAE: K = 3 samples per example on a leading axis.
  z = jax.random.normal(jax.random.key(2), (3, 2, 3))
  out_k = model.apply(v, z, cond, method=VAE.decode)
  assert all(o.shape == (3, 2) + shape for o in out_k.values())
  # Sample k of the folded batch decodes as it would on its own.
  one = model.apply(v, z[1], cond, method=VAE.decode)
  for p in params:
    np.testing.assert_allclose(out_k[p][1], one[p], rtol=1e-5, atol=1e-6)


def test_3d_vae_by_shape_inference_at_16():
  shape = (16, 16, 16, 2)
  model = VAE(data_shape=shape, latent_dim=5, params=("mean", "log_scale"),
              width=4)
  x = jnp.zeros((2,) + shape)
  v = jax.eval_shape(model.init, jax.random.key(0), x)
  mean, _ = jax.eval_shape(lambda v: model.apply(v, x, method=VAE.encode), v)
  assert mean.shape == (2, 5)
  z = jnp.zeros((4, 2, 5))
  out = jax.eval_shape(lambda v: model.apply(v, z, method=VAE.decode), v)
  assert all(o.shape == (4, 2) + shape for o in out.values())


def test_vae_is_image_and_rejects_non_cubic():
  assert VAE(data_shape=(8, 8, 1), latent_dim=2, params=("logits",)).is_image
  assert not VAE(data_shape=(8,), latent_dim=2, params=("logits",)).is_image
  model = VAE(data_shape=(8, 8, 16, 1), latent_dim=2, params=("logits",))
  with pytest.raises(ValueError, match="cubic"):
    model.init(jax.random.key(0), jnp.zeros((2, 8, 8, 16, 1)))


# -- Downsample2x: nn.Conv's stride-2 layer in space-to-depth form -------------


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (2, 8, 4, 6, 2)])
def test_downsample2x_is_the_strided_conv_with_the_same_parameters(shape):
  from medgen_jax.models.layers import Downsample2x, space_to_depth
  n = len(shape) - 2
  x = jax.random.normal(jax.random.key(0), shape)
  ours = Downsample2x(5)
  ref = nn.Conv(5, (4,) * n, strides=(2,) * n, padding="SAME")
  params = ours.init(jax.random.key(1), x)
  ref_params = ref.init(jax.random.key(1), x)
  # Same names, shapes and initial values: checkpoints interchange.
  jax.tree.map(np.testing.assert_array_equal, params, ref_params)
  params = jax.tree.map(
      lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape),
      params)  # a non-zero bias too
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x),
                             rtol=1e-5, atol=1e-5)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  # space_to_depth inverts depth_to_space.
  y = jax.random.normal(jax.random.key(3), (2,) + (4,) * n + (3,))
  np.testing.assert_array_equal(depth_to_space(space_to_depth(y, 2), 2), y)
