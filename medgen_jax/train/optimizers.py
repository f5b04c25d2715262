"""`make_optimizer(config.optimizer, learning_rate)`: the one optimizer factory.

Each optimizer reads only its own, documented fields of the `optimizer`
section (configs/base.py):
  adam:    b1, b2, eps                     (Kingma & Ba 2015)
  rmsprop: decay, eps                      (Tieleman & Hinton 2012)
  sgd:     momentum (0 = plain SGD)
and every one honours `grad_clip` (global-norm clipping, 0 = off) and the
learning-rate schedule (`schedule`, `decay_begin`, `decay_end`,
`final_lr_fraction`: constant, or a linear or cosine decay between two
steps). New optimizers register a factory `fn(cfg, learning_rate)` in
OPTIMIZERS; `learning_rate` is then a number or an optax schedule.
"""

from __future__ import annotations

import optax

from medgen_jax.configs.base import check_real, check_schedule
from medgen_jax.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", hint="--optimizer")


@OPTIMIZERS.register("adam")
def _adam(cfg, learning_rate):
  return optax.adam(learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(cfg, learning_rate):
  return optax.rmsprop(learning_rate, decay=cfg.decay, eps=cfg.eps)


@OPTIMIZERS.register("sgd")
def _sgd(cfg, learning_rate):
  return optax.sgd(learning_rate, momentum=cfg.momentum or None)


def learning_rate_schedule(cfg, learning_rate: float, train_steps: int,
                           updates_per_step: int = 1):
  """`learning_rate` itself for a constant schedule (so the optimizer state
  of such runs is unchanged), else an optax schedule of the step count:
  `learning_rate` up to `decay_begin`, a linear or cosine decay to
  `final_lr_fraction * learning_rate` at `decay_end` (0 = `train_steps`),
  and that value after. Steps are training steps: an optimizer applied
  `updates_per_step` times per step (a GAN's D with `--d-steps`) reads its
  update count divided by that."""
  begin, end = check_schedule(cfg, train_steps)
  if cfg.schedule == "constant":
    return learning_rate
  final = learning_rate * cfg.final_lr_fraction
  if cfg.schedule == "linear":
    decay = optax.linear_schedule(learning_rate, final, end - begin)
  else:
    decay = optax.cosine_decay_schedule(learning_rate, end - begin,
                                        alpha=cfg.final_lr_fraction)
  schedule = optax.join_schedules(
      [optax.constant_schedule(learning_rate), decay], [begin])
  if updates_per_step == 1:
    return schedule
  return lambda count: schedule(count // updates_per_step)


def make_optimizer(cfg, learning_rate: float, train_steps: int,
                   updates_per_step: int = 1) -> optax.GradientTransformation:
  """Builds the optimizer described by config section `cfg`.

  Args:
    cfg: the `optimizer` ConfigDict (name, b1, b2, eps, momentum, decay,
      grad_clip, schedule, decay_begin, decay_end, final_lr_fraction).
    learning_rate: peak step size (a GAN gives G and D their own).
    train_steps: the run's `train.steps`, where the decay ends when
      `decay_end` is 0.
    updates_per_step: how often per training step this optimizer is
      applied (a GAN's D: `--d-steps`), so the schedule follows steps.
  """
  check_real(learning_rate, "learning rate", 0.0, lo_open=True)
  check_real(cfg.grad_clip, "optimizer.grad_clip", 0.0)
  tx = OPTIMIZERS.get(cfg.name)(
      cfg, learning_rate_schedule(cfg, learning_rate, train_steps,
                                  updates_per_step))
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx
