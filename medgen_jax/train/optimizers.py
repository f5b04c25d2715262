"""`make_optimizer`: the one optimizer factory.

Reads an `optimizer` config section (name, learning rate, betas, clipping)
and returns an optax GradientTransformation. Custom pieces (DP-SGD's
per-example clipping and noise, later) are optax transforms chained here.
"""

from __future__ import annotations

import optax

from medgen_jax.errors import ConfigError
from medgen_jax.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", hint="--optimizer")


@OPTIMIZERS.register("adam")
def _adam(cfg, learning_rate):
  return optax.adam(learning_rate, b1=cfg.b1, b2=cfg.b2)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(cfg, learning_rate):
  return optax.rmsprop(learning_rate, decay=cfg.b2, eps=1e-8)


@OPTIMIZERS.register("sgd")
def _sgd(cfg, learning_rate):
  return optax.sgd(learning_rate, momentum=cfg.b1 or None)


def make_optimizer(cfg, learning_rate: float) -> optax.GradientTransformation:
  """Builds the optimizer described by config section `cfg`.

  Args:
    cfg: ConfigDict with `name`, `b1`, `b2`, `grad_clip` (0 = off).
    learning_rate: step size (GANs give G and D their own).
  """
  if not learning_rate > 0:
    raise ConfigError(f"learning rate must be positive, got {learning_rate}")
  if cfg.grad_clip < 0:
    raise ConfigError(f"optimizer.grad_clip must be >= 0, got {cfg.grad_clip}")
  tx = OPTIMIZERS.get(cfg.name)(cfg, learning_rate)
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx
