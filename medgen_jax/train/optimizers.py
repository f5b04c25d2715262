"""`make_optimizer(config.optimizer, learning_rate)`: the one optimizer factory.

Each optimizer reads only its own, documented fields of the `optimizer`
section (configs/base.py):
  adam:    b1, b2, eps                     (Kingma & Ba 2015)
  rmsprop: decay, eps                      (Tieleman & Hinton 2012)
  sgd:     momentum (0 = plain SGD)
and every one honours `grad_clip` (global-norm clipping, 0 = off). New
optimizers register a factory `fn(cfg, learning_rate)` in OPTIMIZERS.
"""

from __future__ import annotations

import optax

from medgen_jax.configs.base import check_real
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


def make_optimizer(cfg, learning_rate: float) -> optax.GradientTransformation:
  """Builds the optimizer described by config section `cfg`.

  Args:
    cfg: the `optimizer` ConfigDict (name, b1, b2, eps, momentum, decay,
      grad_clip).
    learning_rate: step size (a GAN gives G and D their own).
  """
  check_real(learning_rate, "learning rate", 0.0, lo_open=True)
  check_real(cfg.grad_clip, "optimizer.grad_clip", 0.0)
  tx = OPTIMIZERS.get(cfg.name)(cfg, learning_rate)
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx
