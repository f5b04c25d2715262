"""The one place where per-example losses become a scalar.

Objectives return one value per example; the gradient function of
train/update.py calls `mean_over_batch` on them. The normaliser is the
batch's size (static), never a data-dependent sum such as the number of
unmasked examples: that keeps each example's share of the update fixed,
which is what differentially private training needs (its sensitivity
analysis assumes division by the expected batch size) and what keeps a
masked example from changing the weight of the others.

Per-timestep masks belong inside a sequence objective's per-example value;
`weights` here mark whole examples (padding, importance weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mean_over_batch(values: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """Mean of per-example values over the batch.

  Args:
    values: [batch] per-example losses.
    weights: optional [batch] non-negative example weights (0 = padding).

  Returns:
    Scalar: sum(weights * values) / batch; the plain mean when weights is
    None.
  """
  if values.ndim != 1:
    raise ValueError(f"expected per-example values [batch], got {values.shape}")
  if weights is None:
    return jnp.mean(values)
  if weights.shape != values.shape:
    raise ValueError(f"weights {weights.shape} must match values {values.shape}")
  return jnp.sum(weights.astype(values.dtype) * values) / values.shape[0]
