"""Sample-quality metrics of generated data, computed on feature vectors.

Every function takes features float [n, d] of real samples and [m, d] of
generated ("fake") samples, computed elsewhere by a domain feature extractor
(an Inception network for natural images, a domain encoder otherwise). All
functions are pure numpy (scipy is not needed).

  * `frechet_distance`: the Fréchet distance between Gaussians fitted to the
    two sets (Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter 2017, "GANs
    trained by a two time-scale update rule converge to a local Nash
    equilibrium", NeurIPS; "FID" on Inception features);
  * `kernel_inception_distance`, `mmd2_unbiased`, `polynomial_kernel`: the
    unbiased squared MMD with a cubic polynomial kernel, averaged over random
    subsets (Bińkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD
    GANs", ICLR; "KID");
  * `prdc`: improved precision and recall from k-nearest-neighbour balls
    (Kynkäänniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved precision
    and recall metric for assessing generative models", NeurIPS) and density
    and coverage (Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable fidelity and
    diversity metrics for generative models", ICML);
  * `frechet_floor`, `quality_report`: the Fréchet distance between two sets
    of REAL samples of a given size (the best any generator can score at that
    sample size, since the estimator is biased upwards by finite samples),
    and a report of all of the above against held-out real data.
Real features with too few rows, mismatched widths or non-finite values raise
a one-line DataError; bad settings (k, sizes) raise a ConfigError.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from medgen_jax.errors import ConfigError, DataError

_PAIR_BLOCK = 1 << 22   # distances held in memory at once by prdc (32 MiB)


def _features(x, name: str, min_rows: int = 2) -> np.ndarray:
  """Validates features [n, d], n >= min_rows, finite; returns float64."""
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[1] < 1:
    raise DataError(f"{name}: expected features [n, d], got shape {x.shape}")
  if x.shape[0] < min_rows:
    raise DataError(f"{name}: needs at least {min_rows} samples, got "
                    f"{x.shape[0]}")
  if not np.isfinite(x).all():
    raise DataError(f"{name}: features must be finite (found NaN or inf)")
  return x


def _pair(real, fake, what: str, min_rows: int = 2):
  """Validates real [n, d] and fake [m, d] with the same d."""
  real = _features(real, f"{what}: real", min_rows)
  fake = _features(fake, f"{what}: fake", min_rows)
  if real.shape[1] != fake.shape[1]:
    raise DataError(f"{what}: real features have d={real.shape[1]} but fake "
                    f"features have d={fake.shape[1]}; use one extractor")
  return real, fake


# ---------------------------------------------------------------- Fréchet


def gaussian_stats(x) -> tuple[np.ndarray, np.ndarray]:
  """Mean [d] and unbiased (ddof=1) covariance [d, d] of features x [n, d]."""
  x = _features(x, "gaussian_stats")
  mu = x.mean(0)                                                  # [d]
  centered = x - mu                                               # [n, d]
  return mu, centered.T @ centered / (x.shape[0] - 1)             # [d, d]


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix [d, d]."""
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, cov1, mu2, cov2) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) (Heusel et al. 2017).

  Tr((S1 S2)^{1/2}) is the sum of the square roots of the eigenvalues of
  S1 S2, which are those of the symmetric PSD matrix S1^{1/2} S2 S1^{1/2};
  these are found with `eigh` and tiny negative rounding errors clipped to 0.
  This is real and stable also for singular covariances (d >= n), unlike
  the complex output of a general matrix square root.

  Args:
    mu1, mu2: float [d], means.
    cov1, cov2: float [d, d], symmetric PSD covariances.

  Returns:
    The squared Fréchet (2-Wasserstein) distance between the Gaussians,
    clipped to >= 0 (it is >= 0 up to rounding).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  d = mu1.shape[0]
  if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
    raise DataError(f"frechet_distance: shapes {mu1.shape}, {cov1.shape}, "
                    f"{mu2.shape}, {cov2.shape} are not [d], [d, d] twice")
  root1 = _sqrt_psd(cov1)                                         # [d, d]
  inner = root1 @ cov2 @ root1                                    # [d, d]
  eig = np.linalg.eigvalsh((inner + inner.T) / 2)                 # [d]
  trace_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
  diff = mu1 - mu2
  value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
  return float(max(value, 0.0))


