"""models/recurrent.py and the rnn family's scan sampling, against
step-by-step references on tiny models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.families.rnn import step as rnn_step
from medgen_jax.models import recurrent
from medgen_jax.objectives.sequence import HEADS


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_scanned_stack_equals_its_cells_stepped_by_hand(cell):
  stack = recurrent.RecurrentStack(cell=cell, hidden=5, layers=2)
  x = jax.random.normal(jax.random.key(0), (3, 7, 4))
  params = stack.init(jax.random.key(1), x)
  full = stack.apply(params, x)
  carry = stack.apply(params, 3, method=stack.initial_carry)
  outs = []
  for t in range(7):
    carry, h = stack.apply(params, carry, x[:, t], method=stack.step)
    outs.append(h)
  np.testing.assert_allclose(np.asarray(full), np.asarray(jnp.stack(outs, 1)),
                             atol=1e-5)
  assert full.shape == (3, 7, 5)


def test_autoregressive_step_t_sees_only_the_past():
  model = recurrent.Autoregressive(num_params=4, hidden=6, layers=1)
  y = jax.random.normal(jax.random.key(0), (2, 6, 2))
  mask = jnp.ones((2, 6), bool)
  params = model.init(jax.random.key(1), y, mask)
  base = np.asarray(model.apply(params, y, mask))
  changed = np.asarray(model.apply(params, y.at[:, 3].add(5.0), mask))
  np.testing.assert_array_equal(base[:, :4], changed[:, :4])  # steps <= 3
  assert not np.allclose(base[:, 4:], changed[:, 4:])


@pytest.fixture(scope="module")
def tiny_ar():
  head = HEADS.get("gaussian")
  model = recurrent.Autoregressive(num_params=head.num_params(2), cell="gru",
                                   hidden=8, layers=2, num_classes=3,
                                   num_covariates=2)
  cfg = rnn_step.RnnStepConfig(model, head, conditional=True)
  y = jnp.zeros((2, 4, 2))
  params = model.init(jax.random.key(3), y, jnp.ones((2, 4), bool),
                      jnp.zeros((2,), jnp.int32), jnp.zeros((2, 2)))["params"]
  return cfg, params


COV = jnp.asarray([[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]])


def _reference_sample(cfg, params, key, label, cov, temperature, n, steps, c):
  """The same sampler as a Python loop over model.apply(method=step)."""
  carry = cfg.model.apply({"params": params}, n,
                          method=recurrent.Autoregressive.initial_carry)
  prev, seen, ys = jnp.zeros((n, c)), jnp.zeros((n, 1)), []
  for t in range(steps):
    start = jnp.full((n, 1), 1.0 if t == 0 else 0.0)
    carry, raw = cfg.model.apply({"params": params}, carry, prev, seen, start,
                                 label, cov,
                                 method=recurrent.Autoregressive.step)
    prev = cfg.head.sample(jax.random.fold_in(key, t), raw, temperature)
    seen = jnp.ones((n, 1))
    ys.append(prev)
  return np.asarray(jnp.stack(ys, 1))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_scan_sampling_equals_the_step_by_step_reference(tiny_ar, temperature):
  cfg, params = tiny_ar
  label = jnp.asarray([0, 2, 1])
  sample = jax.jit(rnn_step.make_sample(cfg, 2), static_argnums=(6, 7))
  got = np.asarray(sample(params, jax.random.key(7), label, COV, None,
                          jnp.float32(temperature), 3, 9))
  want = _reference_sample(cfg, params, jax.random.key(7), label, COV,
                           temperature, 3, 9, 2)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert got.shape == (3, 9, 2)
  other = np.asarray(sample(params, jax.random.key(7), label, COV + 1.0,
                            None, jnp.float32(temperature), 3, 9))
  assert not np.allclose(other, got)   # the covariates condition the samples


def test_forecast_continues_from_the_teacher_forced_state(tiny_ar):
  """The forecast's first step uses the same head parameters as the
  teacher-forced model at the step after the context."""
  cfg, params = tiny_ar
  ctx = jax.random.normal(jax.random.key(0), (2, 5, 2))
  mask = jnp.ones((2, 5), bool).at[0, 2].set(False)
  label = jnp.asarray([1, 0])
  forecast = rnn_step.make_forecast(cfg)
  got = np.asarray(forecast(params, jax.random.key(0), ctx, mask, label,
                            COV[:2], None, jnp.float32(0.0), 1))[:, 0]
  # teacher-forced over context + one dummy step: its last head = step 5's
  full = jnp.concatenate([ctx, jnp.zeros((2, 1, 2))], 1)
  fmask = jnp.concatenate([mask, jnp.ones((2, 1), bool)], 1)
  raw = cfg.model.apply({"params": params}, full, fmask, label,
                        COV[:2])[:, -1]
  np.testing.assert_allclose(got, np.asarray(cfg.head.mean(raw)), atol=1e-5)
