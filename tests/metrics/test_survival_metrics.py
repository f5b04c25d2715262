"""Tests of medgen_jax/metrics/survival.py: hand-computed values, and
scikit-survival / lifelines (test-only references) on the WHAS500 table and on
seeded synthetic data with deliberate ties in time and in risk."""

import os
import pathlib

import numpy as np
import pytest

from medgen_jax.errors import ConfigError
from medgen_jax.metrics import survival as sm

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA_DIR = pathlib.Path(
    os.environ.get("MEDGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
TOL = dict(rel=1e-10, abs=1e-12)


@pytest.fixture(scope="module")
def sksurv_metrics():
  pytest.importorskip("sksurv")
  from sksurv import metrics
  return metrics


def _y(time, event):
  """sksurv's structured survival array."""
  from sksurv.util import Surv
  return Surv.from_arrays(np.asarray(event, bool), np.asarray(time, float))


@pytest.fixture(scope="module")
def whas500():
  """(time, event, risk) of WHAS500: lenfol, fstat and a linear score."""
  path = DATA_DIR / "sksurv" / "whas500.arff"
  if not path.is_file():
    pytest.skip(f"{path} is absent (set MEDGEN_SHARED_DATA to the shared data)")
  from scipy.io import arff
  table, _ = arff.loadarff(str(path))
  time = table["lenfol"].astype(float)
  event = (table["fstat"] == b"1").astype(int)
  risk = 0.05 * table["age"] + 0.02 * table["hr"] - 0.01 * table["sysbp"]
  return time, event, risk


@pytest.fixture(scope="module")
def ties():
  """Synthetic (train, test) with integer times and risks rounded to 0.5."""
  rng = np.random.default_rng(0)

  def draw(n):
    risk = np.round(rng.normal(size=n) * 2) / 2                 # many ties
    t = rng.exponential(8 * np.exp(-0.5 * risk))
    c = rng.uniform(0, 30, n)
    time = np.ceil(np.minimum(t, c))                             # tied times
    return time, (t <= c).astype(int), risk

  return draw(300), draw(200)


def _split(data):
  """Train = even rows, test = odd rows."""
  time, event, risk = data
  return (time[::2], event[::2]), (time[1::2], event[1::2], risk[1::2])


def _exp_surv(time, event, risk, times):
  """A proportional-hazards exponential prediction S_i(t) [n, m]."""
  hazard = event.sum() / time.sum() * np.exp(risk - risk.mean())
  return np.exp(-np.outer(hazard, times))


# ---------------------------------------------------------- Kaplan-Meier


def test_step_at_hand():
  times, values = np.array([1.0, 3.0]), np.array([0.5, 0.25])
  got = sm.step_at(times, values, [0.0, 0.999, 1.0, 2.0, 3.0, 9.0])
  np.testing.assert_array_equal(got, [1, 1, 0.5, 0.5, 0.25, 0.25])
  assert sm.step_at(times, values, 0.5, initial=0.0) == 0.0
  both = sm.step_at(times, np.stack([values, 2 * values]), [0.0, 2.0])
  np.testing.assert_array_equal(both, [[1, 0.5], [1, 1.0]])


def test_kaplan_meier_hand():
  # times 1 1 2 3 4 with events 1 0 1 1 0: S = 4/5, then 4/5 * 2/3, * 1/2
  times, surv = sm.kaplan_meier([2, 1, 1, 3, 4], [1, 1, 0, 1, 0])
  np.testing.assert_array_equal(times, [1, 2, 3])
  np.testing.assert_allclose(surv, [0.8, 0.8 * 2 / 3, 0.8 / 3])


@pytest.mark.parametrize("which", ["whas500", "ties"])
def test_kaplan_meier_matches_references(which, request):
  lifelines = pytest.importorskip("lifelines")
  pytest.importorskip("sksurv")
  from sksurv.nonparametric import kaplan_meier_estimator
  data = request.getfixturevalue(which)
  time, event = (data[0][0], data[0][1]) if which == "ties" else data[:2]
  times, surv = sm.kaplan_meier(time, event)
  assert set(times) == set(time[event == 1])
  kmf = lifelines.KaplanMeierFitter().fit(time, event)
  np.testing.assert_allclose(
      surv, kmf.survival_function_.loc[times].to_numpy()[:, 0], rtol=1e-12)
  ref_t, ref_s = kaplan_meier_estimator(event.astype(bool), time)
  np.testing.assert_allclose(sm.step_at(times, surv, ref_t), ref_s,
                             rtol=1e-12)


# ---------------------------------------------------------- concordance


def test_harrell_hand():
  # patient: 0    1    2    3    4
  time = [2.0, 4.0, 4.0, 6.0, 8.0]
  event = [1, 1, 0, 0, 1]
  risk = [0.9, 0.5, 0.7, 0.5, 0.1]
  # comparable (event i, j later or censored at the same time):
  #   0-1 0-2 0-3 0-4: risk 0.9 beats all four          -> 4
  #   1-2 (tied time, 2 censored): 0.5 < 0.7 discordant -> 0
  #   1-3: tied risk 0.5 = 0.5                          -> 0.5
  #   1-4: 0.5 > 0.1                                    -> 1
  #   4: nobody later                                   -> -
  assert sm.harrell_c(time, event, risk) == pytest.approx(5.5 / 7, **TOL)


@pytest.mark.parametrize("which", ["whas500", "ties"])
def test_harrell_matches_sksurv(which, request, sksurv_metrics):
  data = request.getfixturevalue(which)
  time, event, risk = data[0] if which == "ties" else data
  want = sksurv_metrics.concordance_index_censored(
      event.astype(bool), time, risk)[0]
  assert sm.harrell_c(time, event, risk) == pytest.approx(want, **TOL)
  # and with risks within tied_tol treated as ties
  jitter = risk + np.random.default_rng(1).uniform(0, 1e-9, risk.size)
  assert sm.harrell_c(time, event, jitter) == pytest.approx(want, **TOL)


def test_harrell_blocks_agree(ties, monkeypatch):
  time, event, risk = ties[0]
  whole = sm.harrell_c(time, event, risk)
  monkeypatch.setattr(sm, "_PAIR_BLOCK", 7 * time.size)
  assert sm.harrell_c(time, event, risk) == pytest.approx(whole, rel=1e-13)
  assert sm.harrell_c(time, event, -risk) == pytest.approx(1 - whole,
                                                           rel=1e-12)


@pytest.mark.parametrize("which", ["whas500", "ties"])
@pytest.mark.parametrize("tau_q", [None, 0.5, 0.8])
def test_uno_matches_sksurv(which, tau_q, request, sksurv_metrics):
  data = request.getfixturevalue(which)
  if which == "ties":
    train, (time, event, risk) = data[0][:2], data[1]
  else:
    train, (time, event, risk) = _split(data)
  tau = None if tau_q is None else np.quantile(time[event == 1], tau_q)
  want = sksurv_metrics.concordance_index_ipcw(
      _y(*train), _y(time, event), risk, tau)[0]
  assert sm.uno_c(*train, time, event, risk, tau) == pytest.approx(want,
                                                                   **TOL)


def test_uno_rejects_events_beyond_training_follow_up(sksurv_metrics):
  train = ([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])   # G(4) = 1/2 > 0
  time, event, risk = [1.5, 3.5, 5.0], [1, 0, 1], [0.3, 0.2, 0.1]
  with pytest.raises(ValueError, match="largest observed time"):
    sksurv_metrics.concordance_index_ipcw(_y(*train), _y(time, event), risk)
  with pytest.raises(ConfigError, match="training follow-up"):
    sm.uno_c(*train, time, event, risk)
  # truncating at tau = 4.5 drops the late event from the weights
  want = sksurv_metrics.concordance_index_ipcw(
      _y(*train), _y(time, event), risk, 4.5)[0]
  assert sm.uno_c(*train, time, event, risk, 4.5) == pytest.approx(want)


def test_uno_differs_from_harrell_and_needs_pairs(ties):
  (tr_t, tr_e, _), (time, event, risk) = ties
  assert sm.uno_c(tr_t, tr_e, time, event, risk) != pytest.approx(
      sm.harrell_c(time, event, risk), rel=1e-6)
  with pytest.raises(ConfigError, match="comparable pairs"):
    sm.harrell_c([1.0, 2.0, 3.0], [0, 0, 0], [1.0, 2.0, 3.0])
  with pytest.raises(ConfigError, match="comparable pairs"):
    sm.uno_c(tr_t, tr_e, time, event, risk, tau=time.min())


def test_concordance_rejects_bad_inputs():
  with pytest.raises(ValueError, match="event"):
    sm.harrell_c([1.0, 2.0], [1, 2], [0.0, 1.0])
  with pytest.raises(ValueError, match="risk"):
    sm.harrell_c([1.0, 2.0], [1, 0], [0.0, 1.0, 2.0])


# ---------------------------------------------------------- Brier scores


@pytest.mark.parametrize("which", ["whas500", "ties"])
def test_brier_matches_sksurv(which, request, sksurv_metrics):
  data = request.getfixturevalue(which)
  if which == "ties":
    train, (time, event, risk) = data[0][:2], data[1]
    times = np.arange(1.0, 16.0)    # on tied observed times: <= and G(t)
    times = times[times < min(time.max(), train[0].max())]
  else:
    train, (time, event, risk) = _split(data)
    times = sm.evaluation_times(time, event, n=40)
  surv = _exp_surv(time, event, risk, times)
  y_train, y_test = _y(*train), _y(time, event)
  got = sm.brier_scores(*train, time, event, surv, times)
  want = sksurv_metrics.brier_score(y_train, y_test, surv, times)[1]
  np.testing.assert_allclose(got, want, rtol=1e-12)
  assert sm.integrated_brier(*train, time, event, surv, times) == (
      pytest.approx(sksurv_metrics.integrated_brier_score(
          y_train, y_test, surv, times), **TOL))
  # a useless constant prediction scores worse than the model
  flat = np.full_like(surv, 0.5)
  assert (sm.integrated_brier(*train, time, event, flat, times)
          > sm.integrated_brier(*train, time, event, surv, times))


def test_brier_rejects_times_outside_follow_up(ties):
  (tr_t, tr_e, _), (time, event, risk) = ties
  for times in ([time.min() - 1, 5.0], [5.0, time.max()], [6.0, 5.0]):
    surv = np.full((time.size, 2), 0.5)
    with pytest.raises(ConfigError, match="brier_scores"):
      sm.brier_scores(tr_t, tr_e, time, event, surv, times)
  with pytest.raises(ConfigError, match="training follow-up"):
    sm.brier_scores([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1], time, event,
                    np.full((time.size, 2), 0.5), [5.0, 8.0])
  with pytest.raises(ConfigError, match="two"):
    sm.integrated_brier(tr_t, tr_e, time, event, surv[:, :1], [5.0])


def test_evaluation_times(whas500):
  time, event, _ = whas500
  grid = sm.evaluation_times(time, event, n=50)
  assert grid.shape == (50,) and (np.diff(grid) > 0).all()
  q = np.quantile(time[event == 1], [0.1, 0.9])
  np.testing.assert_allclose(grid[[0, -1]], q)
  # hi = 1 is pulled strictly inside the follow-up
  full = sm.evaluation_times(time, event, lo=0.0, hi=1.0)
  assert time.min() <= full[0] and full[-1] < time.max()
  with pytest.raises(ConfigError):
    sm.evaluation_times(time, np.zeros_like(event))


# ---------------------------------------------------------- RMST


def test_rmst_hand():
  # 1 on [0, 1), 0.5 on [1, 3), 0.25 after: to tau = 4 -> 1 + 1 + 0.25
  times, surv = np.array([1.0, 3.0]), np.array([0.5, 0.25])
  assert sm.rmst(times, surv, 4.0) == pytest.approx(2.25)
  assert sm.rmst(times, surv, 2.0) == pytest.approx(1.5)
  assert sm.rmst(times, surv, 0.5) == pytest.approx(0.5)
  batch = sm.rmst(times, np.stack([surv, surv / 2]), 4.0)
  np.testing.assert_allclose(batch, [2.25, 1 + 0.5 + 0.125])


def test_rmst_matches_lifelines(whas500):
  lifelines = pytest.importorskip("lifelines")
  from lifelines.utils import restricted_mean_survival_time
  time, event, _ = whas500
  kmf = lifelines.KaplanMeierFitter().fit(time, event)
  times, surv = sm.kaplan_meier(time, event)
  for tau in (100.0, float(times[20]), 1000.5, 2000.0, 3000.0):
    want = restricted_mean_survival_time(kmf, t=tau)
    assert sm.rmst(times, surv, tau) == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------- calibration


def test_calibration_true_vs_wrong_predictions():
  rng = np.random.default_rng(3)
  n, horizon = 4000, 1.0
  hazard = np.exp(rng.normal(-0.5, 0.7, n))
  t = rng.exponential(1 / hazard)
  c = rng.exponential(3.0, n)                       # independent censoring
  time, event = np.minimum(t, c), (t <= c).astype(int)
  true = np.exp(-hazard * horizon)
  good = sm.calibration(time, event, true, horizon)
  assert good["predicted"].shape == good["observed"].shape == (10,)
  assert good["count"].sum() == n and good["horizon"] == horizon
  assert (np.diff(good["predicted"]) >= 0).all()
  assert good["ici"] < 0.05
  bad = sm.calibration(time, event, true ** 3, horizon)
  assert bad["ici"] > 0.15
  # ici is the count-weighted mean gap
  gap = np.abs(bad["predicted"] - bad["observed"])
  assert bad["ici"] == pytest.approx(np.average(gap, weights=bad["count"]))
  with pytest.raises(ConfigError, match="horizon"):
    sm.calibration(time, event, true, time.max() + 1)


# ---------------------------------------------------------- convenience


def test_survival_metrics(whas500):
  train, (time, event, risk) = _split(whas500)
  times = sm.evaluation_times(time, event, n=20)
  surv = _exp_surv(time, event, risk, times)
  tau = np.quantile(time[event == 1], 0.8)
  got = sm.survival_metrics(*train, time, event, risk, surv, times, tau=tau)
  assert got == {
      "c_index": sm.harrell_c(time, event, risk),
      "uno_c": sm.uno_c(*train, time, event, risk, tau),
      "ibs": sm.integrated_brier(*train, time, event, surv, times)}
  assert all(isinstance(v, float) for v in got.values())
  assert 0.6 < got["c_index"] < 0.9 and 0 < got["ibs"] < 0.25
