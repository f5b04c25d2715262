"""objectives/survival.py against lifelines, scikit-survival and hand values."""

import math
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.objectives import survival as sv

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("MEDGEN_SHARED_DATA",
                                   REPO.parent / "shared" / "data"))
COLUMNS = ("age", "hr", "bmi", "sysbp")

# A few jitted entry points: one compile each instead of many eager ops.
cox_jit = jax.jit(sv.cox_partial_nll, static_argnames="ties")
hazard_nll = jax.jit(sv.logistic_hazard_nll)
rank_loss = jax.jit(sv.deephit_rank_loss)
interpolate = jax.jit(sv.interpolate_survival)
cox_survival = jax.jit(sv.cox_survival)


@jax.jit
def _cox_at(beta, x, t, e):
  """Summed loss and its gradient in beta, for both ties: ([2], [2, p])."""
  def total(b, ties):
    return sv.cox_partial_nll(x @ b, t, e, ties=ties).sum()
  out = [jax.value_and_grad(total)(beta, ties) for ties in sv.TIES]
  return jnp.stack([v for v, _ in out]), jnp.stack([g for _, g in out])


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@pytest.fixture(scope="module")
def whas500():
  """WHAS500: standardised numeric covariates X [500, 4], time, event."""
  path = DATA / "sksurv" / "whas500.arff"
  if not path.is_file():
    pytest.skip(f"{path} is absent (set MEDGEN_SHARED_DATA to the shared data)")
  from scipy.io import arff
  rows, _ = arff.loadarff(path)
  x = np.stack([rows[c].astype(np.float64) for c in COLUMNS], 1)
  x = (x - x.mean(0)) / x.std(0)
  return x, rows["lenfol"].astype(np.float64), rows["fstat"].astype(np.float64)


@pytest.fixture(scope="module")
def lifelines_fit(whas500):
  lifelines = pytest.importorskip("lifelines")
  import pandas as pd
  x, t, e = whas500
  df = pd.DataFrame(x, columns=COLUMNS).assign(T=t, E=e)
  return lifelines.CoxPHFitter().fit(df, duration_col="T", event_col="E"), df


def _loss_and_grad(x, t, e, beta, ties):
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  values, grads = _cox_at(f32(beta), f32(x), f32(t), f32(e))
  i = sv.TIES.index(ties)
  return float(values[i]), np.asarray(grads[i])


def _check_fit(x, t, e, beta, ties, nll):
  """Loss sum = reference NLL and gradient ~ 0 at the fit, not beside it."""
  value, grad = _loss_and_grad(x, t, e, beta, ties)
  np.testing.assert_allclose(value, nll, rtol=2e-6)
  assert np.abs(grad).max() < 2e-3, grad
  _, off = _loss_and_grad(x, t, e, np.asarray(beta) + 0.05, ties)
  assert np.abs(off).max() > 1.0, off


def test_cox_efron_matches_lifelines(whas500, lifelines_fit):
  x, t, e = whas500
  cph, _ = lifelines_fit
  beta = cph.params_[list(COLUMNS)].to_numpy()
  _check_fit(x, t, e, beta, "efron", -cph.log_likelihood_)
  # The table has tied event times, so Breslow's value must differ here.
  breslow, _ = _loss_and_grad(x, t, e, beta, "breslow")
  assert breslow - (-cph.log_likelihood_) > 0.1


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_matches_sksurv(whas500, ties):
  pytest.importorskip("sksurv")
  from sksurv.linear_model import CoxPHSurvivalAnalysis
  from sksurv.linear_model.coxph import CoxPHOptimizer
  from sksurv.util import Surv
  x, t, e = whas500
  model = CoxPHSurvivalAnalysis(ties=ties).fit(x, Surv.from_arrays(e > 0, t))
  opt = CoxPHOptimizer(x, e > 0, t, np.zeros(x.shape[1]), ties)
  nll = opt.nlog_likelihood(model.coef_) * len(t)   # sksurv averages over n
  _check_fit(x, t, e, model.coef_, ties, nll)


