"""Tests of medgen_jax/metrics/image_quality.py: closed forms computed with
scipy, hand loops, and point clouds whose PRDC values are counted by hand."""

import numpy as np
import pytest
import scipy.linalg

from medgen_jax.errors import ConfigError, DataError
from medgen_jax.metrics import image_quality as iq


def _gaussians(n, d=4, seed=0, shift=0.0):
  """Two correlated Gaussian samples [n, d] with different covariances."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(d, d))
  b = rng.normal(size=(d, d))
  x = rng.normal(size=(n, d)) @ a
  y = rng.normal(size=(n, d)) @ b + shift
  return x, y


def _scipy_frechet(mu1, s1, mu2, s2):
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


# ---------------------------------------------------------------- Fréchet


def test_frechet_matches_scipy_closed_form():
  x, y = _gaussians(500, shift=0.7)
  expected = _scipy_frechet(x.mean(0), np.cov(x, rowvar=False),
                            y.mean(0), np.cov(y, rowvar=False))
  assert iq.frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)


def test_frechet_zero_for_identical_and_symmetric():
  x, y = _gaussians(300, shift=1.0)
  assert iq.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
  assert iq.frechet_distance(x, y) > 1.0
  assert iq.frechet_distance(x, y) == pytest.approx(iq.frechet_distance(y, x),
                                                    rel=1e-9)


def test_frechet_singular_covariance_is_real_and_finite():
  # d > n: rank-deficient covariances; the eigh route stays real.
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(5, 12)), rng.normal(size=(6, 12)) + 0.5
  expected = _scipy_frechet(x.mean(0), np.cov(x, rowvar=False),
                            y.mean(0), np.cov(y, rowvar=False))
  assert iq.frechet_distance(x, y) == pytest.approx(expected, rel=1e-5)


def test_frechet_approaches_population_value():
  rng = np.random.default_rng(2)
  mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 0.0, 0.5])
  a1 = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.2, -0.3, 0.8]])
  a2 = np.array([[2.0, 0.0, 0.0], [-0.4, 0.6, 0.0], [0.1, 0.5, 1.5]])
  s1, s2 = a1 @ a1.T, a2 @ a2.T
  population = _scipy_frechet(mu1, s1, mu2, s2)
  n = 100_000
  x = mu1 + rng.normal(size=(n, 3)) @ a1.T
  y = mu2 + rng.normal(size=(n, 3)) @ a2.T
  assert iq.frechet_distance(x, y) == pytest.approx(population, rel=0.03)


def test_frechet_floor_positive_and_shrinks_with_size():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(1000, 4))
  small = np.mean([iq.frechet_floor(real, 50, seed=s) for s in range(5)])
  large = np.mean([iq.frechet_floor(real, 400, seed=s) for s in range(5)])
  assert large > 0
  assert small > 3 * large
  with pytest.raises(ConfigError, match="need 1002 real samples, got 1000"):
    iq.frechet_floor(real, 501)
  with pytest.raises(ConfigError, match="size must be >= 2"):
    iq.frechet_floor(real, 1)


# ---------------------------------------------------------------- KID


def test_mmd2_unbiased_matches_hand_loop():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)) + 0.3

  def k(a, b):
    return (a @ b / 3 + 1) ** 3

  xx = sum(k(x[i], x[j]) for i in range(4) for j in range(4) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(4) for j in range(5))
  expected = xx / 12 + yy / 20 - 2 * xy / 20
  assert iq.mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
  mean, std = iq.kernel_inception_distance(x, y, subset_size=200,
                                           num_subsets=20)
  assert std > 0
  assert abs(mean) < 3 * std or abs(mean) < 1e-3
  shifted_mean, shifted_std = iq.kernel_inception_distance(
      x, y + 1.0, subset_size=200, num_subsets=20)
  assert shifted_mean > 10 * shifted_std
  assert shifted_mean > 100 * abs(mean)


def test_kid_subsets_capped_and_seeded():
  rng = np.random.default_rng(6)
  x, y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + 0.5
  # subset_size above both sizes: every subset is all 20 fake rows.
  a = iq.kernel_inception_distance(x, y, subset_size=1000, num_subsets=3)
  assert a == iq.kernel_inception_distance(x, y, subset_size=1000,
                                           num_subsets=3)
  assert a != iq.kernel_inception_distance(x, y, subset_size=1000,
                                           num_subsets=3, seed=1)
  # with n == m == subset_size every subset is the full set: std 0.
  mean, std = iq.kernel_inception_distance(x[:20], y, subset_size=20,
                                           num_subsets=4)
  assert std == pytest.approx(0.0, abs=1e-12)
  assert mean == pytest.approx(iq.mmd2_unbiased(x[:20], y), rel=1e-12)
  with pytest.raises(ConfigError, match="subset_size >= 2"):
    iq.kernel_inception_distance(x, y, subset_size=1)


# ---------------------------------------------------------------- PRDC


def _line(count, d=3):
  """Integer points (i, 0, ..., 0), i = 0..count-1: exact distances."""
  points = np.zeros((count, d))
  points[:, 0] = np.arange(count)
  return points


def test_prdc_identical_sets():
  # Line 0..9, k=2: radius 1 for points 1..8, radius 2 for the ends 0 and 9.
  # Real ball i holds {i-1, i, i+1} (ends: {0,1,2}, {7,8,9}): 8*3 + 2*3 = 30
  # memberships, density = 30 / (k m) = 30 / 20 = 1.5.
  real = _line(10)
  out = iq.prdc(real, real.copy(), k=2)
  assert out == {"precision": 1.0, "recall": 1.0, "density": 1.5,
                 "coverage": 1.0}


def test_prdc_far_away_is_zero():
  real = _line(10)
  out = iq.prdc(real, real + 1000.0, k=2)
  assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0,
                 "coverage": 0.0}


def test_prdc_half_of_the_cloud():
  # real = 0..9, fake = 0..4, k=2.
  # fake radii: 1 for 1..3, 2 for 0 and 4, so fake balls cover 0..6 (the
  #   ball of 4 reaches 6 exactly: closed): recall = 7/10.
  # every fake point is a real point: precision = 1.
  # real balls holding a fake point: 0..5 (ball of 5 = {4,5,6}): cover 6/10.
  # memberships by real ball: 0:{0,1,2} 1:{0,1,2} 2:{1,2,3} 3:{2,3,4}
  #   4:{3,4} 5:{4} -> 3+3+3+3+2+1 = 15; density = 15 / (2 * 5) = 1.5.
  real = _line(10)
  out = iq.prdc(real, real[:5], k=2)
  assert out == {"precision": 1.0, "recall": 0.7, "density": 1.5,
                 "coverage": 0.6}


def _prdc_reference(real, fake, k):
  """Direct (unblocked) definition, for random data."""
  def radii(x):
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return np.sort(d, axis=1)[:, k]        # column 0 is the point itself
  rr, rf = radii(real), radii(fake)
  d = np.linalg.norm(real[:, None] - fake[None], axis=-1)        # [n, m]
  inside = d <= rr[:, None]
  return {"precision": inside.any(0).mean(),
          "recall": (d <= rf[None, :]).any(1).mean(),
          "density": inside.sum() / (k * fake.shape[0]),
          "coverage": inside.any(1).mean()}


def test_prdc_blocks_match_direct_definition(monkeypatch):
  rng = np.random.default_rng(7)
  real = rng.normal(size=(120, 5))
  fake = 0.8 * rng.normal(size=(90, 5)) + 0.3
  expected = _prdc_reference(real, fake, 3)
  whole = iq.prdc(real, fake, k=3)
  monkeypatch.setattr(iq, "_PAIR_BLOCK", 7 * 120)   # 7-row blocks, ragged end
  blocked = iq.prdc(real, fake, k=3)
  assert blocked == whole
  assert whole == pytest.approx(expected, rel=1e-12)
  assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1


def test_prdc_bad_k():
  real = _line(10)
  with pytest.raises(ConfigError,
                     match=r"k must be in \[1, min\(n, m\) - 1\] = \[1, 4\]"):
    iq.prdc(real, real[:5], k=5)
  with pytest.raises(ConfigError, match="k must be"):
    iq.prdc(real, real, k=0)


# ---------------------------------------------------------------- report


def test_quality_report_uses_held_out_data():
  rng = np.random.default_rng(8)
  real_test = rng.normal(size=(400, 4))
  fake = rng.normal(size=(100, 4)) + 0.5
  far_train = rng.normal(size=(300, 4)) + 5.0   # must not enter fd, kid, prdc
  report = iq.quality_report(far_train, real_test, fake, k=3, seed=0)
  assert report["fd"] == iq.frechet_distance(real_test, fake)
  assert (report["kid_mean"], report["kid_std"]) == (
      iq.kernel_inception_distance(real_test, fake, seed=0))
  for key, value in iq.prdc(real_test, fake, k=3).items():
    assert report[key] == value
  assert report["fd_floor_source"] == "real_train vs real_test"
  assert report["fd_floor_size"] == 100
  assert report["fd_floor"] > 4 * 25 * 0.9       # the train set is shifted
  assert report["fd_ratio"] == report["fd"] / report["fd_floor"]
  assert (report["n_real_test"], report["n_fake"]) == (400, 100)

  halves = iq.quality_report(None, real_test, fake, k=3, seed=0)
  assert halves["fd_floor_source"] == "real_test halves"
  assert halves["fd_floor"] == iq.frechet_floor(real_test, 100, seed=0)
  assert halves["fd_floor"] < halves["fd"]
  assert halves["fd_ratio"] > 1
  small = iq.quality_report(None, real_test[:150], fake, k=3)
  assert small["fd_floor_size"] == 75

  with pytest.raises(ConfigError, match=r"needs 100 real_train samples "
                     r"\(as many as fake\), got 50"):
    iq.quality_report(far_train[:50], real_test, fake)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [
    iq.frechet_distance, iq.mmd2_unbiased,
    lambda a, b: iq.kernel_inception_distance(a, b, num_subsets=2),
    lambda a, b: iq.prdc(a, b, k=1),
    lambda a, b: iq.quality_report(None, a, b, k=1)])
def test_input_errors(fn):
  rng = np.random.default_rng(9)
  real = rng.normal(size=(10, 4))
  with pytest.raises(DataError, match="real features have d=4 but fake "
                     "features have d=3"):
    fn(real, rng.normal(size=(10, 3)))
  with pytest.raises(DataError, match="fake: needs at least 2 samples, got 1"):
    fn(real, real[:1])
  with pytest.raises(DataError, match="real: expected features"):
    fn(real[:, 0], real)
  bad = real.copy()
  bad[3, 1] = np.nan
  with pytest.raises(DataError, match="must be finite"):
    fn(real, bad)


def test_floor_repeats_average_subsets_drawn_in_order():
  rng = np.random.default_rng(5)
  train, test, fake = (rng.normal(size=(n, 3)) for n in (200, 80, 40))
  r = iq.quality_report(train, test, fake, seed=3, floor_repeats=4)
  draw = np.random.default_rng(3)
  floors = [iq.frechet_distance(
      train[draw.choice(200, 40, replace=False)], test) for _ in range(4)]
  assert r["fd_floor"] == pytest.approx(np.mean(floors), rel=1e-12)
  assert r["fd_floor_std"] == pytest.approx(np.std(floors), rel=1e-12)
  assert r["fd_floor_std"] > 0
  one = iq.quality_report(train, test, fake, seed=3)
  assert one["fd_floor"] == pytest.approx(floors[0], rel=1e-12)
  assert one["fd_floor_std"] == 0.0
