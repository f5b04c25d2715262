"""TimeGAN's objectives (Yoon et al. 2019), one value per example.

With x the real windows, h = embedder(x), e = generator(z), h_hat =
supervisor(e), x_hat = recovery(h_hat) and D the latent discriminator
(models/timegan.py), the paper's losses are:

  reconstruction  R = MSE(x, recovery(h))
  supervised      S = MSE(h_{t+1}, supervisor(h)_t)       (latent next step)
  discriminator   BCE(D(h), 1) + BCE(D(h_hat), 0) + gamma BCE(D(e), 0)
  generator       BCE(D(h_hat), 1) + gamma BCE(D(e), 1)
                  + w_S sqrt(S) + w_V V                   (w_S = w_V = 100)
  autoencoder     10 sqrt(R)              (phase 1: the autoencoder alone)
                  10 sqrt(R) + 0.1 S      (joint training)

V, the moment loss, compares the batch's mean and standard deviation of
x_hat and x at every (step, channel). The paper takes the square roots of
batch means; here the root is taken of each example's own mean (the mean
over its unmasked steps and features), so every term but V is a per-example
loss that DP-SGD's per-example clipping can use. V compares two batches and
is the one batch-coupled term: `moment_gap` returns a scalar that the
family adds to every example's loss (its weight 0 makes the generator's loss
purely per example). BCE terms are per step, averaged over each example's
unmasked steps, with the log-probabilities of objectives/minimax.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from medgen_jax.objectives import minimax
from medgen_jax.objectives.sequence import (masked_mean_over_time,
                                            next_step_squared_error)

Array = jax.Array
ROOT_EPS = 1e-10     # sqrt(v + eps): a finite gradient at a perfect fit
STD_EPS = 1e-6       # the paper's sqrt(var + 1e-6) in the moment loss

__all__ = ["reconstruction_error", "latent_next_step_error", "root",
           "real_loss", "fake_loss", "generator_adversarial", "moment_gap"]


def reconstruction_error(x_rec: Array, x: Array, mask: Array) -> Array:
  """Per example: the mean over unmasked steps and channels of
  (x_rec - x)^2; x_rec, x [b, t, C], mask [b, t] -> [b]."""
  err = jnp.square(x_rec - jnp.where(mask[..., None], x, 0.0)).mean(-1)
  return masked_mean_over_time(err, mask)


def latent_next_step_error(pred: Array, h: Array, mask: Array) -> Array:
  """S per example: the mean over valid pairs (t, t+1) of
  ||pred_t - h_{t+1}||^2 / H (pred = supervisor(h))."""
  return next_step_squared_error(pred, h, mask)


def root(values: Array) -> Array:
  """sqrt(values + ROOT_EPS), per example."""
  return jnp.sqrt(values + ROOT_EPS)


def real_loss(logits: Array, mask: Array) -> Array:
  """BCE(D, 1) per step, averaged over each example's unmasked steps: [b]."""
  return masked_mean_over_time(
      minimax.nonsaturating_generator_loss(logits), mask)


def fake_loss(logits: Array, mask: Array) -> Array:
  """BCE(D, 0) per step (-log(1 - D) = softplus(logit)), averaged: [b]."""
  return masked_mean_over_time(-minimax.minimax_generator_loss(logits), mask)


def generator_adversarial(fake_logits: Array, fake_e_logits: Array,
                          mask: Array, gamma: float) -> Array:
  """BCE(D(h_hat), 1) + gamma BCE(D(e), 1) per example: [b]."""
  return real_loss(fake_logits, mask) + gamma * real_loss(fake_e_logits, mask)


def moment_gap(fake: Array, real: Array, mask: Array) -> Array:
  """V: the mean over (step, channel) of |std_fake - std_real| +
  |mean_fake - mean_real|, the moments taken over the batch's unmasked
  entries of each step (population variance, as tf.nn.moments). fake and
  real [b, t, C] share mask [b, t]; steps that no example observes are
  left out. A scalar (it compares batches, not examples)."""
  m = mask[..., None].astype(fake.dtype)                      # [b, t, 1]
  n = m.sum(0)                                                # [t, 1]
  seen = n > 0

  def moments(x):
    x = jnp.where(mask[..., None], x, 0.0)
    mean = (m * x).sum(0) / jnp.maximum(n, 1.0)               # [t, C]
    var = (m * jnp.square(x - mean)).sum(0) / jnp.maximum(n, 1.0)
    return mean, jnp.sqrt(var + STD_EPS)

  (mf, sf), (mr, sr) = moments(fake), moments(real)
  gap = jnp.abs(sf - sr) + jnp.abs(mf - mr)                   # [t, C]
  weight = jnp.broadcast_to(seen, gap.shape).astype(gap.dtype)
  return (gap * weight).sum() / jnp.maximum(weight.sum(), 1.0)
