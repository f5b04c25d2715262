"""A small convolutional image classifier (2-D images or 3-D volumes).

Built from the image families' resolution plan (`models/layers.py`): a
3x3 stem, then one stride-2 4x4 convolution per stage of
`num_resolution_stages(size)` (the exact `Downsample2x` form in 3-D, which
XLA:CPU differentiates fast), each followed by an optional LayerNorm over
channels and a GELU; global average pooling; a Dense to `feature_dim` and a
GELU give the penultimate features (the domain feature extractor of
Fréchet distance / KID / precision-recall); a Dense gives the logits.

No batch norm: every example's output depends on that example alone (what
per-example losses, and DP-SGD later, need).

    model = ImageClassifier(num_classes=2, width=8)
    logits = model.apply(v, x)                                   # [b, K]
    feats = model.apply(v, x, method=ImageClassifier.features)   # [b, F]
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from medgen_jax.models.layers import Downsample2x, num_resolution_stages

MAX_FEATURES = 512
NORMS = ("layer", "none")


class ImageClassifier(nn.Module):
  """Images [b, s, s, c] (ndim 2) or volumes [b, s, s, s, c] (ndim 3) ->
  class logits [b, num_classes].

  Attributes:
    num_classes: K.
    width: channels of the stem and first stage (doubling per stage, at
      most MAX_FEATURES).
    ndim: spatial dims, 2 or 3.
    feature_dim: size of the penultimate features.
    norm: "layer" (LayerNorm over channels) or "none".
    dropout: rate on the features before the logits (train only).
  """

  num_classes: int
  width: int = 32
  ndim: int = 2
  feature_dim: int = 128
  norm: str = "layer"
  dropout: float = 0.0

  def _norm(self, x, name):
    if self.norm == "layer":
      return nn.LayerNorm(name=name)(x)
    if self.norm == "none":
      return x
    raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")

  @nn.compact
  def forward(self, x: jax.Array, train: bool = False
              ) -> tuple[jax.Array, jax.Array]:
    """(features [b, feature_dim], logits [b, num_classes])."""
    nd = self.ndim
    if x.ndim != nd + 2:
      raise ValueError(f"ImageClassifier(ndim={nd}) takes "
                       f"[b, {', '.join(['s'] * nd)}, c], got {x.shape}")
    _, stages = num_resolution_stages(int(x.shape[1]))
    h = nn.Conv(self.width, (3,) * nd, padding="SAME", name="stem")(x)
    h = nn.gelu(self._norm(h, "stem_norm"))
    for i in range(stages):
      f = min(self.width * 2**i, MAX_FEATURES)
      if nd == 3:
        h = Downsample2x(f, name=f"down{i}")(h)
      else:
        h = nn.Conv(f, (4,) * nd, strides=(2,) * nd, padding="SAME",
                    name=f"down{i}")(h)
      h = nn.gelu(self._norm(h, f"norm{i}"))
    h = jnp.mean(h, axis=tuple(range(1, nd + 1)))  # [b, channels]
    features = nn.gelu(nn.Dense(self.feature_dim, name="features")(h))
    h = nn.Dropout(self.dropout, deterministic=not train or not self.dropout)(
        features)
    logits = nn.Dense(self.num_classes, name="logits")(h)
    return features, logits

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits [b, num_classes]."""
    return self.forward(x, train)[1]

  def features(self, x: jax.Array) -> jax.Array:
    """Penultimate features [b, feature_dim] (no dropout)."""
    return self.forward(x, False)[0]
