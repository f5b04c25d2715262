"""DCGAN generator and discriminator for 2-D images or 3-D volumes.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks". Both networks are built from
one resolution plan (`num_resolution_stages`), so the generator always emits
exactly the [image_size, image_size, channels] images (ndim=2) or
[image_size, image_size, image_size, channels] isotropic volumes (ndim=3) the
discriminator takes. Images have 1 or 3 channels; volumes usually 1.

Conditioning (e.g. normal vs pneumonia): the generator concatenates a learned
class embedding to z; the discriminator adds a projection term
<embed(y), phi(x)> to its logit (Miyato & Koyama 2018, "cGANs with Projection
Discriminator").

Normalisation: BatchNorm in the generator (all hidden blocks, not the output),
as in DCGAN. In the discriminator it is a choice: "batch" (DCGAN), "layer"
(per-example; required by WGAN-GP, whose gradient penalty is defined per
example, and by later per-example privacy training), or "none".
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from medgen_jax.models.layers import (Downsample2x, Upsample2x,
                                      num_resolution_stages)

D_NORMS = ("batch", "layer", "none")
G_NORMS = ("batch", "pixel", "none")
MAX_FEATURES = 512


def _check_ndim(ndim: int) -> None:
  if ndim not in (2, 3):
    raise ValueError(f"ndim must be 2 (images) or 3 (volumes), got {ndim}")


def pixel_norm(h: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Scales each position's feature vector (last axis) to unit root mean
  square: h / sqrt(mean(h**2) + eps). Per example and per position."""
  return h * jax.lax.rsqrt(jnp.mean(jnp.square(h), -1, keepdims=True) + eps)


class Generator(nn.Module):
  """z [b, latent_dim] (+ labels [b]) -> images in (-1, 1).

  Output [b, size, size, channels] (ndim=2) or [b, size, size, size,
  channels] (ndim=3).

  Attributes:
    image_size: output side length (base * 2**k, base in 4..7).
    channels: 1 (grayscale) or 3 (RGB).
    width: features of the last hidden block; earlier blocks double it.
    num_classes: 0 for an unconditional generator.
    upsample: "subpixel" or "transpose" (see models/layers.py).
    ndim: spatial dims, 2 (images) or 3 (isotropic volumes).
    norm: after each hidden block, "batch" (DCGAN; couples the examples of a
      training batch), "pixel" (each position's feature vector scaled to
      unit root mean square, Karras et al. 2018; per example) or "none".
  """

  image_size: int = 28
  channels: int = 1
  width: int = 64
  num_classes: int = 0
  upsample: str = "subpixel"
  ndim: int = 2
  norm: str = "batch"

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True) -> jax.Array:
    _check_ndim(self.ndim)
    base, stages = num_resolution_stages(self.image_size)
    if self.norm not in G_NORMS:
      raise ValueError(f"norm must be one of {G_NORMS}, got {self.norm!r}")

    def normalize(name):
      if self.norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                            name=name)
      if self.norm == "pixel":
        return pixel_norm
      return lambda h: h
    bias = self.norm != "batch"  # batch norm brings its own offset
    h = z
    if self.num_classes:
      if labels is None:
        raise ValueError("a conditional generator needs labels")
      h = jnp.concatenate(
          [h, nn.Embed(self.num_classes, z.shape[-1], name="label_embed")(labels)],
          axis=-1)
    feats = min(self.width * 2 ** (stages - 1), MAX_FEATURES)
    h = nn.Dense(base ** self.ndim * feats, use_bias=bias, name="project")(h)
    # [b, base, base, feats] or [b, base, base, base, feats]
    h = h.reshape(h.shape[0], *(base,) * self.ndim, feats)
    h = nn.relu(normalize("bn_project")(h))
    for i in range(stages - 1):
      feats = min(self.width * 2 ** (stages - 2 - i), MAX_FEATURES)
      h = Upsample2x(feats, kind=self.upsample, use_bias=bias,
                     name=f"up{i}")(h)
      h = nn.relu(normalize(f"bn_up{i}")(h))
    h = Upsample2x(self.channels, kind=self.upsample, name="to_image")(h)
    return jnp.tanh(h)  # [b, *(image_size,) * ndim, channels]