def frechet_distance(real, fake) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets.

  Heusel et al. 2017 ("FID" when the features are Inception pool features).
  The estimate is biased upwards at finite sample sizes; compare it with
  `frechet_floor` at the same size.

  Args:
    real: float [n, d], n >= 2.
    fake: float [m, d], m >= 2.

  Returns:
    ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2}), with sample means
    and unbiased (ddof=1) covariances; symmetric in its arguments.
  """
  real, fake = _pair(real, fake, "frechet_distance")
  return frechet_distance_from_stats(*gaussian_stats(real),
                                     *gaussian_stats(fake))


def frechet_floor(real, size: int, seed: int = 0) -> float:
  """Fréchet distance between two disjoint random subsets of real data.

  Both subsets come from the same distribution, so this is (an estimate of)
  the best score any generator can reach when `size` samples are compared
  with `size` real ones: the finite-sample bias of the estimator.

  Args:
    real: float [n, d] with n >= 2 * size.
    size: rows in each subset, >= 2.
    seed: seed of the numpy Generator that draws the subsets.

  Returns:
    frechet_distance(real[a], real[b]) for disjoint random a, b of `size`.
  """
  real = _features(real, "frechet_floor: real")
  size = int(size)
  if size < 2:
    raise ConfigError(f"frechet_floor: size must be >= 2, got {size}")
  if 2 * size > real.shape[0]:
    raise ConfigError(f"frechet_floor: two disjoint subsets of {size} need "
                      f"{2 * size} real samples, got {real.shape[0]}")
  order = np.random.default_rng(seed).permutation(real.shape[0])
  return frechet_distance(real[order[:size]], real[order[size:2 * size]])


# ---------------------------------------------------------------- KID


def polynomial_kernel(x, y, degree: int = 3, coef0: float = 1.0
                      ) -> np.ndarray:
  """k(x, y) = (x . y / d + coef0)^degree; Gram matrix [n, m] of x, y.

  The default is the cubic kernel of KID (Bińkowski et al. 2018).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x, y, kernel: Callable = polynomial_kernel) -> float:
  """Unbiased estimate of the squared maximum mean discrepancy.

  Gretton et al. 2012 ("A kernel two-sample test", JMLR 13:723), eq. (3):
  mean of k(x_i, x_j) over i != j, plus the same for y, minus twice the
  mean of k(x_i, y_j) over all pairs. It can be negative when the two
  distributions are equal.

  Args:
    x: float [n, d], n >= 2.
    y: float [m, d], m >= 2.
    kernel: (a [p, d], b [q, d]) -> Gram matrix [p, q].

  Returns:
    The estimate, a float.
  """
  x, y = _pair(x, y, "mmd2_unbiased")
  n, m = x.shape[0], y.shape[0]
  k_xx, k_yy = kernel(x, x), kernel(y, y)                         # [n,n] [m,m]
  k_xy = kernel(x, y)                                             # [n, m]
  within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
  within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
  return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(real, fake, subset_size: int = 1000,
                              num_subsets: int = 100, seed: int = 0
                              ) -> tuple[float, float]:
  """Kernel Inception Distance (Bińkowski et al. 2018).

  For each of `num_subsets` rounds, s = min(subset_size, n, m) real and s
  fake rows are drawn without replacement (within a round; rounds are
  independent) and the unbiased squared MMD with the cubic polynomial kernel
  (x . y / d + 1)^3 is computed.

  Args:
    real: float [n, d], n >= 2.
    fake: float [m, d], m >= 2.
    subset_size: rows per subset, >= 2 (capped at n and m).
    num_subsets: number of rounds, >= 1.
    seed: seed of the numpy Generator that draws the subsets.

  Returns:
    (mean, std) of the per-subset estimates; std is the population standard
    deviation over subsets (ddof=0, as in the reference implementations), a
    spread of single-subset estimates, not a standard error of the mean.
  """
  real, fake = _pair(real, fake, "kernel_inception_distance")
  if int(subset_size) < 2 or int(num_subsets) < 1:
    raise ConfigError(f"kernel_inception_distance: need subset_size >= 2 and "
                      f"num_subsets >= 1, got {subset_size}, {num_subsets}")
  s = min(int(subset_size), real.shape[0], fake.shape[0])
  rng = np.random.default_rng(seed)
  values = np.empty(int(num_subsets))                             # [t]
  for t in range(values.size):
    a = real[rng.choice(real.shape[0], s, replace=False)]         # [s, d]
    b = fake[rng.choice(fake.shape[0], s, replace=False)]         # [s, d]
    values[t] = mmd2_unbiased(a, b)
  return float(values.mean()), float(values.std())