def test_cox_hand_example_with_a_tie():
  r = np.array([0.5, -0.2, 0.3, 0.1])
  t = np.array([1.0, 2.0, 2.0, 3.0])
  e = np.array([1, 1, 1, 0])
  ex = np.exp(r)
  want_breslow = [-(0.5 - math.log(ex.sum())),
                  -(-0.2 - math.log(ex[1:].sum())),
                  -(0.3 - math.log(ex[1:].sum())), 0.0]
  want_efron = list(want_breslow)
  want_efron[2] = -(0.3 - math.log(ex[1:].sum() - 0.5 * (ex[1] + ex[2])))
  for ties, want in (("breslow", want_breslow), ("efron", want_efron)):
    got = cox_jit(jnp.asarray(r, jnp.float32), jnp.asarray(t, jnp.float32),
                  jnp.asarray(e), ties=ties)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)
    # Stable for large risks: a shift of every risk changes nothing.
    big = cox_jit(jnp.asarray(r * 50 + 200, jnp.float32),
                  jnp.asarray(t, jnp.float32), jnp.asarray(e), ties=ties)
    small = cox_jit(jnp.asarray(r * 50, jnp.float32),
                    jnp.asarray(t, jnp.float32), jnp.asarray(e), ties=ties)
    assert np.all(np.isfinite(np.asarray(big)))
    np.testing.assert_allclose(np.asarray(big), np.asarray(small), atol=1e-4)
  with pytest.raises(Exception, match="ties"):
    sv.cox_partial_nll(jnp.asarray(r), jnp.asarray(t), jnp.asarray(e),
                       ties="exact")


@jax.jit
def _masked_losses(risk, logits, t, e, interval, alive, mask):
  """{name: (values [b], gradient of their sum in risk or logits)}."""
  losses = {
      "breslow": (lambda r: sv.cox_partial_nll(r, t, e, mask, "breslow"), risk),
      "efron": (lambda r: sv.cox_partial_nll(r, t, e, mask, "efron"), risk),
      "hazard": (lambda lg: sv.logistic_hazard_nll(lg, interval, e, alive,
                                                   mask), logits),
      "deephit": (lambda lg: sv.deephit_rank_loss(lg, interval, e, 0.1,
                                                  mask), logits)}
  out = {}
  for name, (loss, arg) in losses.items():
    values, vjp = jax.vjp(loss, arg)
    out[name] = (values, vjp(jnp.ones_like(values))[0])
  return out


def test_padding_changes_nothing():
  rng = np.random.default_rng(0)
  b, k = 7, 4
  real = dict(
      risk=rng.normal(size=b).astype(np.float32),
      logits=rng.normal(size=(b, k)).astype(np.float32),
      t=np.array([1.0, 2.0, 2.0, 3.0, 0.5, 2.0, 4.0], np.float32),
      e=np.array([1, 1, 1, 0, 0, 1, 1], np.int32),
      interval=np.array([0, 1, 3, 2, 0, 1, 3], np.int32),
      alive=np.array([0, 0, 1, 0, 1, 1, 0], np.int32))
  # Pads (between and around real examples, with garbage) keep their order.
  where = [0, 2, 2, 5, 7]
  fill = dict(risk=np.nan, logits=np.nan, t=np.nan, e=1, interval=99, alive=1)
  padded = {n: np.insert(a, where, fill[n], axis=0) for n, a in real.items()}
  mask = np.insert(np.ones(b, bool), where, False)
  want = _masked_losses(**real, mask=None)
  got = _masked_losses(**padded, mask=mask)
  for name in want:
    for w, g in zip(want[name], got[name]):
      g = np.asarray(g)
      assert np.all(np.isfinite(g)), name
      np.testing.assert_allclose(g[mask], np.asarray(w), rtol=1e-6, atol=1e-7,
                                 err_msg=name)
      assert np.all(g[~mask] == 0), name


