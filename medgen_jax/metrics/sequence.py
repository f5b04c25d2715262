"""Quality metrics of generated multichannel time series.

Every function takes numpy arrays x float [n, T, C] with a bool mask [n, T]
(True = a real step). A masked step never influences a result: its values
are replaced before any arithmetic, and the recurrent models below skip it
altogether (their state is carried unchanged over it), so a sequence with
gaps is scored as the concatenation of its valid steps.

  * `discriminative_score`, `predictive_score`: TimeGAN's post-hoc scores
    (Yoon, Jarrett & van der Schaar 2019, "Time-series Generative
    Adversarial Networks"), each a small GRU trained from scratch; `repeat`
    gives mean and std over seeds, as that paper reports them;
    `select_by_judge` picks the checkpoint whose samples judges separate
    least from non-test windows;
  * `mmd`: unbiased squared maximum mean discrepancy with a Gaussian kernel
    (Gretton et al. 2012) between flattened windows;
  * `power_spectra`, `spectral_distance`: mean per-channel periodograms and
    the total-variation distance between their normalised shapes;
  * `heart_rate_bpm`, `heart_rate_distance`: one heart rate per ECG window
    from its autocorrelation, and the 1-D Wasserstein distance between the
    real and generated rate distributions.

Windows that MMD, spectra compare must be complete: a window with any masked
step is left out of those two (their definitions need every step).
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from medgen_jax.errors import DataError

_OPTIMIZER = optax.adam(1e-3)   # TimeGAN: tf.train.AdamOptimizer() defaults
_EVAL_CHUNK = 512               # sequences per evaluation call (padded)
_MEDIAN_SAMPLE = 1000           # pooled points used by the median heuristic
_HARMONIC_RATIO = 0.8           # see heart_rate_bpm
_SMOOTH_SECONDS = 0.01          # see heart_rate_bpm


def _check(x, mask, name: str) -> tuple[np.ndarray, np.ndarray]:
  """Validates x [n, T, C] and mask [n, T]; zeroes masked steps."""
  x = np.asarray(x, np.float32)
  if x.ndim != 3:
    raise DataError(f"{name}: expected float [n, T, C], got shape {x.shape}")
  mask = (np.ones(x.shape[:2], bool) if mask is None
          else np.asarray(mask, bool))
  if mask.shape != x.shape[:2]:
    raise DataError(f"{name}: mask shape {mask.shape} does not match the "
                    f"series' [n, T] = {x.shape[:2]}")
  x = np.where(mask[..., None], x, 0.0).astype(np.float32)
  if not np.isfinite(x).all():
    raise DataError(f"{name}: non-finite values at unmasked steps; mask "
                    "them or fix the data")
  return x, mask


# ---------------------------------------------------------------- GRU models


class _SkipMaskedGRUCell(nn.RNNCellBase):
  """A GRU cell that keeps its state over masked steps.

  Its input is [..., features + 1]: the last feature is the step's mask.
  """

  features: int

  @nn.compact
  def __call__(self, carry, inputs):
    x, m = inputs[..., :-1], inputs[..., -1:]
    new, _ = nn.GRUCell(self.features, name="gru")(carry, x)
    carry = jnp.where(m > 0, new, carry)
    return carry, carry

  def initialize_carry(self, rng, input_shape):
    return jnp.zeros(input_shape[:-1] + (self.features,), jnp.float32)

  @property
  def num_feature_axes(self) -> int:
    return 1


class _SeriesGRU(nn.Module):
  """One GRU layer and a linear head.

  Attributes:
    hidden: GRU units.
    per_step: True: one output per step (predictor); False: one output from
      the last valid state (classifier).
  """

  hidden: int
  per_step: bool

  @nn.compact
  def __call__(self, x, mask):
    """x [b, T, F], mask [b, T] -> [b, T] (per_step) or [b]."""
    xm = jnp.concatenate([x, mask[..., None].astype(x.dtype)], -1)
    last, states = nn.RNN(_SkipMaskedGRUCell(self.hidden),
                          return_carry=True)(xm)   # [b, H], [b, T, H]
    return nn.Dense(1)(states if self.per_step else last)[..., 0]


def _batch_indices(key, n: int, size: int) -> jax.Array:
  """`size` distinct indices of range(n) (TimeGAN's batch_generator)."""
  return jax.random.choice(key, n, (size,), replace=False)


@functools.partial(jax.jit,
                   static_argnames=("hidden", "per_step", "width", "time"))
def _init(key, *, hidden: int, per_step: bool, width: int, time: int):
  model = _SeriesGRU(hidden, per_step)
  params = model.init(key, jnp.zeros((1, time, width)),
                      jnp.ones((1, time), bool))
  return params, _OPTIMIZER.init(params)


def _disc_update(params, opt_state, data, key, step, *, hidden: int,
                 batch_size: int):
  """One Adam step of the real-vs-synthetic classifier.

  Args:
    data: (real x [nr, T, C], real mask [nr, T], fake x [nf, T, C],
      fake mask [nf, T]) on the device.
    key, step: the run's key and the step number (fold_in randomness).
  """
  rx, rm, fx, fm = data
  kr, kf = jax.random.split(jax.random.fold_in(key, step))
  ir = _batch_indices(kr, rx.shape[0], min(batch_size, rx.shape[0]))
  jf = _batch_indices(kf, fx.shape[0], min(batch_size, fx.shape[0]))
  x = jnp.concatenate([rx[ir], fx[jf]])                # [b, T, C]
  m = jnp.concatenate([rm[ir], fm[jf]])                # [b, T]
  y = jnp.concatenate([jnp.ones(ir.shape), jnp.zeros(jf.shape)])
  model = _SeriesGRU(hidden, per_step=False)

  def loss_fn(p):
    logits = model.apply(p, x, m)                      # [b]
    per_example = optax.sigmoid_binary_cross_entropy(logits, y)
    # TimeGAN: mean over the real batch + mean over the synthetic batch.
    return (jnp.mean(per_example[:ir.shape[0]])
            + jnp.mean(per_example[ir.shape[0]:]))

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = _OPTIMIZER.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


_disc_step = jax.jit(_disc_update, static_argnames=("hidden", "batch_size"),
                     donate_argnums=(0, 1))


def _pred_update(params, opt_state, data, key, step, *, hidden: int,
                 batch_size: int, output: str):
  """One Adam step of the next-step predictor.

  Args:
    data: (inputs [n, T-1, F], input mask [n, T-1], targets [n, T-1],
      target mask [n, T-1]).
  """
  x, m, y, ym = data
  idx = _batch_indices(jax.random.fold_in(key, step), x.shape[0],
                       min(batch_size, x.shape[0]))
  x, m, y, ym = x[idx], m[idx], y[idx], ym[idx]

  def loss_fn(p):
    pred = _activate(_SeriesGRU(hidden, per_step=True).apply(p, x, m), output)
    err = jnp.where(ym, jnp.abs(pred - y), 0.0)        # [b, T-1]
    # L1 over every unmasked target step of the batch (TimeGAN's
    # tf.losses.absolute_difference).
    return jnp.sum(err) / jnp.maximum(jnp.sum(ym), 1)

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = _OPTIMIZER.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


_pred_step = jax.jit(_pred_update,
                     static_argnames=("hidden", "batch_size", "output"),
                     donate_argnums=(0, 1))


def _activate(z, output: str):
  return jax.nn.sigmoid(z) if output == "sigmoid" else z


@functools.partial(jax.jit, static_argnames=("hidden", "per_step", "output"))
def _apply(params, x, m, *, hidden: int, per_step: bool, output: str):
  return _activate(_SeriesGRU(hidden, per_step).apply(params, x, m), output)


def _evaluate(params, x, m, **static) -> np.ndarray:
  """The model on x [n, T, F] in padded chunks (one compiled shape)."""
  outs = []
  for s in range(0, x.shape[0], _EVAL_CHUNK):
    xc, mc = x[s:s + _EVAL_CHUNK], m[s:s + _EVAL_CHUNK]
    size = len(xc)
    xc = np.pad(xc, ((0, _EVAL_CHUNK - size), (0, 0), (0, 0)))
    mc = np.pad(mc, ((0, _EVAL_CHUNK - size), (0, 0)))
    outs.append(np.asarray(_apply(params, xc, mc, **static))[:size])
  return np.concatenate(outs)


def _default_hidden(channels: int, hidden: int | None) -> int:
  return hidden if hidden is not None else max(channels // 2, 4)


# ---------------------------------------------------------------- TimeGAN


def discriminative_score(real, real_mask, fake, fake_mask, *, seed: int = 0,
                         steps: int = 2000, batch_size: int = 128,
                         hidden: int | None = None,
                         train_fraction: float = 0.8) -> float:
  """TimeGAN's discriminative score: |held-out accuracy - 0.5|.

  Real sequences are labelled 1 and synthetic 0; each set is split
  train_fraction / rest at random; a 1-layer GRU classifier (its last valid
  state -> a linear logit) is trained with Adam for `steps` steps, each on
  `batch_size` sequences drawn from each training set; the score is the
  accuracy on both held-out parts together, minus 0.5, in absolute value.
  0 means indistinguishable, 0.5 perfectly separable. Sequences without any
  valid step carry no information and are dropped first.

  Args:
    real, fake: float [n_real, T, C], [n_fake, T, C].
    real_mask, fake_mask: bool [n, T] or None (all valid).
    seed: seeds the split, the initialisation and the batches.
    hidden: GRU units; default max(C // 2, 4) (TimeGAN: C // 2).

  Returns:
    The score, a float in [0, 0.5].
  """
  rx, rm = _check(real, real_mask, "discriminative_score real")
  fx, fm = _check(fake, fake_mask, "discriminative_score fake")
  if rx.shape[1:] != fx.shape[1:]:
    raise DataError(f"discriminative_score: real windows {rx.shape[1:]} and "
                    f"synthetic windows {fx.shape[1:]} differ in [T, C]")
  hidden = _default_hidden(rx.shape[2], hidden)
  rng = np.random.default_rng(seed)
  parts = []
  for x, m, name in ((rx, rm, "real"), (fx, fm, "synthetic")):
    keep = m.any(1)
    x, m = x[keep], m[keep]
    n_train = int(len(x) * train_fraction)
    if n_train < 1 or n_train >= len(x):
      raise DataError(f"discriminative_score: {len(x)} non-empty {name} "
                      f"sequences cannot be split {train_fraction:g}/rest "
                      "with both parts non-empty; pass more sequences")
    perm = rng.permutation(len(x))
    parts.append((x[perm[:n_train]], m[perm[:n_train]],
                  x[perm[n_train:]], m[perm[n_train:]]))
  (rx_tr, rm_tr, rx_te, rm_te), (fx_tr, fm_tr, fx_te, fm_te) = parts

  init_key, key = jax.random.split(jax.random.key(seed))
  params, opt_state = _init(init_key, hidden=hidden,
                            per_step=False, width=rx.shape[2],
                            time=rx.shape[1])
  data = tuple(jnp.asarray(a) for a in (rx_tr, rm_tr, fx_tr, fm_tr))
  for step in range(steps):
    params, opt_state, _ = _disc_step(params, opt_state, data, key, step,
                                      hidden=hidden, batch_size=batch_size)
  x_te = np.concatenate([rx_te, fx_te])
  m_te = np.concatenate([rm_te, fm_te])
  y_te = np.concatenate([np.ones(len(rx_te)), np.zeros(len(fx_te))])
  logits = _evaluate(params, x_te, m_te, hidden=hidden, per_step=False,
                     output="linear")
  accuracy = np.mean((logits > 0) == (y_te > 0))
  return float(abs(accuracy - 0.5))


def masked_mae(pred, target, mask) -> float:
  """Mean over sequences of each one's mean |pred - target| over its mask.

  TimeGAN's predictive-score reduction. Sequences without a valid step are
  left out.

  Args:
    pred, target: float [n, T].
    mask: bool [n, T].

  Returns:
    The mean absolute error, a float.
  """
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  mask = np.asarray(mask, bool)
  err = np.where(mask, np.abs(pred - target), 0.0).sum(1)   # [n]
  count = mask.sum(1)
  keep = count > 0
  if not keep.any():
    raise DataError("masked_mae: no sequence has a valid step")
  return float(np.mean(err[keep] / count[keep]))


def _next_step_task(x, mask):
  """(inputs, input mask, targets, target mask), each [n, T-1(, F)].

  Inputs are channels 0..C-2 (the channel itself when C == 1) at steps
  0..T-2; targets are channel C-1 at steps 1..T-1; a target counts only
  where it and the step before it are both valid.
  """
  c = x.shape[2]
  inputs = x[:, :-1, :max(c - 1, 1)]
  return inputs, mask[:, :-1], x[:, 1:, c - 1], mask[:, :-1] & mask[:, 1:]


def predictive_score(train_x, train_mask, test_x, test_mask, *, seed: int = 0,
                     steps: int = 5000, batch_size: int = 128,
                     hidden: int | None = None,
                     output: str = "linear") -> float:
  """TimeGAN's predictive score ("train on synthetic, test on real").

  A 1-layer GRU (a linear head on every step's state) is trained on
  `train_x` (synthetic) to predict channel C-1 at step t+1 from channels
  0..C-2 at steps <= t (with C == 1: the channel from its own past), with an
  L1 loss over unmasked targets, Adam, `steps` batches of `batch_size`.
  The score is its `masked_mae` on `test_x` (real): lower is better.

  Args:
    train_x, test_x: float [n, T, C] (T may differ between them).
    train_mask, test_mask: bool [n, T] or None (all valid).
    hidden: GRU units; default max(C // 2, 4) (TimeGAN: C // 2).
    output: "linear" (default; data on any scale) or "sigmoid" (TimeGAN's
      choice, for data min-max scaled to [0, 1]; use it to reproduce the
      paper's numbers).

  Returns:
    The mean absolute error on the test set.
  """
  if output not in ("linear", "sigmoid"):
    raise ValueError(f"output must be 'linear' or 'sigmoid', got {output!r}")
  tx, tm = _check(train_x, train_mask, "predictive_score train")
  vx, vm = _check(test_x, test_mask, "predictive_score test")
  if tx.shape[2] != vx.shape[2]:
    raise DataError(f"predictive_score: train has {tx.shape[2]} channels, "
                    f"test {vx.shape[2]}")
  if tx.shape[1] < 2 or vx.shape[1] < 2:
    raise DataError("predictive_score: sequences need at least 2 steps")
  hidden = _default_hidden(tx.shape[2], hidden)
  task = _next_step_task(tx, tm)
  keep = task[3].any(1)
  if not keep.any():
    raise DataError("predictive_score: no training sequence has two "
                    "consecutive valid steps")
  task = tuple(jnp.asarray(a[keep]) for a in task)

  init_key, key = jax.random.split(jax.random.key(seed))
  params, opt_state = _init(init_key, hidden=hidden,
                            per_step=True, width=task[0].shape[2],
                            time=task[0].shape[1])
  for step in range(steps):
    params, opt_state, _ = _pred_step(params, opt_state, task, key, step,
                                      hidden=hidden, batch_size=batch_size,
                                      output=output)
  x, m, y, ym = _next_step_task(vx, vm)
  pred = _evaluate(params, x, m, hidden=hidden, per_step=True, output=output)
  return masked_mae(pred, y, ym)


def repeat(metric_fn: Callable[..., float],
           seeds: Iterable[int]) -> tuple[float, float]:
  """Mean and standard deviation (np.std, ddof=0, as TimeGAN) over seeds.

  Args:
    metric_fn: called as metric_fn(seed=s), e.g. a functools.partial of
      discriminative_score with its data bound.
  """
  values = np.array([metric_fn(seed=s) for s in seeds], np.float64)
  return float(values.mean()), float(values.std())


def select_by_judge(reference, reference_mask, candidates, *,
                    seeds: Iterable[int], **judge) -> tuple:
  """The candidate whose samples post-hoc judges separate least from
  `reference`: checkpoint selection by discriminative score.

  Pass windows the final score never sees as `reference` (a validation
  split, or the training windows), and judge `seeds` the final score does
  not use; selecting on the test windows, then scoring on them, reports
  the best of several draws as if it were one.

  Args:
    reference, reference_mask: real windows [n, T, C] and their mask.
    candidates: {key: (x, mask)}, e.g. one sample set per checkpoint step.
    seeds: judge seeds; a candidate's score is the mean over them.
    **judge: passed to `discriminative_score` (steps, hidden, ...).

  Returns:
    (best key, {key: [score per seed]}); ties go to the first key given.
  """
  seeds = list(seeds)
  if not seeds or not candidates:
    raise DataError("select_by_judge: needs at least one judge seed and one "
                    f"candidate, got {len(seeds)} seed(s) and "
                    f"{len(candidates)} candidate(s)")
  scores = {k: [discriminative_score(reference, reference_mask, x, m,
                                     seed=s, **judge) for s in seeds]
            for k, (x, m) in candidates.items()}
  best = min(scores, key=lambda k: float(np.mean(scores[k])))
  return best, scores


# ---------------------------------------------------------------- MMD


def _complete(x, mask, name: str) -> np.ndarray:
  """Windows with every step valid, flattened: [n_complete, T * C] float64."""
  x, mask = _check(x, mask, name)
  full = mask.all(1)
  return x[full].reshape(int(full.sum()), x.shape[1] * x.shape[2]).astype(
      np.float64)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
  return np.maximum(d, 0.0)


def mmd(x, y, x_mask=None, y_mask=None, bandwidth: float | None = None,
        seed: int = 0) -> float:
  """Unbiased squared MMD (Gretton et al. 2012, eq. 3), Gaussian kernel.

  k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2)) on windows flattened to
  [T * C]. Only complete windows (no masked step) take part. The unbiased
  estimate can be slightly negative when the samples match. Memory is
  O((n_x + n_y)^2).

  Args:
    x, y: float [n_x, T, C], [n_y, T, C].
    x_mask, y_mask: bool [n, T] or None (all valid).
    bandwidth: kernel width; default the median heuristic, the median
      pairwise Euclidean distance of the pooled complete windows (of a
      seeded random subset of 1000 when there are more; 1.0 if it is 0).
    seed: picks that subset.

  Returns:
    MMD^2 estimate.
  """
  a = _complete(x, x_mask, "mmd x")
  b = _complete(y, y_mask, "mmd y")
  if a.shape[1] != b.shape[1]:
    raise DataError(f"mmd: windows of {a.shape[1]} and {b.shape[1]} values "
                    "cannot be compared; use the same [T, C]")
  if len(a) < 2 or len(b) < 2:
    raise DataError(f"mmd: needs at least 2 complete (unmasked) windows in "
                    f"each sample, got {len(a)} and {len(b)}")
  if bandwidth is None:
    pooled = np.concatenate([a, b])
    if len(pooled) > _MEDIAN_SAMPLE:
      pick = np.random.default_rng(seed).choice(len(pooled), _MEDIAN_SAMPLE,
                                                replace=False)
      pooled = pooled[pick]
    d = np.sqrt(_sq_dists(pooled, pooled))[np.triu_indices(len(pooled), 1)]
    bandwidth = float(np.median(d)) or 1.0
  gamma = 1.0 / (2.0 * bandwidth ** 2)
  kxx = np.exp(-gamma * _sq_dists(a, a))
  kyy = np.exp(-gamma * _sq_dists(b, b))
  kxy = np.exp(-gamma * _sq_dists(a, b))
  m, n = len(a), len(b)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2.0 * kxy.mean())


# ---------------------------------------------------------------- spectra


def power_spectra(x, mask, rate: float) -> tuple[np.ndarray, np.ndarray]:
  """Mean one-sided periodogram per channel over complete windows.

  Each window and channel: the mean is removed, a periodic Hann window w
  applied, P(f) = |rfft(w x)|^2 / (rate * sum(w^2)), doubled except at 0
  and Nyquist: a power spectral density in units^2 / Hz, equal to
  scipy.signal.periodogram(x, rate, window="hann") (whose sum times the
  bin width is about the variance).

  Args:
    x: float [n, T, C].
    mask: bool [n, T] or None; windows with a masked step are left out.
    rate: sampling rate in Hz.

  Returns:
    (freqs [T // 2 + 1] in Hz, spectra [C, T // 2 + 1]).
  """
  x, mask = _check(x, mask, "power_spectra")
  x = x[mask.all(1)].astype(np.float64)                # [n_full, T, C]
  if len(x) == 0:
    raise DataError("power_spectra: no complete (unmasked) window")
  t = x.shape[1]
  w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(t) / t)   # periodic Hann
  x = (x - x.mean(1, keepdims=True)) * w[None, :, None]
  p = np.abs(np.fft.rfft(x, axis=1)) ** 2 / (rate * np.sum(w ** 2))
  p[:, 1:(None if t % 2 else -1)] *= 2.0               # one-sided
  return np.fft.rfftfreq(t, 1.0 / rate), p.mean(0).T


