"""Encoder/decoder pairs for variational autoencoders (Kingma & Welling 2014).

Two bodies share one interface:
  * images [b, s, s, c] (2-D) or isotropic volumes [b, s, s, s, c] (3-D): a
    convolutional encoder and a sub-pixel decoder built from the GAN's
    resolution plan (`models/layers.py`), so every size the GAN supports
    (28, 64, ...) works with 1 or 3 channels, in 2-D or 3-D;
  * vectors [b, features] (gene expression): MLPs. Counts enter the encoder
    as log1p(x) (Lopez et al. 2018, scVI).

`VAE.encode(x, cond)` gives the Gaussian posterior q(z|x) as (mean, log_var)
[b, latent]; `VAE.decode(z, cond, library_size)` gives the parameters of the
observation model named by `likelihood` (objectives/likelihoods.py), each
shaped like x:
  * per-example outputs: Bernoulli "logits", Gaussian/discretised "mean",
    NB/ZINB "mu" (= library size x a softmax over genes, as in scVI, so the
    decoder models proportions and the library size scales them) and ZINB
    "pi_logits";
  * a dispersion shared by all examples: "log_scale" per gene for vector
    data (per pixel and example for images) and NB/ZINB "theta" per gene.
Conditioning (a class label or a batch covariate, `num_conditions` > 0)
concatenates a learned embedding to the encoder's features and to z.
No batch norm anywhere: every example's loss depends on that example alone
(what per-example gradients, and DP-SGD later, need).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from medgen_jax.models.layers import (Downsample2x, Upsample2x,
                                      num_resolution_stages)

MAX_FEATURES = 512
PER_FEATURE_PARAMS = ("log_scale", "theta")  # shared across examples for vectors
CONDITION_DIM = 16


def _softplus_inverse_init(value: float):
  return nn.initializers.constant(jnp.log(jnp.expm1(value)))


class VAE(nn.Module):
  """Encoder + decoder for images or vectors.

  Attributes:
    data_shape: one example's shape: (s, s, c) images, (s, s, s, c)
      volumes or (features,) vectors.
    latent_dim: size of z.
    params: decoder outputs the likelihood needs (Likelihood.params).
    count_data: x holds counts (encoder sees log1p(x); "mu" uses the
      library size).
    hidden: MLP widths (vectors).
    width: features of the first conv block / last decoder block (images
      and volumes).
    num_conditions: classes of the conditioning variable; 0 = none.
  """

  data_shape: tuple[int, ...]
  latent_dim: int
  params: tuple[str, ...]
  count_data: bool = False
  hidden: Sequence[int] = (128, 128)
  width: int = 32
  num_conditions: int = 0

  @property
  def is_image(self) -> bool:
    """True for 2-D images (s, s, c) and 3-D volumes (s, s, s, c)."""
    return len(self.data_shape) in (3, 4)

  @property
  def spatial_ndim(self) -> int:
    """Spatial dims of an image (2) or volume (3); 0 for vectors."""
    return len(self.data_shape) - 1 if self.is_image else 0

  def setup(self):
    if self.num_conditions:
      self.condition = nn.Embed(self.num_conditions, CONDITION_DIM)
    if self.is_image:
      *spatial, c = self.data_shape
      nd = self.spatial_ndim
      if len(set(spatial)) != 1:
        raise ValueError(f"image data_shape must be (s, s, c) or (s, s, s, c) "
                         f"(square / cubic), got {self.data_shape}")
      base, stages = num_resolution_stages(spatial[0])
      self._base, self._stages = base, stages
      if nd == 3:  # the same layer in a form XLA:CPU differentiates fast
        self.down = [Downsample2x(min(self.width * 2**i, MAX_FEATURES),
                                  name=f"down{i}") for i in range(stages)]
      else:
        self.down = [nn.Conv(min(self.width * 2**i, MAX_FEATURES), (4,) * nd,
                             strides=(2,) * nd, padding="SAME",
                             name=f"down{i}") for i in range(stages)]
      top = min(self.width * 2**(stages - 1), MAX_FEATURES)
      self._top = top
      self.project = nn.Dense(base ** nd * top, name="project")
      self.up = [Upsample2x(min(self.width * 2**(stages - 2 - i), MAX_FEATURES),
                            name=f"up{i}") for i in range(stages - 1)]
      self.to_params = Upsample2x(c * len(self.params), name="to_params")
    else:
      (g,) = self.data_shape
      self.enc_layers = [nn.Dense(h, name=f"enc{i}")
                         for i, h in enumerate(self.hidden)]
      self.dec_layers = [nn.Dense(h, name=f"dec{i}")
                         for i, h in enumerate(reversed(self.hidden))]
      per_example = [p for p in self.params if p not in PER_FEATURE_PARAMS]
      self.heads = {p: nn.Dense(g, name=f"head_{p}") for p in per_example}
      self.shared = {p: self.param(f"gene_{p}", nn.initializers.zeros, (g,))
                     for p in self.params if p in PER_FEATURE_PARAMS}
    self.to_mean = nn.Dense(self.latent_dim, name="z_mean")
    self.to_log_var = nn.Dense(self.latent_dim, name="z_log_var")

  def _cond(self, cond):
    if not self.num_conditions:
      return None
    if cond is None:
      raise ValueError("a conditional VAE needs its condition")
    return self.condition(cond)  # [b, CONDITION_DIM]

  def encode(self, x: jax.Array, cond: jax.Array | None = None):
    """x [b, *data_shape] -> (mean, log_var), each [b, latent]."""
    h = jnp.log1p(x) if self.count_data else x
    if self.is_image:
      for layer in self.down:
        h = nn.leaky_relu(layer(h), 0.2)
      h = h.reshape(h.shape[0], -1)
    c = self._cond(cond)
    if c is not None:
      h = jnp.concatenate([h, c], axis=-1)
    if not self.is_image:
      for layer in self.enc_layers:
        h = nn.gelu(layer(h))
    return self.to_mean(h), self.to_log_var(h)

  def decode(self, z: jax.Array, cond: jax.Array | None = None,
             library_size: jax.Array | None = None) -> dict[str, jax.Array]:
    """z [..., b, latent] -> likelihood parameters, each [..., b, *data_shape].

    Leading sample axes (IWAE's K) are folded into the batch and restored.
    """
    lead = z.shape[:-2]
    z = z.reshape(-1, z.shape[-1])
    c = self._cond(cond)
    if c is not None:
      c = jnp.broadcast_to(c, lead + c.shape).reshape(-1, c.shape[-1])
      z = jnp.concatenate([z, c], axis=-1)
    if self.is_image:
      out = self._decode_image(z)
    else:
      out = self._decode_vector(z, library_size, lead)
    return {k: v.reshape(lead + (-1,) + self.data_shape) for k, v in out.items()}

  def _decode_image(self, z):
    # [n, base, base, top] or [n, base, base, base, top]
    h = self.project(z).reshape(z.shape[0], *(self._base,) * self.spatial_ndim,
                                self._top)
    h = nn.gelu(h)
    for layer in self.up:
      h = nn.gelu(layer(h))
    h = self.to_params(h)  # [n, *(s,) * ndim, c * len(params)]
    parts = jnp.split(h, len(self.params), axis=-1)
    return dict(zip(self.params, parts))

  def _decode_vector(self, z, library_size, lead):
    h = z
    for layer in self.dec_layers:
      h = nn.gelu(layer(h))
    out = {}
    for p in self.params:
      if p in PER_FEATURE_PARAMS:
        v = self.shared[p]
        out[p] = (jnp.broadcast_to(v, (h.shape[0],) + v.shape) if p == "log_scale"
                  else jnp.broadcast_to(nn.softplus(v) + 1e-4,
                                        (h.shape[0],) + v.shape))
      elif p == "mu":
        proportions = nn.softmax(self.heads[p](h), axis=-1)  # [n, genes]
        if library_size is None:
          raise ValueError("count likelihoods need the library size")
        lib = jnp.broadcast_to(library_size, lead + library_size.shape)
        out[p] = proportions * lib.reshape(-1, 1)
      else:
        out[p] = self.heads[p](h)
    return out

  def __call__(self, x, cond=None, library_size=None):
    """Initialisation and shape checks: encode, then decode the mean."""
    mean, _ = self.encode(x, cond)
    return self.decode(mean, cond, library_size)