def test_breslow_baseline_matches_lifelines(whas500, lifelines_fit):
  x, t, e = whas500
  cph, df = lifelines_fit
  beta = cph.params_[list(COLUMNS)].to_numpy()
  times, cum = sv.breslow_baseline(x @ beta, t, e)
  np.testing.assert_array_equal(times, np.unique(t[e > 0]))
  ll = cph.baseline_cumulative_hazard_.iloc[:, 0]
  knots = ll.index.to_numpy()                   # every distinct time
  grid = times[::20]   # lifelines interpolates between knots: use knots
  steps = [times[0] - 0.5, times[0], 0.5 * (times[3] + times[4]), times[-1] + 9]
  at = np.concatenate([knots, grid, steps])
  risk = np.concatenate([[0.0], x[:20] @ beta])
  got = np.asarray(cox_survival(risk, times, cum, at))   # [21, len(at)]
  base, got = -np.log(got[0]), got[1:]
  # lifelines centres covariates: its H0 is ours times exp(mean(x) @ beta).
  scale = math.exp(cph._norm_mean[list(COLUMNS)].to_numpy() @ beta)
  np.testing.assert_allclose(base[:len(knots)] * scale, ll.to_numpy(), rtol=1e-5)
  want = cph.predict_survival_function(df.iloc[:20], times=grid).to_numpy().T
  np.testing.assert_allclose(got[:, len(knots):-4], want, rtol=1e-5, atol=1e-6)
  # Right-continuous steps: 0 before the first event time, flat between.
  np.testing.assert_allclose(base[-4:], [0.0, cum[0], cum[3], cum[-1]],
                             rtol=1e-5, atol=1e-7)


def test_breslow_baseline_matches_sksurv(whas500):
  pytest.importorskip("sksurv")
  from sksurv.linear_model import CoxPHSurvivalAnalysis
  from sksurv.util import Surv
  x, t, e = whas500
  model = CoxPHSurvivalAnalysis(ties="breslow").fit(x, Surv.from_arrays(e > 0, t))
  times, cum = sv.breslow_baseline(x @ model.coef_, t, e)
  knots = model.unique_times_                   # every distinct time
  risk = np.concatenate([[0.0], x[:20] @ model.coef_])
  got = np.asarray(cox_survival(risk, times, cum, knots))
  np.testing.assert_allclose(-np.log(got[0]), model.cum_baseline_hazard_.y,
                             rtol=1e-5)
  want = model.predict_survival_function(x[:20], return_array=True)
  np.testing.assert_allclose(got[1:], want, rtol=1e-5, atol=1e-6)


def test_make_cuts_and_discretize():
  np.testing.assert_allclose(sv.make_cuts([1.0, 5.0], [1, 0], 2, "uniform"),
                             [0.0, 2.5, 5.0])
  # Quantiles 1, 1, 1.75 of the event times: a duplicate drops one interval.
  cuts = sv.make_cuts([1, 1, 1, 1, 2, 5, 6], [1, 1, 1, 1, 1, 1, 0], 4)
  np.testing.assert_allclose(cuts, [0.0, 1.0, 1.75, 6.0])
  cuts = np.array([0.0, 1.0, 2.0, 4.0])
  t = [0.0, 0.5, 1.0, 1.2, 1.6, 3.0, 2.9, 5.0, 4.5]
  e = [1, 0, 1, 0, 0, 0, 0, 0, 1]
  d = sv.discretize(t, e, cuts)
  np.testing.assert_array_equal(d.interval, [0, 0, 0, 1, 1, 2, 2, 2, 2])
  np.testing.assert_array_equal(d.event, e)
  np.testing.assert_array_equal(d.survived_last, [0, 1, 0, 0, 1, 1, 0, 1, 0])


def test_logistic_hazard_hand_values():
  logits = np.array([[0.2, -0.5, 1.0], [-1.0, 0.3, 0.0], [0.7, 0.1, -0.4]])
  h = _sigmoid(logits)
  want = [-math.log(1 - h[0, 0]) - math.log(h[0, 1]),        # event in 1
          -np.log(1 - h[1]).sum(),                            # censored late in 2
          -math.log(1 - h[2, 0])]                             # censored early in 1
  args = jnp.array([1, 2, 1]), jnp.array([1, 0, 0]), jnp.array([0, 1, 0])
  got = hazard_nll(jnp.asarray(logits, jnp.float32), *args)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
  # log_sigmoid keeps extreme logits finite (h = 0 or 1 in float32).
  extreme = hazard_nll(jnp.asarray(logits * 200, jnp.float32), *args)
  assert np.all(np.isfinite(np.asarray(extreme)))


