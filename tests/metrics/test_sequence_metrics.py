"""Tests of medgen_jax/metrics/sequence.py against known answers."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal, stats

from medgen_jax.errors import DataError
from medgen_jax.metrics import sequence

T, C = 24, 3


def _sines(rng, n, t=T, c=C):
  """Sines of random frequency and phase per channel, in [0, 1]: [n, t, c]."""
  steps = np.arange(t)[None, :, None]
  freq = rng.uniform(0.1, 0.2, (n, 1, c))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, c))
  return (0.5 + 0.5 * np.sin(freq * steps + phase)).astype(np.float32)


def _full(x):
  return np.ones(x.shape[:2], bool)


def _gappy_mask(rng, n, t):
  """Random prefix lengths plus a hole in the middle: bool [n, t]."""
  mask = np.arange(t)[None] < rng.integers(t // 2, t + 1, (n, 1))
  mask[:, 5:7] = False
  return mask


def _scramble(x, mask, rng):
  """x with its masked steps replaced by large random values."""
  junk = rng.normal(0, 100, x.shape).astype(np.float32)
  return np.where(mask[..., None], x, junk)


# ------------------------------------------------------------- TimeGAN scores


def test_discriminative_same_distribution_is_near_zero():
  rng = np.random.default_rng(0)
  a, b = _sines(rng, 400), _sines(rng, 400)
  score = sequence.discriminative_score(a, _full(a), b, _full(b), steps=1000)
  assert score < 0.1


def test_discriminative_sines_vs_noise_is_high():
  rng = np.random.default_rng(1)
  a = _sines(rng, 400)
  noise = rng.uniform(0, 1, a.shape).astype(np.float32)
  score = sequence.discriminative_score(a, _full(a), noise, _full(noise),
                                        steps=1000)
  assert score > 0.4


def test_discriminative_ignores_masked_values():
  # The shapes of the tests above, so the compiled step is reused.
  rng = np.random.default_rng(2)
  a, b = _sines(rng, 400), _sines(rng, 400)
  ma, mb = _gappy_mask(rng, 400, T), _gappy_mask(rng, 400, T)
  kwargs = dict(steps=20)
  s1 = sequence.discriminative_score(a, ma, b, mb, **kwargs)
  s2 = sequence.discriminative_score(_scramble(a, ma, rng), ma,
                                     _scramble(b, mb, rng), mb, **kwargs)
  assert s1 == s2


def test_masked_gru_skips_masked_steps():
  """A sequence with gaps scores as its valid steps packed to the front."""
  rng = np.random.default_rng(3)
  n = sequence._EVAL_CHUNK        # the compiled evaluation shape
  x = rng.normal(size=(n, T, C)).astype(np.float32)
  mask = np.ones((n, T), bool)
  mask[0, [1, 4, 5]] = False
  mask[1, 17:] = False
  mask[2, :3] = False
  packed = np.zeros_like(x)
  packed_mask = np.zeros_like(mask)
  for i in range(n):
    v = x[i][mask[i]]
    packed[i, :len(v)], packed_mask[i, :len(v)] = v, True
  params, _ = sequence._init(jax.random.key(0), hidden=4, per_step=False,
                             width=C, time=T)
  apply = functools.partial(sequence._apply, params, hidden=4,
                            per_step=False, output="linear")
  np.testing.assert_allclose(apply(np.where(mask[..., None], x, 0.0), mask),
                             apply(packed, packed_mask), rtol=1e-5)


def test_discriminator_step_compiles_once():
  rng = np.random.default_rng(4)
  x = jnp.asarray(_sines(rng, 20))
  m = jnp.ones(x.shape[:2], bool)
  params, opt_state = sequence._init(jax.random.key(0), hidden=4,
                                     per_step=False, width=C, time=T)
  step = jax.jit(chex.assert_max_traces(sequence._disc_update, n=1),
                 static_argnames=("hidden", "batch_size"),
                 donate_argnums=(0, 1))
  for i in range(3):
    params, opt_state, loss = step(params, opt_state, (x, m, x, m),
                                   jax.random.key(1), i, hidden=4,
                                   batch_size=8)
  assert np.isfinite(loss)


def _lagged(rng, n):
  """Channel 1 at t+1 equals channel 0 at t: perfectly predictable."""
  x0 = _sines(rng, n, t=T + 1, c=1)[..., 0]
  return np.stack([x0[:, 1:], x0[:, :-1]], -1)     # [n, T, 2]


def test_predictive_predictable_beats_noise():
  rng = np.random.default_rng(5)
  good_train, good_test = _lagged(rng, 200), _lagged(rng, 200)
  noise_train = rng.uniform(0, 1, good_train.shape).astype(np.float32)
  noise_test = rng.uniform(0, 1, good_test.shape).astype(np.float32)
  run = functools.partial(sequence.predictive_score, steps=1000,
                          output="sigmoid")     # data in [0, 1], as TimeGAN
  good = run(good_train, None, good_test, None)
  bad = run(noise_train, None, noise_test, None)
  assert good < 0.5 * bad
  assert bad > 0.2           # ~0.25 = E|U - 1/2|, the best constant guess


def test_predictive_single_channel_and_masks():
  rng = np.random.default_rng(6)
  x = _sines(rng, 200, c=1)       # the shapes of the test above
  mask = _gappy_mask(rng, 200, T)
  kwargs = dict(steps=20, output="sigmoid")
  s1 = sequence.predictive_score(x, mask, x, mask, **kwargs)
  s2 = sequence.predictive_score(_scramble(x, mask, rng), mask,
                                 _scramble(x, mask, rng), mask, **kwargs)
  assert np.isfinite(s1) and s1 == s2


def test_masked_mae_by_hand():
  pred = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0], [9.0, 9.0, 9.0]])
  target = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
  mask = np.array([[True, True, True], [True, False, False],
                   [False, False, False]])
  # Sequence 0: (0 + 2 + 3) / 3; sequence 1: 1 / 1; sequence 2 has no step.
  assert sequence.masked_mae(pred, target, mask) == pytest.approx(
      (5 / 3 + 1) / 2)


def test_next_step_task_layout():
  x = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
  mask = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool)
  inputs, in_mask, targets, target_mask = sequence._next_step_task(x, mask)
  np.testing.assert_array_equal(inputs, x[:, :3, :2])
  np.testing.assert_array_equal(targets, x[:, 1:, 2])
  np.testing.assert_array_equal(in_mask, mask[:, :3])
  np.testing.assert_array_equal(target_mask, [[1, 0, 0], [1, 1, 1]])


def test_repeat_mean_and_std():
  mean, std = sequence.repeat(lambda seed: float(seed), [1, 2, 3])
  assert mean == pytest.approx(2.0)
  assert std == pytest.approx(np.std([1, 2, 3]))


def test_select_by_judge_picks_the_matching_candidate():
  rng = np.random.default_rng(4)
  ref = _sines(rng, 400)
  noise = rng.uniform(0, 1, ref.shape).astype(np.float32)
  flat = np.full_like(ref, 0.5) + rng.normal(0, 0.01, ref.shape).astype(
      np.float32)
  good = _sines(rng, 400)
  candidates = {2000: (noise, _full(noise)), 4000: (good, _full(good)),
                6000: (flat, _full(flat))}
  best, scores = sequence.select_by_judge(ref, _full(ref), candidates,
                                          seeds=[0, 1], steps=400)
  assert best == 4000
  assert list(scores) == [2000, 4000, 6000]
  assert np.mean(scores[4000]) < 0.1
  assert min(np.mean(scores[2000]), np.mean(scores[6000])) > 0.2
  # Each entry is the judge's score with that seed, not a re-scaled one.
  assert scores[4000][1] == sequence.discriminative_score(
      ref, _full(ref), good, _full(good), seed=1, steps=400)
  with pytest.raises(DataError, match="at least one judge seed"):
    sequence.select_by_judge(ref, _full(ref), candidates, seeds=[])


# ------------------------------------------------------------------ MMD


def test_mmd_matches_double_loop():
  rng = np.random.default_rng(7)
  x = rng.normal(size=(4, 3, 2))
  y = rng.normal(0.5, 1.0, size=(5, 3, 2))
  sigma = 1.7
  k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))
  fx, fy = x.reshape(4, -1), y.reshape(5, -1)
  xx = sum(k(fx[i], fx[j]) for i in range(4) for j in range(4) if i != j)
  yy = sum(k(fy[i], fy[j]) for i in range(5) for j in range(5) if i != j)
  xy = sum(k(fx[i], fy[j]) for i in range(4) for j in range(5))
  want = xx / 12 + yy / 20 - 2 * xy / 20
  assert sequence.mmd(x, y, bandwidth=sigma) == pytest.approx(want, rel=1e-5)


def test_mmd_median_bandwidth():
  rng = np.random.default_rng(8)
  x, y = rng.normal(size=(6, 4, 1)), rng.normal(size=(7, 4, 1))
  pooled = np.concatenate([x, y]).reshape(13, -1)
  dists = [np.linalg.norm(pooled[i] - pooled[j])
           for i in range(13) for j in range(i + 1, 13)]
  assert sequence.mmd(x, y) == pytest.approx(
      sequence.mmd(x, y, bandwidth=np.median(dists)), rel=1e-6)


def test_mmd_same_vs_shifted():
  rng = np.random.default_rng(9)
  a, b = _sines(rng, 200), _sines(rng, 200)
  same = sequence.mmd(a, b)
  shifted = sequence.mmd(a, b + 0.3)
  assert abs(same) < 0.01
  assert shifted > 0.1 and shifted > 10 * abs(same)


def test_mmd_drops_incomplete_windows():
  rng = np.random.default_rng(10)
  a, b = _sines(rng, 30), _sines(rng, 30)
  ma = np.ones(a.shape[:2], bool)
  ma[:10, -3:] = False
  got = sequence.mmd(_scramble(a, ma, rng), b, ma, None)
  assert got == pytest.approx(sequence.mmd(a[10:], b), rel=1e-12)
  with pytest.raises(DataError):
    sequence.mmd(a, b, np.zeros(a.shape[:2], bool), None)


# ------------------------------------------------------------------ spectra


def test_spectrum_peaks_at_sine_frequency():
  rate, t = 100.0, 200
  steps = np.arange(t) / rate
  x = np.stack([np.sin(2 * np.pi * 5.0 * steps),
                np.sin(2 * np.pi * 12.5 * steps + 1.0)], -1)[None]
  x = np.repeat(x, 3, 0) + 0.01 * np.random.default_rng(11).normal(
      size=(3, t, 2))
  freqs, spectra = sequence.power_spectra(x, None, rate)
  assert spectra.shape == (2, t // 2 + 1)
  assert freqs[np.argmax(spectra[0])] == pytest.approx(5.0)
  assert freqs[np.argmax(spectra[1])] == pytest.approx(12.5)


@pytest.mark.parametrize("t", [64, 63])
def test_spectrum_equals_scipy_periodogram(t):
  rng = np.random.default_rng(12)
  x = rng.normal(size=(4, t, 2))
  _, want = signal.periodogram(x, fs=30.0, window="hann", axis=1)
  freqs, got = sequence.power_spectra(x, None, 30.0)
  np.testing.assert_allclose(got, want.mean(0).T, rtol=1e-5)
  np.testing.assert_allclose(freqs, np.fft.rfftfreq(t, 1 / 30.0))


def test_spectra_ignore_incomplete_windows_and_distance():
  rng = np.random.default_rng(13)
  x = rng.normal(size=(5, 32, 1))
  mask = np.ones((5, 32), bool)
  mask[0, 3] = False
  _, s1 = sequence.power_spectra(x, mask, 10.0)
  _, s2 = sequence.power_spectra(_scramble(x, mask, rng), mask, 10.0)
  _, s3 = sequence.power_spectra(x[1:], None, 10.0)
  np.testing.assert_allclose(s1, s2, rtol=1e-6)
  np.testing.assert_allclose(s1, s3, rtol=1e-6)
  assert sequence.spectral_distance(s1, 7.0 * s1) == pytest.approx(0.0)
  disjoint = np.zeros((1, 17))
  disjoint[0, 0] = 1.0
  other = np.zeros((1, 17))
  other[0, 5] = 3.0
  assert sequence.spectral_distance(disjoint, other) == pytest.approx(1.0)


# ------------------------------------------------------------------ heart rate


def _spike_train(bpm, rate, seconds, rng, jitter=0.0):
  t = int(rate * seconds)
  x = 0.05 * rng.normal(size=t)
  period = 60.0 * rate / bpm
  beats = np.arange(rng.uniform(0, period), t - 1, period)
  beats += rng.normal(0, jitter, beats.shape)
  idx = np.clip(np.round(beats).astype(int), 0, t - 2)
  x[idx] += 1.0
  x[idx + 1] += 0.5           # a two-sample QRS
  return x


def test_heart_rate_of_spike_trains():
  rng = np.random.default_rng(14)
  rate = 100.0
  ecg = np.stack([_spike_train(72, rate, 10, rng, 0.5),
                  _spike_train(130, rate, 10, rng, 0.5),
                  _spike_train(45, rate, 10, rng, 0.5),
                  0.05 * rng.normal(size=1000)])
  bpm = sequence.heart_rate_bpm(ecg, None, rate)
  assert bpm[0] == pytest.approx(72, abs=2)
  assert bpm[1] == pytest.approx(130, abs=3)
  assert bpm[2] == pytest.approx(45, abs=2)
  assert np.isnan(bpm[3])            # noise: no clear peak


def _ecg_like(bpm, rate, seconds, rng):
  """P, Q, R, S, T waves as Gaussian bumps, with 3% beat-to-beat jitter."""
  t = np.arange(int(rate * seconds)) / rate
  x = 0.02 * rng.normal(size=t.size)
  beat = rng.uniform(0, 60 / bpm)
  waves = [(-0.2, 0.15, 0.025), (-0.03, -0.1, 0.01), (0.0, 1.0, 0.012),
           (0.03, -0.25, 0.01), (0.3, 0.35, 0.05)]  # (offset s, amp, width s)
  while beat < seconds:
    for offset, amp, width in waves:
      x += amp * np.exp(-0.5 * ((t - beat - offset) / width) ** 2)
    beat += 60 / bpm * (1 + 0.03 * rng.normal())
  return x


@pytest.mark.parametrize("rate", [100.0, 250.0])
def test_heart_rate_of_ecg_like_windows(rate):
  rng = np.random.default_rng(17)
  for bpm in (45, 72, 140, 180):
    ecg = np.stack([_ecg_like(bpm, rate, 10, rng) for _ in range(3)])
    np.testing.assert_allclose(sequence.heart_rate_bpm(ecg, None, rate), bpm,
                               atol=0.05 * bpm)


def test_heart_rate_masks():
  rng = np.random.default_rng(15)
  ecg = np.stack([_spike_train(72, 250.0, 8, rng) for _ in range(3)])
  mask = np.ones(ecg.shape, bool)
  mask[0, 900:1100] = False          # a gap
  mask[1, 1500:] = False             # a shorter window
  mask[2] = False                    # nothing valid
  bpm = sequence.heart_rate_bpm(ecg, mask, 250.0)
  junk = np.where(mask, ecg, rng.normal(0, 50, ecg.shape))
  np.testing.assert_array_equal(
      bpm, sequence.heart_rate_bpm(junk[..., None], mask, 250.0))
  np.testing.assert_allclose(bpm[:2], 72, atol=2)
  assert np.isnan(bpm[2])


def test_heart_rate_distance_matches_scipy():
  rng = np.random.default_rng(16)
  u = rng.normal(70, 5, 40)
  v = rng.normal(80, 9, 25)
  want = stats.wasserstein_distance(u, v)
  u_nan = np.concatenate([u, [np.nan, np.nan]])
  assert sequence.heart_rate_distance(u_nan, v) == pytest.approx(want)
  assert sequence.heart_rate_distance(u, u + 3.0) == pytest.approx(3.0)
  assert np.isnan(sequence.heart_rate_distance([np.nan], v))
