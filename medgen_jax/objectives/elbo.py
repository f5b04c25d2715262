"""The VAE objective as pure per-example functions.

A Gaussian encoder gives q(z|x) = N(mean, diag exp(log_var)) [batch, latent]
and the prior is p(z) = N(0, I). The decoder enters only through
`log_lik_fn(z) -> log p(x|z)`, a closure over the batch x and the decoder's
parameters (typically `LIKELIHOODS.get(name).log_prob(x, decoder(z))`), so
these functions know nothing about the observation model.

  * `elbo`: Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 10
    (one reparameterised sample, analytic KL), with the KL weight beta of the
    beta-VAE (Higgins et al. 2017).
  * `kl_weight`: the linear KL warm-up ("KL annealing") of Bowman et al.
    2016, "Generating Sentences from a Continuous Space".
  * `iwae_bound`: Burda et al. 2016, "Importance Weighted Autoencoders",
    eq. 8; a tighter bound that tends to log p(x) as K grows.
  * `bits_per_dim`: negative log-likelihood in nats -> bits per dimension.

Every function returns one value per example ([batch]); the train step
reduces them with `objectives.reduce.mean_over_batch` (negated: the loss is
-elbo).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
LogLikFn = Callable[[Array], Array]

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_latent(values: Array, batch_axis: int = 0) -> Array:
  """Sums over every axis after `batch_axis` ([..., batch, *latent] -> [..., batch])."""
  return jnp.sum(values, axis=tuple(range(batch_axis + 1, values.ndim)))


def gaussian_kl(mean: Array, log_var: Array) -> Array:
  """KL(N(mean, diag exp(log_var)) || N(0, I)) per example, in closed form.

  Kingma & Welling 2014, appendix B:
    KL = 1/2 sum_j (exp(log_var_j) + mean_j^2 - 1 - log_var_j),
  with exp(v) - 1 computed as expm1(v) so that the KL of a q close to the
  prior has no cancellation.

  Args:
    mean: [batch, latent] (or [batch, *latent]) posterior means.
    log_var: same shape, posterior log-variances.

  Returns:
    [batch] KL divergences in nats, summed over the latent dimensions.
  """
  return 0.5 * _sum_latent(jnp.expm1(log_var) - log_var + jnp.square(mean))


def _noise(key: Array, mean: Array, num_samples: int | None) -> Array:
  shape = mean.shape if num_samples is None else (num_samples,) + mean.shape
  return jax.random.normal(key, shape, mean.dtype)


def reparameterize(key: Array, mean: Array, log_var: Array,
                   num_samples: int | None = None) -> Array:
  """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2014).

  Args:
    key: PRNG key.
    mean: [batch, latent] posterior means.
    log_var: [batch, latent] posterior log-variances.
    num_samples: None for one sample per example, or K for K samples.

  Returns:
    z: [batch, latent], or [K, batch, latent] when num_samples=K.
  """
  return mean + jnp.exp(0.5 * log_var) * _noise(key, mean, num_samples)


class ElboTerms(NamedTuple):
  """Per-example pieces of the ELBO, each [batch], in nats.

  Attributes:
    elbo: log_lik - beta * kl, the quantity to maximise.
    log_lik: log p(x|z) at the sampled z (the reconstruction term).
    kl: KL(q(z|x) || p(z)) (analytic, or its one-sample estimate).
  """

  elbo: Array
  log_lik: Array
  kl: Array


def _log_weights(log_lik_fn: LogLikFn, mean: Array, log_var: Array,
                 z: Array, eps: Array) -> tuple[Array, Array]:
  """log p(x|z), and log q(z|x) - log p(z), both [..., batch].

  log q uses the standardised noise eps directly ((z - mean)^2 / var =
  eps^2), which is exact and avoids dividing by a tiny variance.
  """
  batch_axis = z.ndim - mean.ndim
  log_lik = log_lik_fn(z)
  log_q = -0.5 * (_LOG_2PI + log_var + jnp.square(eps))  # [..., batch, latent]
  log_p = -0.5 * (_LOG_2PI + jnp.square(z))
  return log_lik, _sum_latent(log_q - log_p, batch_axis)


def elbo(log_lik_fn: LogLikFn, mean: Array, log_var: Array, key: Array,
         beta: float | Array = 1.0, analytic_kl: bool = True) -> ElboTerms:
  """The per-example evidence lower bound with one reparameterised sample.

  Kingma & Welling 2014, eq. 10 (the SGVB estimator B with an analytic KL):
    elbo = log p(x|z) - beta * KL(q(z|x) || p(z)),  z ~ q(z|x);
  beta = 1 is the ELBO, beta != 1 the beta-VAE of Higgins et al. 2017,
  "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
  Framework" (or a warm-up weight from `kl_weight`).

  With analytic_kl=False the KL is replaced by its one-sample estimate
  log q(z|x) - log p(z) at the same z (Kingma & Welling's estimator A). Its
  expectation is the same; with beta = 1 and q equal to the true posterior,
  this form equals log p(x) for every sample (zero variance).

  Args:
    log_lik_fn: z [batch, latent] -> [batch] log p(x|z) for the batch's x.
    mean: [batch, latent] encoder means.
    log_var: [batch, latent] encoder log-variances.
    key: PRNG key for the sample of z.
    beta: KL weight (scalar; may be traced, e.g. from `kl_weight`).
    analytic_kl: closed-form KL (default) or its one-sample estimate.

  Returns:
    ElboTerms(elbo, log_lik, kl), each [batch].
  """
  eps = _noise(key, mean, None)  # [batch, latent]
  z = mean + jnp.exp(0.5 * log_var) * eps
  log_lik, kl_sample = _log_weights(log_lik_fn, mean, log_var, z, eps)
  kl = gaussian_kl(mean, log_var) if analytic_kl else kl_sample
  return ElboTerms(elbo=log_lik - beta * kl, log_lik=log_lik, kl=kl)


def kl_weight(step: int | Array, warmup_steps: int, beta: float = 1.0) -> Array:
  """Linear KL warm-up: beta * min(step / warmup_steps, 1).

  Bowman et al. 2016, section 3.1 ("KL cost annealing"): the KL weight grows
  from 0 at step 0 to beta at `warmup_steps` and stays there, so the decoder
  learns to use z before the KL term pulls q to the prior.

  Args:
    step: current step (Python int or traced integer scalar).
    warmup_steps: length of the ramp (static); 0 means no warm-up.
    beta: final weight.

  Returns:
    Scalar float32 weight.
  """
  if warmup_steps < 0:
    raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
  beta = jnp.asarray(beta, jnp.float32)
  if warmup_steps == 0:
    return beta
  ramp = jnp.asarray(step, jnp.float32) / warmup_steps
  return beta * jnp.clip(ramp, 0.0, 1.0)


def iwae_bound(log_lik_fn: LogLikFn, mean: Array, log_var: Array, key: Array,
               num_samples: int) -> Array:
  """The importance-weighted bound with K samples, per example.

  Burda et al. 2016, "Importance Weighted Autoencoders", eq. 8:
    L_K = log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),
  computed as logsumexp over k of the log-weights minus log K. E[L_K] is
  non-decreasing in K and tends to log p(x) (their Theorem 1); L_1 is the
  one-sample ELBO estimate with the sampled (not analytic) KL.

  Args:
    log_lik_fn: z [K, batch, latent] -> [K, batch] log p(x|z).
    mean: [batch, latent] encoder means.
    log_var: [batch, latent] encoder log-variances.
    key: PRNG key.
    num_samples: K >= 1.

  Returns:
    [batch] bounds in nats.
  """
  if num_samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}")
  eps = _noise(key, mean, num_samples)  # [K, batch, latent]
  z = mean + jnp.exp(0.5 * log_var) * eps
  log_lik, log_q_minus_log_p = _log_weights(log_lik_fn, mean, log_var, z, eps)
  log_w = log_lik - log_q_minus_log_p  # [K, batch]
  return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)


def bits_per_dim(nll_nats: Array, num_dims: int) -> Array:
  """nll / (num_dims * ln 2): nats per example -> bits per dimension.

  The image-likelihood unit of e.g. Salimans et al. 2017 and Ho et al. 2020.

  Args:
    nll_nats: [batch] (or any shape) negative log-likelihoods in nats.
    num_dims: dimensions per example (e.g. H * W * C).

  Returns:
    Same shape as nll_nats, in bits per dimension.
  """
  return jnp.asarray(nll_nats) / (num_dims * math.log(2.0))
