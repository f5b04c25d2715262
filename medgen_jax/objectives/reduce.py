"""The one place where per-example losses become a scalar.

Objectives return one value per example; train steps call `mean_over_batch`.
Keeping the reduction here lets later features (importance weights, masks,
DP-SGD's per-example clipping) change it without touching any objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mean_over_batch(values: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """Weighted mean of per-example values.

  Args:
    values: [batch] per-example losses.
    weights: optional [batch] non-negative weights (e.g. a mask).

  Returns:
    Scalar: sum(w * v) / max(sum(w), tiny); the plain mean when weights is None.
  """
  if values.ndim != 1:
    raise ValueError(f"expected per-example values [batch], got {values.shape}")
  if weights is None:
    return jnp.mean(values)
  weights = weights.astype(values.dtype)
  return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1e-12)