def spectral_distance(real_spectra, fake_spectra) -> float:
  """Mean over channels of the total-variation distance of spectral shapes.

  Each channel's spectrum [F] is normalised to sum to 1 (its shape, not its
  power), then 0.5 * sum |p - q|: 0 for identical shapes, 1 for disjoint
  support. A channel with zero total power gives NaN.

  Args:
    real_spectra, fake_spectra: [C, F] from `power_spectra` (same T, rate).
  """
  p = np.asarray(real_spectra, np.float64)
  q = np.asarray(fake_spectra, np.float64)
  if p.shape != q.shape:
    raise DataError(f"spectral_distance: spectra shapes {p.shape} and "
                    f"{q.shape} differ; compute both with the same T, rate")
  with np.errstate(invalid="ignore", divide="ignore"):
    p = p / p.sum(-1, keepdims=True)
    q = q / q.sum(-1, keepdims=True)
  return float(np.mean(0.5 * np.abs(p - q).sum(-1)))


# ---------------------------------------------------------------- heart rate


def _gaussian_kernel(sigma: float) -> np.ndarray:
  """A normalised Gaussian [2 * ceil(3 sigma) + 1] (sigma in samples)."""
  half = int(np.ceil(3.0 * sigma))
  k = np.exp(-0.5 * (np.arange(-half, half + 1) / max(sigma, 1e-6)) ** 2)
  return k / k.sum()