class Discriminator(nn.Module):
  """images (+ labels [b]) -> logits [b].

  Input [b, size, size, channels] (ndim=2) or [b, size, size, size, channels]
  (ndim=3).

  Attributes:
    image_size: input side length.
    width: features of the first block; each stride-2 block doubles them.
    num_classes: 0 for an unconditional discriminator.
    norm: "batch", "layer" or "none" (never on the first block).
    ndim: spatial dims, 2 (images) or 3 (isotropic volumes).
    minibatch_std: group size of the minibatch standard deviation feature
      (Karras et al. 2018, "Progressive Growing of GANs"), 0 = off. In
      training, the last block's features get one more channel: the std of
      each feature over a group of this many consecutive examples (the whole
      batch when it does not divide the batch), averaged over features and
      positions. A generator that makes too little variety, or drops part of
      the data, makes groups whose std differs from real groups', which D can
      then see. Like batch norm, it mixes the examples of a batch, so in
      inference mode the running mean of the statistic is used instead
      (`batch_stats/mbstd`) and each example's logit is its own.
    pack: PacGAN's packing degree m (Lin et al. 2018, "PacGAN: The power of
      two samples in generative adversarial networks"), 1 = off. D judges
      m consecutive examples at once, stacked along the channel axis, so a
      generator that drops a mode or makes one too rarely is penalised far
      more than by single-sample judgements. The batch must be a multiple
      of m; each pack's logit is repeated for its m members, so the output
      stays one logit per example ([b]).
  """

  image_size: int = 28
  width: int = 64
  num_classes: int = 0
  norm: str = "batch"
  ndim: int = 2
  minibatch_std: int = 0
  pack: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True) -> jax.Array:
    if self.norm not in D_NORMS:
      raise ValueError(f"unknown norm {self.norm!r}; expected {D_NORMS}")
    _check_ndim(self.ndim)
    spatial = (self.image_size,) * self.ndim
    if x.ndim != self.ndim + 2 or x.shape[1:-1] != spatial:
      raise ValueError(f"discriminator built for "
                       f"{'x'.join(map(str, spatial))} inputs "
                       f"[b, *spatial, c] got {x.shape}")
    _, stages = num_resolution_stages(self.image_size)
    h = x
    if self.pack > 1:
      b, m = x.shape[0], self.pack
      if b % m:
        raise ValueError(f"a discriminator packing {m} examples needs a "
                         f"batch that is a multiple of {m}, got {b}")
      if labels is not None:
        raise ValueError("packing is for unconditional discriminators")
      # [b, *spatial, c] -> [b/m, *spatial, m*c]: member j's channels at j*c.
      h = jnp.moveaxis(x.reshape((b // m, m) + x.shape[1:]), 1, -2)
      h = h.reshape(h.shape[:-2] + (m * x.shape[-1],))
    for i in range(stages):
      feats = min(self.width * 2 ** i, MAX_FEATURES)
      use_bias = i == 0 or self.norm == "none"
      if self.ndim == 3:  # same layer, a form XLA:CPU differentiates fast
        h = Downsample2x(feats, use_bias=use_bias, name=f"down{i}")(h)
      else:
        h = nn.Conv(feats, (4,) * self.ndim, strides=(2,) * self.ndim,
                    padding="SAME", use_bias=use_bias, name=f"down{i}")(h)
      if i > 0 and self.norm == "batch":
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         name=f"bn{i}")(h)
      elif i > 0 and self.norm == "layer":
        # Per example: over every non-batch axis (spatial and features).
        h = nn.LayerNorm(reduction_axes=tuple(range(1, h.ndim)),
                         name=f"ln{i}")(h)
      h = nn.leaky_relu(h, 0.2)
    if self.minibatch_std:
      h = self._with_minibatch_std(h, train)
    phi = h.reshape(h.shape[0], -1)  # [b, base**ndim * feats]
    logits = nn.Dense(1, name="logit")(phi)[:, 0]
    if self.num_classes:
      if labels is None:
        raise ValueError("a conditional discriminator needs labels")
      embed = nn.Embed(self.num_classes, phi.shape[-1], name="projection",
                       embedding_init=nn.initializers.normal(0.02))(labels)
      logits = logits + jnp.sum(embed * phi, axis=-1)
    if self.pack > 1:
      logits = jnp.repeat(logits, self.pack)
    return logits  # [b]

  def _with_minibatch_std(self, h: jax.Array, train: bool) -> jax.Array:
    running = self.variable("batch_stats", "mbstd",
                            lambda: jnp.zeros((), jnp.float32))
    b = h.shape[0]
    if train:
      g = self.minibatch_std if b % self.minibatch_std == 0 else b
      groups = h.reshape((b // g, g) + h.shape[1:])
      std = jnp.sqrt(jnp.var(groups, axis=1) + 1e-8)   # [b/g, *spatial, f]
      stat = jnp.repeat(jnp.mean(std, axis=tuple(range(1, std.ndim))), g)
      if not self.is_initializing():
        running.value = 0.9 * running.value + 0.1 * jnp.mean(stat)
    else:
      stat = jnp.full((b,), running.value)
    channel = jnp.broadcast_to(stat.reshape((b,) + (1,) * (h.ndim - 1)),
                               h.shape[:-1] + (1,))
    return jnp.concatenate([h, channel.astype(h.dtype)], axis=-1)
