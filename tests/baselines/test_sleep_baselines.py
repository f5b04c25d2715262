"""The classical sleep baselines of baselines/sleep.py: a Markov chain of
stages and time-of-day negative-binomial counts, checked against known
generating parameters, hand-computed likelihoods and scipy."""

import numpy as np
import pytest
from scipy import special, stats

from medgen_jax.baselines.sleep import MarkovChain, TimeOfDayCounts

EPOCH = 30.0
P3 = np.array([[0.8, 0.1, 0.1],
               [0.2, 0.7, 0.1],
               [0.3, 0.3, 0.4]])
# A second regime (after the first hour): mostly state 2, sticky.
P3_LATE = np.array([[0.2, 0.1, 0.7],
                    [0.1, 0.2, 0.7],
                    [0.05, 0.05, 0.9]])


def _stationary(p):
  w, v = np.linalg.eig(p.T)
  pi = np.real(v[:, np.argmin(np.abs(w - 1))])
  return pi / pi.sum()


def _simulate(rng, n, steps, p_early, p_late=None, switch=None):
  """States [n, steps] of a chain started from p_early's stationary law;
  the transition INTO step t uses p_late when t >= switch."""
  k = p_early.shape[0]
  s = np.zeros((n, steps), np.int64)
  s[:, 0] = rng.choice(k, size=n, p=_stationary(p_early))
  for t in range(1, steps):
    p = p_late if switch is not None and t >= switch else p_early
    u = rng.random(n)
    s[:, t] = (u[:, None] > np.cumsum(p[s[:, t - 1]], 1)).sum(1)
  return np.minimum(s, k - 1)


def _arrays(s):
  """(x [n, T, 1], mask [n, T], t0 [n]) as a hypnogram dataset holds."""
  return (s[..., None].astype(np.float32), np.ones(s.shape, bool),
          np.zeros(s.shape[0]))


def _transition_counts(s, k):
  c = np.zeros((k, k))
  np.add.at(c, (s[:, :-1].ravel(), s[:, 1:].ravel()), 1.0)
  return c


def _within(estimate, truth, se, z=4.5):
  """Asserts |estimate - truth| <= z standard errors, elementwise."""
  err = np.abs(np.asarray(estimate) - np.asarray(truth))
  assert (err <= z * np.asarray(se)).all(), (estimate, truth, err / se)


# ---------------------------------------------------------------------------
# Markov chain.
# ---------------------------------------------------------------------------


def test_markov_fit_recovers_a_known_transition_matrix():
  rng = np.random.default_rng(0)
  s = _simulate(rng, 200, 300, P3)
  chain = MarkovChain.fit(*_arrays(s), EPOCH, num_states=3)
  assert chain.transitions.shape == (1, 3, 3)
  np.testing.assert_allclose(chain.transitions.sum(-1), 1.0)
  # Row i is a multinomial proportion over N_i transitions out of state i.
  n_i = _transition_counts(s, 3).sum(1, keepdims=True)
  _within(chain.transitions[0], P3, np.sqrt(P3 * (1 - P3) / n_i))
  # The first-epoch law: 200 draws from the stationary distribution.
  pi = _stationary(P3)
  _within(chain.initial[0], pi, np.sqrt(pi * (1 - pi) / 200))


def test_markov_nll_per_step_approaches_the_entropy_rate():
  rng = np.random.default_rng(1)
  train = _simulate(rng, 200, 300, P3)
  test = _simulate(rng, 200, 300, P3)
  chain = MarkovChain.fit(*_arrays(train), EPOCH, num_states=3)
  total, steps = chain.nll(*_arrays(test))
  assert steps.tolist() == [300] * 200
  per_step = total.sum() / steps.sum()
  pi = _stationary(P3)
  rate = -np.sum(pi[:, None] * P3 * np.log(P3))   # H = -sum pi_i P_ij ln P_ij
  # The sd of one transition's log-loss, over 60000 steps.
  sd = np.sqrt(np.sum(pi[:, None] * P3 * np.log(P3)**2) - rate**2)
  assert abs(per_step - rate) < 5 * sd / np.sqrt(test.size)
  # A wrong chain (transposed matrix) is far worse than that tolerance.
  wrong = MarkovChain(chain.initial, chain.transitions.transpose(0, 2, 1)
                      / chain.transitions.sum(1)[:, :, None], EPOCH, np.inf)
  assert wrong.nll(*_arrays(test))[0].sum() / steps.sum() > rate + 0.1


