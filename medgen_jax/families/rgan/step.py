"""The recurrent GAN's train step on the generic update.

One step = `d_steps` discriminator updates (each on its own real batch), one
update of the next-step supervisor on the last real batch (when the
supervised loss is on), then one generator update and the EMA of the
generator. Every update is `train.update.update` on a per-example loss.

Per-step losses (RCGAN, Esteban et al. 2017): the discriminator gives a
logit per time step; the losses of objectives/minimax.py are applied per
step and averaged over each example's unmasked steps. Generated windows take
the mask pattern of the real batch they are compared with, and both real and
generated values are zero at masked steps, so a gap never tells real from
fake.

Supervised loss (an option): TimeGAN (Yoon et al. 2019) trains a supervisor
to predict the next latent step of real sequences and makes the generator's
sequences consistent with it. Without TimeGAN's embedding network this is
done in data space: a `NextStep` model is fitted on real windows (squared
next-step error), and the generator adds `supervised` times that model's
next-step error on its own windows, so generated step-to-step transitions
follow the dynamics learned from real data.

Batch (numpy, from RganTask.make_batch):
  x: float32 [d_steps, batch, time, channels]
  mask: bool [d_steps, batch, time]
  label: int32 [d_steps, batch]
  covariates: float32 [d_steps, batch, S] (runs with static covariates)
"""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import optax

from medgen_jax.models.recurrent import (NextStep, SeriesDiscriminator,
                                         SeriesGenerator)
from medgen_jax.objectives import minimax
from medgen_jax.objectives import sequence as seq
from medgen_jax.train.state import TrainState, ema_decay_at
from medgen_jax.train.update import GradientFn, LossOutput, update


class RganState(flax.struct.PyTreeNode):
  """Generator, discriminator, next-step supervisor and the generator's EMA.

  Attributes:
    gen, disc, sup: TrainStates; `gen.step` counts steps and is the run's.
    ema_params: EMA of gen.params, used for sampling.
  """

  gen: TrainState
  disc: TrainState
  sup: TrainState
  ema_params: object

  @property
  def step(self) -> jax.Array:
    return self.gen.step


@dataclasses.dataclass(frozen=True)
class RganStepConfig:
  """Static settings (hashable; part of the compiled program)."""

  generator: SeriesGenerator
  discriminator: SeriesDiscriminator
  supervisor: NextStep
  loss: minimax.GanLoss
  noise_dim: int
  d_steps: int
  conditional: bool
  supervised: float = 0.0
  ema_decay: float = 0.999
  static_noise_dim: int = 0


def noise(cfg: RganStepConfig, key, batch: int, time: int) -> jax.Array:
  """The generator's input [batch, time, noise_dim + static_noise_dim].

  The first `noise_dim` features are drawn afresh at every step (RCGAN); the
  last `static_noise_dim` are drawn once per series and repeated at every
  step. A series whose variation is set once (a frequency, a phase, a
  patient's baseline) is then a smooth function of its static noise, and the
  generator need not learn to ignore fresh noise at every step, which
  otherwise shows as step-to-step jitter.
  """
  z = jax.random.normal(key, (batch, time, cfg.noise_dim))
  if not cfg.static_noise_dim:
    return z
  static = jax.random.normal(jax.random.fold_in(key, 1),
                             (batch, 1, cfg.static_noise_dim))
  return jnp.concatenate(
      [z, jnp.broadcast_to(static, (batch, time, cfg.static_noise_dim))], -1)


def generate(cfg: RganStepConfig, params, z, label,
             covariates=None) -> jax.Array:
  return cfg.generator.apply({"params": params}, z,
                             label if cfg.conditional else None, covariates)


def _per_step(fn, *logits):
  """Applies a per-example GAN loss to each step: logits [b, t] -> [b, t]."""
  b, t = logits[0].shape
  return fn(*(l.reshape(b * t) for l in logits)).reshape(b, t)


def make_train_step(cfg: RganStepConfig, gradient_fn: GradientFn):
  d_apply = cfg.discriminator.apply

  def d_loss_fn(params, batch, key) -> LossOutput:
    del key
    label = batch["label"] if cfg.conditional else None
    cov = batch.get("covariates")
    real = d_apply({"params": params}, batch["x"], label, cov)
    fake = d_apply({"params": params}, batch["fake"], label, cov)
    per_step = _per_step(cfg.loss.discriminator, real, fake)
    losses = seq.masked_mean_over_time(per_step, batch["mask"])
    return LossOutput(losses, {
        "d_real": seq.masked_mean_over_time(real, batch["mask"]).mean(),
        "d_fake": seq.masked_mean_over_time(fake, batch["mask"]).mean()})

  def sup_loss_fn(params, batch, key) -> LossOutput:
    del key
    pred = cfg.supervisor.apply({"params": params}, batch["x"])
    return LossOutput(seq.next_step_squared_error(pred, batch["x"],
                                                  batch["mask"]))

  def g_loss_fn(d_params, s_params):
    """The generator's per-example loss against fixed D and supervisor."""

    def loss_fn(params, batch, key) -> LossOutput:
      mask, label, cov = batch["mask"], batch["label"], batch.get("covariates")
      b, t = mask.shape
      x = generate(cfg, params, noise(cfg, key, b, t), label, cov)
      x = jnp.where(mask[..., None], x, 0.0)
      logits = d_apply({"params": d_params}, x,
                       label if cfg.conditional else None, cov)
      losses = seq.masked_mean_over_time(
          _per_step(cfg.loss.generator, logits), mask)
      metrics = {}
      if cfg.supervised:
        pred = cfg.supervisor.apply({"params": s_params}, x)
        sup = seq.next_step_squared_error(pred, x, mask)
        losses = losses + cfg.supervised * sup
        metrics["g_supervised"] = sup.mean()
      return LossOutput(losses, metrics)

    return loss_fn

  def train_step(state: RganState, batch, key):
    key = jax.random.fold_in(key, state.step)
    disc, metrics = state.disc, {}
    for k in range(cfg.d_steps):
      k_fake, k_d = jax.random.split(jax.random.fold_in(key, k))
      real = {key_: v[k] for key_, v in batch.items()}
      mask, label = real["mask"], real["label"]
      b, t = mask.shape
      fake = generate(cfg, state.gen.params, noise(cfg, k_fake, b, t), label,
                      real.get("covariates"))
      fake = jnp.where(mask[..., None], jax.lax.stop_gradient(fake), 0.0)
      d_batch = dict(real, fake=fake)
      disc, d_info = update(disc, d_loss_fn, d_batch, k_d,
                            gradient_fn=gradient_fn)
    metrics.update(d_loss=d_info.loss, **d_info.metrics)
    last = {key_: v[-1] for key_, v in batch.items()}
    sup = state.sup
    if cfg.supervised:
      sup, s_info = update(sup, sup_loss_fn, last,
                           jax.random.fold_in(key, 1000 + cfg.d_steps),
                           gradient_fn=gradient_fn)
      metrics["s_loss"] = s_info.loss
    gen, g_info = update(state.gen, g_loss_fn(disc.params, sup.params), last,
                         jax.random.fold_in(key, 2000 + cfg.d_steps),
                         gradient_fn=gradient_fn)
    metrics.update(g_loss=g_info.loss, loss=g_info.loss, **g_info.metrics)
    decay = ema_decay_at(state.step, cfg.ema_decay)
    ema = optax.incremental_update(gen.params, state.ema_params, 1.0 - decay)
    return state.replace(gen=gen, disc=disc, sup=sup, ema_params=ema), metrics

  return train_step
