"""The autoregressive family's pure functions: the teacher-forced train step
on the generic update, held-out scores, and sampling / forecasting as one
`jax.lax.scan` over time (no per-step Python).

Batch (numpy, from SeriesTask.to_batch):
  x: float32 [batch, time, channels] (normalised; 0 at masked steps)
  mask: bool [batch, time]
  label: int32 [batch] (zeros when the run is unconditional)
  covariates: float32 [batch, S] (runs with static covariates only)
  t0: float32 [batch] seconds of each window's first step (runs with a
    time input: since midnight for "clock", since the start for "elapsed")

The model sees each value through its head's input features
(`Head.inputs`: one-hot classes, log counts) and, with a time input, the
time features of the step it predicts (models/recurrent.py).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from medgen_jax.models.recurrent import Autoregressive, time_features
from medgen_jax.objectives import sequence as seq
from medgen_jax.train.update import GradientFn, LossOutput, update


@dataclasses.dataclass(frozen=True)
class RnnStepConfig:
  """Static settings (hashable; part of the compiled programs)."""

  model: Autoregressive
  head: seq.Head
  conditional: bool
  input_noise: float = 0.0
  time_kind: str = ""           # "" | clock | elapsed (models/recurrent.py)
  epoch_seconds: float = 1.0    # seconds per step (1 / rate)


def step_times(cfg: RnnStepConfig, t0, steps: int, offset=0):
  """Time features [b, steps, F] of steps offset.. of windows starting at
  t0 [b] seconds (None for a run without a time input)."""
  if not cfg.time_kind:
    return None
  t = offset + jnp.arange(steps, dtype=jnp.float32)
  return time_features(cfg.time_kind,
                       t0[:, None] + t[None, :] * cfg.epoch_seconds)


def _batch_times(cfg: RnnStepConfig, batch):
  return step_times(cfg, batch["t0"], batch["x"].shape[1]) if (
      cfg.time_kind) else None


def _label(cfg: RnnStepConfig, batch):
  return batch["label"] if cfg.conditional else None


def _covariates(batch):
  return batch.get("covariates")   # [batch, S], present when conditioned on


def make_loss_fn(cfg: RnnStepConfig):
  """Per-example masked NLL (nats summed over each example's steps)."""

  def loss_fn(params, batch, key) -> LossOutput:
    inputs = cfg.head.inputs(batch["x"])
    if cfg.input_noise:  # noisy inputs, clean targets
      inputs = inputs + cfg.input_noise * jax.random.normal(key, inputs.shape)
    raw = cfg.model.apply({"params": params}, inputs, batch["mask"],
                          _label(cfg, batch), _covariates(batch),
                          _batch_times(cfg, batch))
    losses = seq.sequence_nll(cfg.head, raw, batch["x"], batch["mask"])
    steps = jnp.maximum(batch["mask"].sum(), 1)
    return LossOutput(losses, {"nll_per_step": losses.sum() / steps})

  return loss_fn


def make_train_step(cfg: RnnStepConfig, gradient_fn: GradientFn):
  loss_fn = make_loss_fn(cfg)

  def train_step(state, batch, key):
    key = jax.random.fold_in(key, state.step)
    state, info = update(state, loss_fn, batch, key, gradient_fn=gradient_fn)
    return state, {"loss": info.loss, "grad_norm": info.grad_norm,
                   **info.metrics}

  return train_step


def make_scores(cfg: RnnStepConfig):
  """(params, batch) -> (summed NLL [b], unmasked steps [b])."""

  def scores(params, batch):
    raw = cfg.model.apply({"params": params}, cfg.head.inputs(batch["x"]),
                          batch["mask"], _label(cfg, batch),
                          _covariates(batch), _batch_times(cfg, batch))
    nll = seq.sequence_nll(cfg.head, raw, batch["x"], batch["mask"])
    return nll, batch["mask"].sum(-1)

  return scores


def _apply_step(cfg, params, carry, prev, seen, start, label, covariates,
                time):
  return cfg.model.apply({"params": params}, carry, prev, seen, start, label,
                         covariates, time, method=Autoregressive.step)


def _time_major(a):
  return None if a is None else jnp.swapaxes(a, 0, 1)


def warm_up(cfg: RnnStepConfig, params, context, mask, label, covariates,
            t0=None):
  """Runs the model over observed context [b, t, c] (mask [b, t]) by scan;
  returns (carry, prev, seen): the state after the context and the inputs of
  the first step after it (prev as the head's input features)."""
  b = context.shape[0]
  carry = cfg.model.apply({"params": params}, b,
                          method=Autoregressive.initial_carry)
  features = cfg.head.inputs(context)
  inputs = Autoregressive.shift(features, mask)  # (prev, seen, start) of 0..t-1
  times = step_times(cfg, t0, context.shape[1])

  def body(carry, step_inputs):
    *step_inputs, time = step_inputs
    carry, _ = _apply_step(cfg, params, carry, *step_inputs, label,
                           covariates, time)
    return carry, None

  carry, _ = jax.lax.scan(body, carry, tuple(_time_major(a) for a in inputs)
                          + (_time_major(times),))
  last = jnp.where(mask[:, -1:], features[:, -1], 0.0)
  return carry, last, mask[:, -1:].astype(jnp.float32)


def roll_out(cfg: RnnStepConfig, params, carry, prev, seen, key, steps: int,
             label, covariates, temperature, t0=None, offset: int = 0, *,
             from_start: bool = False):
  """Samples `steps` values, each fed back (as its input features) as the
  next input: [b, steps, c]. Step t draws with key fold_in(key, t) and sees
  the time features of step offset + t of windows starting at t0 [b].
  `from_start`: the first sampled step is the series' first."""

  def body(state, t):
    carry, prev, seen = state
    start = jnp.full_like(seen, from_start) * (t == 0)
    time = (None if not cfg.time_kind else
            step_times(cfg, t0, 1, offset + t)[:, 0])
    carry, raw = _apply_step(cfg, params, carry, prev, seen, start, label,
                             covariates, time)
    y = cfg.head.sample(jax.random.fold_in(key, t), raw, temperature)
    return (carry, cfg.head.inputs(y), jnp.ones_like(seen)), y

  _, ys = jax.lax.scan(body, (carry, prev, seen), jnp.arange(steps))
  return jnp.swapaxes(ys, 0, 1)


def make_sample(cfg: RnnStepConfig, channels: int):
  """(params, key, label [n], covariates [n, S] or None, t0 [n] or None,
  temperature, n, steps) -> [n, steps, c]."""
  size = cfg.head.input_size(channels)

  def sample(params, key, label, covariates, t0, temperature, n: int,
             steps: int):
    carry = cfg.model.apply({"params": params}, n,
                            method=Autoregressive.initial_carry)
    prev = jnp.zeros((n, size), jnp.float32)
    seen = jnp.zeros((n, 1), jnp.float32)
    lab = label if cfg.conditional else None
    return roll_out(cfg, params, carry, prev, seen, key, steps, lab,
                    covariates, temperature, t0, from_start=True)

  return sample


def make_forecast(cfg: RnnStepConfig):
  """(params, key, context [b, t, c], mask [b, t], label, covariates,
  t0 [b] or None, temperature, horizon) -> [b, horizon, c] continuing each
  context."""

  def forecast(params, key, context, mask, label, covariates, t0,
               temperature, horizon: int):
    lab = label if cfg.conditional else None
    carry, prev, seen = warm_up(cfg, params, context, mask, lab, covariates,
                                t0)
    return roll_out(cfg, params, carry, prev, seen, key, horizon, lab,
                    covariates, temperature, t0, context.shape[1])

  return forecast