def test_logistic_hazard_mle_is_life_table_and_matches_kaplan_meier():
  rng = np.random.default_rng(1)
  n, k = 400, 5
  cuts = sv.make_cuts([0.0, 5.0], [0, 0], k, "uniform")
  t_event = rng.exponential(3.0, n)
  t_cens = cuts[rng.integers(1, k + 1, n)]    # censoring at interval ends
  t, e = np.minimum(t_event, t_cens), (t_event <= t_cens).astype(np.int32)
  d = sv.discretize(t, e, cuts)
  assert d.survived_last[e == 0].all()
  # Closed form: h_k = events in k / at risk in k (under the convention).
  events = np.bincount(d.interval[e == 1], minlength=k)
  at_risk = np.array([(d.interval > j).sum() + ((d.interval == j)
                      & ((e == 1) | (d.survived_last == 1))).sum()
                      for j in range(k)])
  theta = np.log(events / (at_risk - events))

  def total(th):
    logits = jnp.broadcast_to(th, (n, k))
    return sv.logistic_hazard_nll(logits, d.interval, d.event,
                                  d.survived_last).sum()

  grad = jax.jit(jax.grad(total))
  assert np.abs(np.asarray(grad(jnp.asarray(theta, jnp.float32)))).max() < 1e-3
  assert np.abs(np.asarray(grad(jnp.asarray(theta + 0.1, jnp.float32)))).max() > 1

  lifelines = pytest.importorskip("lifelines")
  km = lifelines.KaplanMeierFitter().fit(t, e).survival_function_at_times(cuts[1:])
  surv = sv.hazard_survival(jnp.asarray(theta, jnp.float32)[None])[0]
  np.testing.assert_allclose(np.asarray(surv), km.to_numpy(), rtol=1e-5)


def test_interpolate_survival():
  rng = np.random.default_rng(2)
  logits = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
  cuts = np.array([0.0, 1.0, 2.0, 4.0, 7.0])
  surv = np.asarray(sv.hazard_survival(logits))
  np.testing.assert_allclose(surv, np.cumprod(1 - _sigmoid(logits), 1), rtol=1e-6)
  fixed = np.concatenate([[0.0], cuts[1:], [3.0, 10.0]])
  grid = np.linspace(0, 9, 91)
  out = np.asarray(interpolate(surv, cuts, np.concatenate([fixed, grid])))
  at, grid = out[:, :len(fixed)], out[:, len(fixed):]
  np.testing.assert_allclose(at[:, 0], 1.0)
  np.testing.assert_allclose(at[:, 1:5], surv, rtol=1e-6)
  np.testing.assert_allclose(at[:, 5], np.sqrt(surv[:, 1] * surv[:, 2]), rtol=1e-5)
  np.testing.assert_allclose(at[:, 6], surv[:, -1], rtol=1e-6)
  assert np.all(np.diff(grid, axis=1) <= 1e-7) and np.all(grid > 0)


def test_deephit_rank_hand_example():
  logits = np.array([[0.3, -0.2], [-1.0, 0.5], [0.8, 0.1], [-0.4, 1.2],
                     [0.0, -0.7]])
  interval = np.array([0, 1, 0, 1, 0])
  event = np.array([1, 0, 1, 1, 0])
  sigma = 0.2
  cdf = 1 - np.cumprod(1 - _sigmoid(logits), 1)   # F_i(k)

  def eta(i, j):
    k = interval[i]
    return math.exp(-(cdf[i, k] - cdf[j, k]) / sigma)

  # Comparable: j later, or same interval and censored; tied events are not.
  want = np.array([eta(0, 1) + eta(0, 3) + eta(0, 4), 0.0,
                   eta(2, 1) + eta(2, 3) + eta(2, 4), eta(3, 1), 0.0]) / 5
  got = rank_loss(jnp.asarray(logits, jnp.float32),
                             jnp.asarray(interval), jnp.asarray(event), sigma)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
