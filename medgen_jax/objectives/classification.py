"""Classification objectives: per-example softmax cross-entropy and scores.

`cross_entropy` returns one value per example (the step reduces, as every
objective here does), with optional label smoothing (Szegedy et al. 2016,
"Rethinking the Inception Architecture for Computer Vision"): the target is
(1 - eps) * one_hot(y) + eps / K over K classes, so

    loss_i = -sum_k target_ik * log softmax(logits_i)_k.

`accuracy` is per example too; `per_class_recall` and `balanced_accuracy`
summarise predictions of a whole held-out split (numpy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-example softmax cross-entropy in nats.

  Args:
    logits: [b, K] unnormalised class scores.
    labels: [b] int class indices in 0..K-1.
    label_smoothing: eps in [0, 1): the weight spread uniformly over the K
      classes.

  Returns:
    [b] loss per example.
  """
  k = logits.shape[-1]
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [b, K]
  target = jax.nn.one_hot(labels, k, dtype=log_p.dtype)            # [b, K]
  if label_smoothing:
    target = (1.0 - label_smoothing) * target + label_smoothing / k
  return -jnp.sum(target * log_p, axis=-1)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """[b] 1.0 where the arg-max class is the label, else 0.0."""
  return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def per_class_recall(predicted: np.ndarray, labels: np.ndarray,
                     num_classes: int) -> np.ndarray:
  """[K] fraction of each class's examples predicted as that class (NaN for
  a class with no examples)."""
  predicted, labels = np.asarray(predicted), np.asarray(labels)
  recall = np.full(num_classes, np.nan)
  for k in range(num_classes):
    mask = labels == k
    if mask.any():
      recall[k] = float(np.mean(predicted[mask] == k))
  return recall


def balanced_accuracy(predicted: np.ndarray, labels: np.ndarray,
                      num_classes: int) -> float:
  """Mean recall over the classes present in `labels`."""
  return float(np.nanmean(per_class_recall(predicted, labels, num_classes)))