def _hand_chain():
  initial = np.array([[0.5, 0.3, 0.2]])
  return MarkovChain(initial, P3[None], EPOCH, np.inf)


def test_markov_nll_by_hand_across_a_masked_step():
  # s = 0, (masked), 2, 1: p(s0 = 0) = 0.5; across the gap p(s2 = 2 | s0 =
  # 0) = (P @ P)[0, 2] = 0.8*0.1 + 0.1*0.1 + 0.1*0.4 = 0.13; then P[2, 1] =
  # 0.3.
  chain = _hand_chain()
  mask = np.array([[True, False, True, True]])
  for hidden in (0.0, 1.0, 2.0):     # the masked value plays no part
    x = np.array([[[0.0], [hidden], [2.0], [1.0]]], np.float32)
    total, steps = chain.nll(x, mask, np.zeros(1))
    np.testing.assert_allclose(total, [-np.log(0.5 * 0.13 * 0.3)])
    assert steps.tolist() == [3]
  assert (P3 @ P3)[0, 2] == pytest.approx(0.13)


def test_markov_nll_by_hand_with_a_masked_first_step():
  # s = (masked), 1: p(s1 = 1) = (initial @ P)[1] = 0.5*0.1 + 0.3*0.7 +
  # 0.2*0.3 = 0.32; an all-masked window costs nothing.
  chain = _hand_chain()
  x = np.array([[[2.0], [1.0]], [[1.0], [1.0]]], np.float32)
  mask = np.array([[False, True], [False, False]])
  total, steps = chain.nll(x, mask, np.zeros(2))
  np.testing.assert_allclose(total, [-np.log(0.32), 0.0])
  assert steps.tolist() == [1, 0]


def test_inhomogeneous_nll_by_hand_across_the_bin_edge():
  # Epochs at 3540 s (bin 0), 3570 s (bin 0, masked), 3600 s (bin 1): the
  # step into 3570 s uses P3, the step into 3600 s P3_LATE, so p(s2 = 2 |
  # s0 = 0) = (P3 @ P3_LATE)[0, 2] = 0.8*0.7 + 0.1*0.7 + 0.1*0.9 = 0.72.
  initial = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
  chain = MarkovChain(initial, np.stack([P3, P3_LATE]), EPOCH, 3600.0)
  x = np.array([[[0.0], [1.0], [2.0]]], np.float32)
  total, _ = chain.nll(x, np.array([[True, False, True]]), np.array([3540.0]))
  np.testing.assert_allclose(total, [-np.log(0.5 * 0.72)])
  # Starting at 3600 s the first epoch's law is bin 1's.
  total, _ = chain.nll(x[:, :1], np.ones((1, 1), bool), np.array([3600.0]))
  np.testing.assert_allclose(total, [-np.log(0.1)])


def test_fit_counts_a_transition_in_the_bin_of_its_later_epoch():
  # Pairs of epochs at (0 s, 30 s): both in bin 0, drawn with P3; pairs at
  # (3570 s, 3600 s): the second in bin 1, drawn with P3_LATE.
  rng = np.random.default_rng(9)
  early = _simulate(rng, 6000, 2, P3)
  late = _simulate(rng, 6000, 2, P3_LATE)
  s = np.concatenate([early, late])
  t0 = np.repeat([0.0, 3570.0], 6000)
  x, mask, _ = _arrays(s)
  chain = MarkovChain.fit(x, mask, t0, EPOCH, 3, bin_seconds=3600.0)
  for b, part, p in ((0, early, P3), (1, late, P3_LATE)):
    n_i = _transition_counts(part, 3).sum(1, keepdims=True)
    _within(chain.transitions[b], p,
            np.sqrt(p * (1 - p) / n_i) + 10 / (n_i + 10) / 4.5)


