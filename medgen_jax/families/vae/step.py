"""The VAE's train step and held-out scores, as pure functions.

Train: one update of the per-example negative ELBO,
  loss_i = -(E_q[log p(x_i|z)] - w(step) * KL(q(z|x_i) || p(z))),
with w(step) the beta weight after its linear warm-up, through
train/update.py (so the gradient seam is every family's). Randomness:
fold_in(key, step).

Batch (numpy, from VaeTask.make_batch):
  x:            float32 [b, *data_shape] (images in [-1, 1], or [0, 1] for
                Bernoulli; expression as read)
  cond:         int32 [b] condition class (zeros when unconditional)
  library_size: float32 [b] total counts (ones unless count data)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from medgen_jax.models.vae import VAE
from medgen_jax.objectives import elbo as elbo_lib
from medgen_jax.objectives.likelihoods import Likelihood
from medgen_jax.train.update import GradientFn, LossOutput, update


@dataclasses.dataclass(frozen=True)
class VaeStepConfig:
  """Static settings of the VAE step (hashable)."""

  model: VAE
  likelihood: Likelihood
  beta: float = 1.0
  kl_warmup_steps: int = 0
  conditional: bool = False


def _parts(cfg: VaeStepConfig, params, batch):
  """encode(x) and a log p(x|z) function for this batch."""
  cond = batch["cond"] if cfg.conditional else None
  variables = {"params": params}
  mean, log_var = cfg.model.apply(variables, batch["x"], cond,
                                  method=VAE.encode)

  def log_lik(z):  # z [..., b, latent] -> [..., b]
    out = cfg.model.apply(variables, z, cond, batch["library_size"],
                          method=VAE.decode)
    x = jnp.broadcast_to(batch["x"], z.shape[:-2] + batch["x"].shape)
    flat = lambda a: a.reshape((-1,) + batch["x"].shape[1:])
    lp = cfg.likelihood.log_prob(flat(x), {k: flat(v) for k, v in out.items()})
    return lp.reshape(z.shape[:-1])

  return mean, log_var, log_lik


def make_train_step(cfg: VaeStepConfig, gradient_fn: GradientFn):
  """Builds `step(state, batch, key) -> (state, metrics)`."""

  def step(state, batch, key):
    key = jax.random.fold_in(key, state.step)
    weight = elbo_lib.kl_weight(state.step, cfg.kl_warmup_steps, cfg.beta)

    def loss_fn(params, b, k) -> LossOutput:
      mean, log_var, log_lik = _parts(cfg, params, b)
      terms = elbo_lib.elbo(log_lik, mean, log_var, k, beta=1.0)
      losses = -(terms.log_lik - weight * terms.kl)  # [b]
      return LossOutput(losses, {"elbo": jnp.mean(terms.elbo),
                                 "log_lik": jnp.mean(terms.log_lik),
                                 "kl": jnp.mean(terms.kl)})

    state, info = update(state, loss_fn, batch, key, gradient_fn=gradient_fn)
    return state, {"loss": info.loss, "grad_norm": info.grad_norm,
                   "kl_weight": weight, **info.metrics}

  return step


def make_scores(cfg: VaeStepConfig, num_samples: int):
  """`scores(params, batch, key) -> (elbo [b], iwae [b])` in nats."""

  def scores(params, batch, key):
    k_elbo, k_iwae = jax.random.split(key)
    mean, log_var, log_lik = _parts(cfg, params, batch)
    terms = elbo_lib.elbo(log_lik, mean, log_var, k_elbo, beta=1.0)
    iwae = elbo_lib.iwae_bound(log_lik, mean, log_var, k_iwae, num_samples)
    return terms.elbo, iwae

  return scores


def make_reconstruct(cfg: VaeStepConfig):
  """`reconstruct(params, batch) -> E[x | z = posterior mean]`."""

  def reconstruct(params, batch):
    cond = batch["cond"] if cfg.conditional else None
    variables = {"params": params}
    mean, _ = cfg.model.apply(variables, batch["x"], cond, method=VAE.encode)
    out = cfg.model.apply(variables, mean, cond, batch["library_size"],
                          method=VAE.decode)
    return cfg.likelihood.mean(out), mean

  return reconstruct


def make_decode(cfg: VaeStepConfig):
  """`decode(params, z, cond, library_size, key) -> (mean, sample)`."""

  def decode(params, z, cond, library_size, key):
    out = cfg.model.apply({"params": params}, z,
                          cond if cfg.conditional else None, library_size,
                          method=VAE.decode)
    return cfg.likelihood.mean(out), cfg.likelihood.sample(key, out)

  return decode
