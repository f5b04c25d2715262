"""The VAE's train step and held-out scores, as pure functions.

Train: one update of the per-example negative ELBO,
  loss_i = -(E_q[log p(x_i|z)] - w(step) * KL(q(z|x_i) || p(z))),
with w(step) the beta weight after its linear warm-up, through
train/update.py (so the gradient seam is every family's). Randomness:
fold_in(key, step).

Denoising (Im et al. 2017, "Denoising Criterion for Variational
Auto-Encoding Framework", eq. 7 with one corruption per example and step):
with `denoise` set, the encoder sees x~ ~ p(x~|x), a corrupted copy of x
drawn inside the step, and the loss is -(log p(x|z) - w KL(q(z|x~) || p(z))),
z ~ q(z|x~): the likelihood scores the CLEAN x. Held-out scores never corrupt.

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


DENOISE_KINDS = ("gaussian", "saltpepper")
# fold_in tag of the corruption's key: the ELBO's own sample keeps the loss
# key, so a zero-noise corruption gives exactly the plain loss.
_CORRUPTION_STREAM = 0x6E6F


def parse_denoise(spec: str) -> tuple[str, float]:
  """"" | "gaussian:SIGMA" | "saltpepper:P" -> (kind, level); ("", 0.0) = off.

  Raises:
    ValueError: a malformed spec, with a one-line reason (the task turns it
      into a ConfigError naming vae.denoise / --denoise).
  """
  if not isinstance(spec, str):
    raise ValueError(f"expected a string such as gaussian:0.2, got {spec!r}")
  spec = spec.strip()
  if not spec:
    return "", 0.0
  kind, sep, value = spec.partition(":")
  kind = kind.strip().lower()
  if kind not in DENOISE_KINDS or not sep:
    raise ValueError(f"{spec!r}: expected gaussian:SIGMA (e.g. gaussian:0.2) "
                     "or saltpepper:P (e.g. saltpepper:0.05), or empty for "
                     "no denoising")
  try:
    level = float(value)
  except ValueError:
    raise ValueError(f"{spec!r}: {value.strip()!r} is not a number; expected "
                     f"{kind}:{'SIGMA' if kind == 'gaussian' else 'P'}"
                     ) from None
  if kind == "gaussian" and not 0.0 <= level < float("inf"):
    raise ValueError(f"{spec!r}: the noise SIGMA must be a finite number >= 0")
  if kind == "saltpepper" and not 0.0 <= level <= 1.0:
    raise ValueError(f"{spec!r}: the corruption probability P must be in "
                     "[0, 1]")
  return kind, level


def corrupt(key: jax.Array, x: jax.Array, kind: str, level: float,
            low: float | None = None, high: float | None = None) -> jax.Array:
  """A corrupted copy x~ ~ p(x~|x), independently per entry (so per example).

  Args:
    key: PRNG key.
    x: [b, *data_shape] clean model-space data.
    kind: "gaussian" (x + level * N(0, 1)) or "saltpepper" (each entry with
      probability `level` set to `low` or `high`, with equal chance);
      "" returns x.
    level: SIGMA (gaussian) or P (saltpepper).
    low, high: the data's range; gaussian output is clipped to it (None = no
      bound); saltpepper needs both.

  Returns:
    [b, *data_shape] corrupted data, same dtype.
  """
  if not kind:
    return x
  if kind == "gaussian":
    noisy = x + level * jax.random.normal(key, x.shape, x.dtype)
    if low is not None or high is not None:
      noisy = jnp.clip(noisy, low, high)
    return noisy
  if kind == "saltpepper":
    if low is None or high is None:
      raise ValueError("saltpepper corruption needs a bounded data range")
    u = jax.random.uniform(key, x.shape, x.dtype)  # [b, *data_shape]
    return jnp.where(u < 0.5 * level, jnp.asarray(low, x.dtype),
                     jnp.where(u < level, jnp.asarray(high, x.dtype), x))
  raise ValueError(f"unknown corruption {kind!r}; expected one of "
                   f"{DENOISE_KINDS}")


@dataclasses.dataclass(frozen=True)
class VaeStepConfig:
  """Static settings of the VAE step (hashable).

  Attributes:
    denoise: corruption kind of the denoising criterion ("" = off,
      "gaussian", "saltpepper") and denoise_level its SIGMA or P.
    data_range: (low, high) of the model's x, None where unbounded (images:
      (-1, 1), or (0, 1) for Bernoulli; counts (0, None)).
  """

  model: VAE
  likelihood: Likelihood
  beta: float = 1.0
  kl_warmup_steps: int = 0
  conditional: bool = False
  denoise: str = ""
  denoise_level: float = 0.0
  data_range: tuple[float | None, float | None] = (None, None)


def _parts(cfg: VaeStepConfig, params, batch, encoder_x=None):
  """encode(x) (or encode(encoder_x)) and a log p(x|z) function for this
  batch; log p always scores the clean batch["x"]."""
  cond = batch["cond"] if cfg.conditional else None
  variables = {"params": params}
  x_in = batch["x"] if encoder_x is None else encoder_x
  mean, log_var = cfg.model.apply(variables, x_in, cond, method=VAE.encode)

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
      x_in = None
      if cfg.denoise:  # corrupt the encoder's input only, per example
        x_in = corrupt(jax.random.fold_in(k, _CORRUPTION_STREAM), b["x"],
                       cfg.denoise, cfg.denoise_level, *cfg.data_range)
      mean, log_var, log_lik = _parts(cfg, params, b, x_in)
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