# ---------------------------------------------------------------- PRDC


def _blocks(rows: int, cols: int):
  """Row slices so that each block of [rows, cols] holds <= _PAIR_BLOCK."""
  step = max(1, _PAIR_BLOCK // max(cols, 1))
  for start in range(0, rows, step):
    yield slice(start, min(start + step, rows))


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances [p, q] of a [p, d] to b [q, d]."""
  d2 = np.square(a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
  return np.maximum(d2, 0.0, out=d2)


def _knn_radii_sq(x: np.ndarray, k: int) -> np.ndarray:
  """Squared distance [n] of each row of x to its k-th nearest OTHER row."""
  x_sq = np.square(x).sum(1)                                      # [n]
  radii = np.empty(x.shape[0])
  for rows in _blocks(x.shape[0], x.shape[0]):
    d2 = _sq_dists(x[rows], x, x_sq)                              # [b, n]
    local = np.arange(rows.stop - rows.start)
    d2[local, rows.start + local] = np.inf                        # not itself
    radii[rows] = np.partition(d2, k - 1, axis=1)[:, k - 1]
  return radii


def prdc(real, fake, k: int = 5) -> dict[str, float]:
  """Precision, recall, density and coverage from k-NN balls.

  The ball of a point is the CLOSED ball around it whose radius is the
  distance to its k-th nearest other point of its own set. Precision and
  recall follow Kynkäänniemi et al. 2019; density and coverage follow Naeem
  et al. 2020. Distances are Euclidean and computed in blocks of real rows,
  so 10k x 10k sets never hold more than about 32 MiB of distances at once.

  Args:
    real: float [n, d], n > k.
    fake: float [m, d], m > k.
    k: the neighbour that sets the radius, >= 1.

  Returns:
    {"precision": fraction of fake points inside at least one real ball,
     "recall": fraction of real points inside at least one fake ball,
     "density": (1 / (k m)) sum_j #{i: fake_j inside the ball of real_i}
                (about 1 when fake matches real; can exceed 1),
     "coverage": fraction of real points whose ball holds a fake point}.
  """
  real, fake = _pair(real, fake, "prdc")
  k = int(k)
  n, m = real.shape[0], fake.shape[0]
  if k < 1 or k >= min(n, m):
    raise ConfigError(f"prdc: k must be in [1, min(n, m) - 1] = [1, "
                      f"{min(n, m) - 1}] (n={n} real, m={m} fake), got {k}")
  real_r2 = _knn_radii_sq(real, k)                                # [n]
  fake_r2 = _knn_radii_sq(fake, k)                                # [m]
  fake_sq = np.square(fake).sum(1)                                # [m]
  in_real_balls = np.zeros(m, np.int64)   # per fake: real balls holding it
  in_fake_ball = np.zeros(n, bool)        # per real: inside some fake ball
  covered = np.zeros(n, bool)             # per real: its ball holds a fake
  for rows in _blocks(n, m):
    d2 = _sq_dists(real[rows], fake, fake_sq)                     # [b, m]
    inside_real = d2 <= real_r2[rows, None]                       # [b, m]
    in_real_balls += np.count_nonzero(inside_real, 0)
    covered[rows] = inside_real.any(1)
    in_fake_ball[rows] = (d2 <= fake_r2[None, :]).any(1)
  return {"precision": float(np.mean(in_real_balls > 0)),
          "recall": float(np.mean(in_fake_ball)),
          "density": float(in_real_balls.sum() / (k * m)),
          "coverage": float(np.mean(covered))}


# ---------------------------------------------------------------- report


def quality_report(real_train, real_test, fake, k: int = 5, seed: int = 0,
                   floor_repeats: int = 1) -> dict:
  """All sample-quality metrics of fake against HELD-OUT real data.

  Every comparison with the generator's samples uses `real_test` only;
  `real_train` (the generator's training data) serves only as a second real
  sample for the floor, never as the reference reported as held-out.

  Args:
    real_train: float [n_train, d] or None. With data, the floor compares
      m random training rows (m = len(fake), needs n_train >= m) with all of
      real_test, the setting of `fd` with a perfect generator. With None,
      it is `frechet_floor(real_test, min(m, n_test // 2))`: two disjoint
      subsets of real_test, each smaller than real_test, so this floor is
      somewhat higher (more conservative) than the one with training data.
    real_test: float [n_test, d], held-out real features.
    fake: float [m, d], generated features.
    k: neighbour for `prdc`.
    seed: seed for the floor's subsets and KID's subsets.
    floor_repeats: with real_train, the floor is the mean over this many
      random subsets of m training rows (the Fréchet distance of ~500
      samples varies by tens of percent between subsets); "fd_floor_std"
      is their standard deviation.

  Returns:
    {"fd": frechet_distance(real_test, fake),
     "fd_floor": see real_train, "fd_floor_size": rows per floor subset,
     "fd_floor_source": "real_train vs real_test" or "real_test halves",
     "fd_ratio": fd / fd_floor (nan if fd_floor is 0; 1 = at the floor),
     "kid_mean", "kid_std": kernel_inception_distance(real_test, fake),
     "precision", "recall", "density", "coverage": prdc(real_test, fake, k),
     "n_real_test", "n_fake": the sample sizes}.
  """
  real_test, fake = _pair(real_test, fake, "quality_report")
  m = fake.shape[0]
  fd = frechet_distance(real_test, fake)
  if real_train is None:
    size = min(m, real_test.shape[0] // 2)
    floor = frechet_floor(real_test, size, seed)
    floor_std = float("nan")
    source = "real_test halves"
  else:
    real_train, _ = _pair(real_train, real_test, "quality_report: real_train")
    if real_train.shape[0] < m:
      raise ConfigError(f"quality_report: the floor needs {m} real_train "
                        f"samples (as many as fake), got "
                        f"{real_train.shape[0]}; pass fewer fake samples")
    size = m
    rng = np.random.default_rng(seed)
    floors = [frechet_distance(real_train[rng.choice(real_train.shape[0], m,
                                                     replace=False)],
                               real_test)
              for _ in range(max(1, int(floor_repeats)))]
    floor, floor_std = float(np.mean(floors)), float(np.std(floors))
    source = "real_train vs real_test"
  kid_mean, kid_std = kernel_inception_distance(real_test, fake, seed=seed)
  return {"fd": fd, "fd_floor": floor, "fd_floor_std": floor_std,
          "fd_floor_size": int(size),
          "fd_floor_source": source,
          "fd_ratio": fd / floor if floor > 0 else float("nan"),
          "kid_mean": kid_mean, "kid_std": kid_std,
          **prdc(real_test, fake, k),
          "n_real_test": int(real_test.shape[0]), "n_fake": int(m)}