def test_time_inhomogeneous_chain_follows_a_change_after_one_hour():
  switch = int(3600 / EPOCH)          # 120 epochs of 30 s
  rng = np.random.default_rng(2)
  train = _simulate(rng, 100, 2 * switch, P3, P3_LATE, switch)
  test = _simulate(rng, 100, 2 * switch, P3, P3_LATE, switch)
  homog = MarkovChain.fit(*_arrays(train), EPOCH, num_states=3)
  inhom = MarkovChain.fit(*_arrays(train), EPOCH, num_states=3,
                          bin_seconds=3600.0)
  assert inhom.transitions.shape == (2, 3, 3)
  # Bin 0 holds the transitions into steps 1..119, bin 1 into 120..239;
  # each row is shrunk towards the one-matrix chain by 10 pseudo-counts,
  # which moves it by at most 10 / (N_i + 10).
  for b, part, p in ((0, train[:, :120], P3), (1, train[:, 119:], P3_LATE)):
    n_i = _transition_counts(part, 3).sum(1, keepdims=True)
    _within(inhom.transitions[b], p,
            np.sqrt(p * (1 - p) / n_i) + 10 / (n_i + 10) / 4.5)

  def per_step(model, s):
    total, n = model.nll(*_arrays(s))
    return total.sum() / n.sum()

  truth = MarkovChain(inhom.initial, np.stack([P3, P3_LATE]), EPOCH, 3600.0)
  # The one-matrix chain pays the KL divergence of each regime's rows from
  # their mixture, about 0.1 nat a step here; binned, the chain is as good
  # as the generating one (whose per-step NLL is its entropy rate).
  assert per_step(inhom, test) < per_step(homog, test) - 0.05
  assert per_step(inhom, test) < per_step(truth, test) + 0.01

  # On homogeneous data the binned chain costs at most a little.
  train = _simulate(rng, 100, 2 * switch, P3)
  test = _simulate(rng, 100, 2 * switch, P3)
  homog = MarkovChain.fit(*_arrays(train), EPOCH, num_states=3)
  inhom = MarkovChain.fit(*_arrays(train), EPOCH, num_states=3,
                          bin_seconds=3600.0)
  assert per_step(inhom, test) < per_step(homog, test) + 0.005


def test_markov_samples_have_the_transition_frequencies():
  chain = MarkovChain(np.array([[0.6, 0.3, 0.1]]), P3[None], EPOCH, np.inf)
  s = chain.sample(np.random.default_rng(3), 300, 200, np.zeros(300))
  assert s.shape == (300, 200) and s.min() >= 0 and s.max() <= 2
  c = _transition_counts(s, 3)
  n_i = c.sum(1, keepdims=True)
  _within(c / n_i, P3, np.sqrt(P3 * (1 - P3) / n_i))
  first = np.bincount(s[:, 0], minlength=3) / 300
  p0 = np.array([0.6, 0.3, 0.1])
  _within(first, p0, np.sqrt(p0 * (1 - p0) / 300))


def test_inhomogeneous_samples_switch_matrix_with_the_bin():
  chain = MarkovChain(np.array([[1 / 3] * 3] * 2), np.stack([P3, P3_LATE]),
                      EPOCH, 3600.0)
  s = chain.sample(np.random.default_rng(4), 200, 240, np.zeros(200))
  for part, p in ((s[:, :120], P3), (s[:, 119:], P3_LATE)):
    c = _transition_counts(part, 3)
    n_i = c.sum(1, keepdims=True)
    _within(c / n_i, p, np.sqrt(p * (1 - p) / n_i))


# ---------------------------------------------------------------------------
# Time-of-day counts.
# ---------------------------------------------------------------------------

HOURS = np.arange(24)
# A day/night rhythm: ~250 counts a minute mid-afternoon, ~5 at 3 am.
MU = np.exp(np.log(35.0) + 2.0 * np.cos(2 * np.pi * (HOURS - 15) / 24))
THETA = 0.6 + 0.8 * (HOURS >= 8) * (HOURS < 22)     # more dispersed at night
PI = np.where((HOURS < 7) | (HOURS >= 23), 0.5, 0.1)


def _days(rng, n_days, zero_inflated=False):
  """x [n, 1440, 1] one-minute counts of n calendar days (t0 = 0)."""
  hour = np.arange(1440) // 60
  mu, theta = MU[hour], THETA[hour]
  y = rng.negative_binomial(theta, theta / (theta + mu), size=(n_days, 1440))
  if zero_inflated:
    y = np.where(rng.random(y.shape) < PI[hour], 0, y)
  return (y[..., None].astype(np.float32), np.ones(y.shape, bool),
          np.zeros(n_days))


def _theta_se(mu, theta, n):
  """The NB2 MLE of theta's standard error from n draws: mu and theta are
  orthogonal, I(theta) = psi1(theta) - E psi1(y + theta) - 1/theta +
  1/(theta + mu) per draw."""
  y = np.arange(0, 20000)
  pmf = stats.nbinom.pmf(y, theta, theta / (theta + mu))
  info = (special.polygamma(1, theta) - np.sum(
      pmf * special.polygamma(1, y + theta)) - 1 / theta + 1 / (theta + mu))
  return 1 / np.sqrt(n * info)


