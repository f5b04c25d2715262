"""VAE encoder/decoder shapes at the supported sizes, and conditioning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.models.vae import VAE


@pytest.mark.parametrize("shape,params", [
    ((28, 28, 1), ("mean", "log_scale")),
    ((64, 64, 3), ("logits",)),
    ((2000,), ("mu", "theta", "pi_logits")),
    ((7129,), ("mean", "log_scale")),
])
def test_shapes_by_shape_inference(shape, params):
  model = VAE(data_shape=shape, latent_dim=8, params=params,
              count_data="mu" in params, hidden=(64, 32), width=8,
              num_conditions=3)
  x = jnp.zeros((2,) + shape)
  cond, lib = jnp.zeros((2,), jnp.int32), jnp.ones((2,))
  variables = jax.eval_shape(model.init, jax.random.key(0), x, cond, lib)
  mean, log_var = jax.eval_shape(
      lambda v: model.apply(v, x, cond, method=VAE.encode), variables)
  assert mean.shape == log_var.shape == (2, 8)
  z = jnp.zeros((5, 2, 8))  # K = 5 samples per example (IWAE)
  out = jax.eval_shape(
      lambda v: model.apply(v, z, cond, lib, method=VAE.decode), variables)
  assert set(out) == set(params)
  assert all(o.shape == (5, 2) + shape for o in out.values())


def test_condition_changes_the_decoder_and_counts_scale_with_library():
  model = VAE(data_shape=(6,), latent_dim=3, params=("mu", "theta"),
              count_data=True, hidden=(16,), num_conditions=2)
  x = jnp.ones((2, 6))
  v = model.init(jax.random.key(0), x, jnp.zeros((2,), jnp.int32),
                 jnp.ones((2,)))
  z = jax.random.normal(jax.random.key(1), (2, 3))
  a = model.apply(v, z, jnp.array([0, 0]), jnp.array([10.0, 20.0]),
                  method=VAE.decode)
  b = model.apply(v, z, jnp.array([1, 1]), jnp.array([10.0, 20.0]),
                  method=VAE.decode)
  assert not np.allclose(a["mu"], b["mu"])
  # mu = library size x proportions: rows sum to the library size.
  np.testing.assert_allclose(a["mu"].sum(-1), [10.0, 20.0], rtol=1e-5)
  assert (a["theta"] > 0).all()