def heart_rate_bpm(ecg, mask, rate: float, lo: float = 40.0, hi: float = 200.0,
                   min_peak: float = 0.3) -> np.ndarray:
  """One heart rate per ECG window from its autocorrelation peak.

  Per window: the mean of the valid steps is removed and masked steps set
  to 0; the autocorrelation at lag k is averaged over the pairs of steps
  (t, t+k) that are both valid, smoothed over lags by a Gaussian of
  10 ms and divided by its value at lag 0 (so narrow QRS spikes whose
  period is not a whole number of samples still give one clear peak). Lags
  between 60 rate / hi and 60 rate / lo samples with at least k valid pairs
  (the window spans two beats) are searched for local maxima of at least
  `min_peak`; the first (shortest-lag) one within 80% of the highest is the
  beat period (so a multiple of the period is not picked), refined by a
  parabola through its neighbours; bpm = 60 * rate / lag.

  Args:
    ecg: float [n, T] or [n, T, 1] (one lead).
    mask: bool [n, T] or None.
    rate: sampling rate in Hz.
    lo, hi: the plausible range, beats per minute.
    min_peak: the least normalised autocorrelation that counts as a peak.

  Returns:
    float [n] beats per minute; NaN where a window has no valid step, no
    variance, or no clear peak.
  """
  x = np.asarray(ecg, np.float32)
  if x.ndim == 2:
    x = x[..., None]
  if x.ndim != 3 or x.shape[2] != 1:
    raise DataError(f"heart_rate_bpm: expected one lead [n, T] or [n, T, 1], "
                    f"got {np.shape(ecg)}; pass x[..., lead]")
  x, mask = _check(x, mask, "heart_rate_bpm")
  x, m = x[..., 0].astype(np.float64), mask.astype(np.float64)   # [n, T]
  n, t = x.shape
  count = m.sum(1)
  mean = x.sum(1) / np.maximum(count, 1)
  x = (x - mean[:, None]) * m
  nfft = 1 << int(np.ceil(np.log2(2 * t)))
  acf = np.fft.irfft(np.abs(np.fft.rfft(x, nfft)) ** 2, nfft)[:, :t]
  pairs = np.round(np.fft.irfft(np.abs(np.fft.rfft(m, nfft)) ** 2,
                                nfft)[:, :t])
  k_lo = max(int(np.floor(60.0 * rate / hi)), 1)
  k_hi = min(int(np.ceil(60.0 * rate / lo)), t - 2)
  out = np.full(n, np.nan)
  kernel = _gaussian_kernel(_SMOOTH_SECONDS * rate)
  for i in range(n):
    if count[i] < 2 or acf[i, 0] <= 0 or k_hi < k_lo:
      continue
    r = acf[i] / np.maximum(pairs[i], 1)
    r = np.convolve(np.concatenate([r[:0:-1], r]), kernel, "same")[t - 1:]
    r /= r[0]                                          # even in the lag
    r[pairs[i] < np.maximum(np.arange(t), 1)] = -np.inf
    ks = np.arange(k_lo, k_hi + 1)
    peaks = ks[(r[ks] >= r[ks - 1]) & (r[ks] > r[ks + 1])
               & (r[ks] >= min_peak)]
    if len(peaks) == 0:
      continue
    k = peaks[np.argmax(r[peaks] >= _HARMONIC_RATIO * r[peaks].max())]
    a, b, c = r[k - 1], r[k], r[k + 1]
    den = a - 2.0 * b + c
    shift = 0.5 * (a - c) / den if np.isfinite(den) and den < 0 else 0.0
    out[i] = 60.0 * rate / (k + shift)
  return out


def heart_rate_distance(real_bpm, fake_bpm) -> float:
  """1-D Wasserstein-1 distance between two rate samples, NaNs ignored.

  The integral of |F_real - F_fake| between the sorted values (exact for
  empirical distributions of any sizes; equals
  scipy.stats.wasserstein_distance). NaN if either sample has no finite
  value.
  """
  u = np.sort(np.asarray(real_bpm, np.float64).ravel())
  v = np.sort(np.asarray(fake_bpm, np.float64).ravel())
  u, v = u[np.isfinite(u)], v[np.isfinite(v)]
  if len(u) == 0 or len(v) == 0:
    return float("nan")
  values = np.sort(np.concatenate([u, v]))
  widths = np.diff(values)
  cdf_u = np.searchsorted(u, values[:-1], side="right") / len(u)
  cdf_v = np.searchsorted(v, values[:-1], side="right") / len(v)
  return float(np.sum(np.abs(cdf_u - cdf_v) * widths))