def test_time_of_day_counts_recover_hourly_mu_and_theta():
  n_days = 30
  model = TimeOfDayCounts.fit(*_days(np.random.default_rng(5), n_days), 60.0)
  n = 60 * n_days                                     # draws per hour
  assert model.mu.shape == (24,) and (model.pi == 0).all()
  _within(model.mu, MU, np.sqrt((MU + MU**2 / THETA) / n))
  se = np.array([_theta_se(m, t, n) for m, t in zip(MU, THETA)])
  _within(model.theta, THETA, se)


def test_time_of_day_nll_matches_scipy_over_unmasked_steps():
  rng = np.random.default_rng(6)
  mu, theta = rng.uniform(1, 80, 24), rng.uniform(0.3, 3, 24)
  model = TimeOfDayCounts(mu, theta, np.zeros(24), 60.0, 3600.0)
  x = rng.integers(0, 120, size=(3, 200, 1)).astype(np.float32)
  mask = rng.random((3, 200)) < 0.8
  # Windows from 23:30 (crossing midnight), 00:00 and 13:05.
  t0 = np.array([23.5 * 3600, 0.0, 13 * 3600 + 300])
  total, steps = model.nll(x, mask, t0)
  for i in range(3):
    hour = ((t0[i] + 60.0 * np.arange(200)) % 86400) // 3600
    hour = hour.astype(int)
    logp = stats.nbinom.logpmf(x[i, :, 0], theta[hour],
                               theta[hour] / (theta[hour] + mu[hour]))
    np.testing.assert_allclose(total[i], -logp[mask[i]].sum(), rtol=1e-10)
    assert steps[i] == mask[i].sum()
  assert set(((t0[0] + 60.0 * np.arange(200)) % 86400 // 3600)
             .astype(int)) == {23, 0, 1, 2}


def test_zero_inflated_nll_by_hand():
  model = TimeOfDayCounts(np.full(24, 4.0), np.full(24, 2.0), np.full(24, 0.3),
                          60.0, 3600.0)
  # p(0) = 0.3 + 0.7 * (2 / 6)^2 = 0.3 + 0.7 / 9; p(5) = 0.7 * NB(5; 4, 2).
  x = np.array([[[0.0], [5.0]]], np.float32)
  total, _ = model.nll(x, np.ones((1, 2), bool), np.zeros(1))
  nb5 = stats.nbinom.pmf(5, 2.0, 2.0 / 6.0)
  np.testing.assert_allclose(total, [-np.log((0.3 + 0.7 / 9) * 0.7 * nb5)])


def test_zinb_fit_recovers_the_extra_zeros():
  rng = np.random.default_rng(7)
  train = _days(rng, 30, zero_inflated=True)
  zinb = TimeOfDayCounts.fit(*train, 60.0, zero_inflated=True)
  # With mu >= 5 and these thetas the NB's own zeros are rare enough that pi
  # is nearly a proportion of 1800 draws an hour (and the NB's zeros add
  # uncertainty: allow twice the binomial standard error).
  _within(zinb.pi, PI, 2 * np.sqrt(PI * (1 - PI) / 1800))
  nb = TimeOfDayCounts.fit(*train, 60.0)
  test = _days(rng, 10, zero_inflated=True)
  assert zinb.nll(*test)[0].sum() < nb.nll(*test)[0].sum()


def test_masked_steps_change_nothing():
  rng = np.random.default_rng(8)
  x, mask, t0 = _days(rng, 5)
  mask = rng.random(mask.shape) < 0.7
  other = np.where(mask[..., None], x, 1e6).astype(np.float32)
  for zero_inflated in (False, True):
    a = TimeOfDayCounts.fit(x, mask, t0, 60.0, zero_inflated=zero_inflated)
    b = TimeOfDayCounts.fit(other, mask, t0, 60.0,
                            zero_inflated=zero_inflated)
    for name in ("mu", "theta", "pi"):
      np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.nll(x, mask, t0)[0],
                                  a.nll(other, mask, t0)[0])
  s = _simulate(rng, 20, 50, P3)
  xs, ms = s[..., None].astype(np.float32), rng.random(s.shape) < 0.7
  ys = np.where(ms[..., None], xs, 2 - xs)
  ca = MarkovChain.fit(xs, ms, np.zeros(20), EPOCH, 3)
  cb = MarkovChain.fit(ys, ms, np.zeros(20), EPOCH, 3)
  np.testing.assert_array_equal(ca.transitions, cb.transitions)
  np.testing.assert_array_equal(ca.nll(xs, ms, np.zeros(20))[0],
                                ca.nll(ys, ms, np.zeros(20))[0])
