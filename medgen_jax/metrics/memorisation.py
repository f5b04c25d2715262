"""Does a generator copy its training data? Nearest-neighbour distances.

A generated sample that lies much closer to one training example than real
held-out examples do is a candidate copy. The reference is therefore the
distribution of distances from real HELD-OUT examples to the training set
(images the model never saw, drawn from the same population): a generator
that memorises shows samples whose nearest-training distances fall below
that distribution's low quantiles, more often than held-out data do
(the "data-copying" view of Meehan et al. 2020, "A non-parametric test to
detect data-copying in generative models", and the nearest-neighbour
checks of most GAN papers).

  * `nearest_neighbours`: index and Euclidean distance of each query's
    nearest reference row, computed in blocks (no n x m matrix in memory);
  * `copy_report`: generated vs held-out nearest-training distances:
    quantiles, the fraction of each below the held-out's 1st and 5th
    percentiles, and a Mann-Whitney-style probability that a sample is
    closer to the training set than a held-out example.
"""

from __future__ import annotations

import numpy as np

from medgen_jax.errors import ConfigError

_BLOCK = 1 << 22  # distances held in memory at once (32 MiB of float64)


def _rows(x, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim < 2 or x.shape[0] < 1:
    raise ConfigError(f"{name}: expected rows [n, ...] with n >= 1, got "
                      f"shape {x.shape}")
  x = x.reshape(x.shape[0], -1)
  if not np.all(np.isfinite(x)):
    raise ConfigError(f"{name}: holds NaN or infinite values")
  return x


def nearest_neighbours(queries, reference) -> tuple[np.ndarray, np.ndarray]:
  """Each query's nearest reference row (Euclidean distance).

  Args:
    queries: [n, ...] (images are flattened).
    reference: [m, ...] with the same trailing size.

  Returns:
    (index int64 [n] into reference, distance float64 [n]).
  """
  q, r = _rows(queries, "queries"), _rows(reference, "reference")
  if q.shape[1] != r.shape[1]:
    raise ConfigError(f"nearest_neighbours: queries have {q.shape[1]} "
                      f"values per row, the reference {r.shape[1]}")
  r_sq = np.einsum("ij,ij->i", r, r)
  idx = np.empty(len(q), np.int64)
  dist = np.empty(len(q), np.float64)
  rows = max(1, _BLOCK // max(len(r), 1))
  for start in range(0, len(q), rows):
    block = q[start:start + rows]
    d2 = (np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * block @ r.T
          + r_sq[None, :])
    j = d2.argmin(1)
    idx[start:start + rows] = j
    dist[start:start + rows] = np.sqrt(np.maximum(
        d2[np.arange(len(block)), j], 0.0))
  return idx, dist


def copy_report(fake_to_train, held_out_to_train) -> dict[str, float]:
  """Generated samples' nearest-training distances against held-out data's.

  Args:
    fake_to_train: float [n], each generated sample's distance to its
      nearest training example.
    held_out_to_train: float [m], each real held-out example's distance to
      its nearest training example (the reference: what a model that copies
      nothing, i.e. new real data, looks like).

  Returns:
    {"fake_q01" .. "fake_q50", "held_out_q01" .. "held_out_q50": quantiles,
     "fake_below_held_out_q01", "fake_below_held_out_q05": the fraction of
     samples closer than the held-out 1st / 5th percentile (0.01 / 0.05
     expected without copying),
     "p_fake_closer": P(fake distance < held-out distance) (+ half the ties),
     0.5 when the two distributions agree, near 1 for a copying model,
     "n_fake", "n_held_out"}.
  """
  f = np.asarray(fake_to_train, np.float64).ravel()
  h = np.asarray(held_out_to_train, np.float64).ravel()
  if f.size < 1 or h.size < 1:
    raise ConfigError("copy_report: needs at least one distance of each "
                      "kind")
  out = {}
  for q in (1, 5, 25, 50):
    out[f"fake_q{q:02d}"] = float(np.percentile(f, q))
    out[f"held_out_q{q:02d}"] = float(np.percentile(h, q))
  for q in (1, 5):
    out[f"fake_below_held_out_q{q:02d}"] = float(
        np.mean(f < np.percentile(h, q)))
  hs = np.sort(h)
  below = np.searchsorted(hs, f, side="left")  # held-out strictly closer
  ties = np.searchsorted(hs, f, side="right") - below
  out["p_fake_closer"] = float(np.mean((h.size - below - ties + 0.5 * ties)
                                       / h.size))
  out["n_fake"], out["n_held_out"] = float(f.size), float(h.size)
  return out
