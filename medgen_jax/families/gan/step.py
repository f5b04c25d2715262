"""The GAN train step, built on the generic update of train/update.py.

One step = `d_steps` discriminator updates, each on its own real batch, then
one generator update and the EMA of the generator. Each update is
`train.update.update` on a per-example loss, so the gradient seam (mean
today, DP-SGD later) is the same as every other family's.

Batch (numpy, from `GanTask.make_batch`):
  image: float32 [d_steps, batch, height, width, channels] in [-1, 1]
  label: int32 [d_steps, batch]
Discriminator update k uses real batch k and fresh z; the generator update
uses fresh z and the labels of the last real batch (so conditional samples
follow the data's class mix). Randomness: fold_in(key, step).

With `augment` ops (families/gan/augment.py), D sees real and generated
images through the same random differentiable transforms in both updates
(DiffAugment); with `ada_target` > 0 each op fires with probability
`state.augment_p`, adapted after every D update (ADA).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from medgen_jax.families.gan import augment as aug
from medgen_jax.objectives import minimax
from medgen_jax.train.state import GANState, TrainState, ema_decay_at
from medgen_jax.train.update import (GradientFn, LossOutput, mean_gradient,
                                     update)


@dataclasses.dataclass(frozen=True)
class GanStepConfig:
  """Static settings of the GAN step (hashable; part of the compiled program)."""

  loss: minimax.GanLoss
  latent_dim: int
  conditional: bool
  gp_weight: float = 10.0
  r1_weight: float = 0.0          # gamma of D's R1 penalty (gamma / 2 * R1)
  ema_decay: float = 0.999
  augment: tuple[str, ...] = ()   # DiffAugment ops for D's inputs
  ada_target: float = 0.0         # > 0: ADA adapts p toward this r_t
  ada_kimg: float = 100.0         # thousands of images for p to move by 1
  joint_batch: bool = False       # D sees [real; fake] as one batch (shared BN)

  @property
  def adaptive(self) -> bool:
    return bool(self.augment) and self.ada_target > 0


def apply_model(state: TrainState, params, *args, train: bool = True):
  """Runs a model; returns (output, new batch_stats or the current ones)."""
  variables = state.variables(params)
  if state.batch_stats and train:
    out, mutated = state.apply_fn(variables, *args, train=True,
                                  mutable=["batch_stats"])
    return out, mutated["batch_stats"]
  return state.apply_fn(variables, *args, train=train), state.batch_stats


def _joint(a: jax.Array | None, b: jax.Array | None):
  return None if a is None else jnp.concatenate([a, b], axis=0)


def discriminate(cfg: GanStepConfig, disc: TrainState, params, real, fake,
                 y_real, y_fake):
  """D's logits on real and on generated images: (real, fake, batch_stats).

  Separate batches (DCGAN's habit): batch norm in D normalises the real
  batch with real statistics and the generated batch with its own, so each
  batch's feature means and variances are removed before D judges it. With
  `cfg.joint_batch` D sees [real; fake] as one batch: both are normalised
  with the same statistics, and a generator whose batch is shifted from the
  real one (e.g. too few images of a class) stays visible to D.
  """
  if cfg.joint_batch:
    logits, stats = apply_model(disc, params, _joint(real, fake),
                                _joint(y_real, y_fake))
    return logits[:real.shape[0]], logits[real.shape[0]:], stats
  real_logits, stats = apply_model(disc, params, real, y_real)
  fake_logits, stats = apply_model(disc.replace(batch_stats=stats), params,
                                   fake, y_fake)
  return real_logits, fake_logits, stats


def discriminator_loss_fn(cfg: GanStepConfig, disc: TrainState):
  """Per-example loss of D's params on {real, fake, label} (+ GP key)."""

  def loss_fn(d_params, batch, key) -> LossOutput:
    real, fake = batch["real"], batch["fake"]  # [b, h, w, c] each
    y = batch["label"] if cfg.conditional else None
    real_logits, fake_logits, stats = discriminate(cfg, disc, d_params,
                                                   real, fake, y, y)
    losses = cfg.loss.discriminator(real_logits, fake_logits)  # [b]
    metrics = {"d_real_logit": jnp.mean(real_logits),
               "d_fake_logit": jnp.mean(fake_logits)}
    if cfg.adaptive:  # ADA's overfitting heuristic r_t
      metrics["d_real_sign"] = jnp.mean(jnp.sign(real_logits))
    if cfg.r1_weight > 0:
      r1 = minimax.r1_penalty(
          lambda x: discriminate(cfg, disc, d_params, x, fake, y, y)[0],
          real)
      losses = losses + 0.5 * cfg.r1_weight * r1
      metrics["r1_penalty"] = jnp.mean(r1)
    if cfg.loss.gradient_penalty:
      eps = jax.random.uniform(key, (real.shape[0],))
      x_hat = minimax.interpolate(real, fake, eps)
      if y is None:
        critic = lambda x: apply_model(disc, d_params, x, None)[0]
        gp = minimax.gradient_penalty(critic, x_hat)
      else:
        # Pair each interpolate with its own label inside the vmap.
        gp = jax.vmap(lambda xi, yi: minimax.gradient_penalty(
            lambda x: apply_model(disc, d_params, x, yi[None])[0],
            xi[None])[0])(x_hat, y)
      losses = losses + cfg.gp_weight * gp
      metrics["gradient_penalty"] = jnp.mean(gp)
    return LossOutput(losses, metrics, stats)

  return loss_fn


def generator_loss_fn(cfg: GanStepConfig, gen: TrainState, disc: TrainState,
                      augment_p=1.0):
  """Per-example loss of G's params on {z, label} (+ real: the real batch,
  of the same labels, that D normalises the fakes with when
  `cfg.joint_batch`)."""

  def loss_fn(g_params, batch, key) -> LossOutput:
    y = batch["label"] if cfg.conditional else None
    fake, g_stats = apply_model(gen, g_params, batch["z"], y)
    # Differentiable, so G learns through the transforms D sees.
    fake = aug.augment(fake, key, cfg.augment, augment_p)
    if cfg.joint_batch:
      real = aug.augment(batch["real"], jax.random.fold_in(key, 1),
                         cfg.augment, augment_p)
      _, fake_logits, _ = discriminate(cfg, disc, disc.params, real, fake,
                                       y, y)
    else:
      fake_logits, _ = apply_model(disc, disc.params, fake, y)
    return LossOutput(cfg.loss.generator(fake_logits), {}, g_stats)

  return loss_fn


def make_gan_train_step(cfg: GanStepConfig,
                        gradient_fn: GradientFn = mean_gradient) -> Callable:
  """Builds `step(state: GANState, batch, key) -> (GANState, metrics)`."""

  def probability(state: GANState):
    return state.augment_p if cfg.adaptive else 1.0

  def d_update(state: GANState, real, labels, key):
    k_z, k_eps, k_real, k_fake = jax.random.split(key, 4)
    z = jax.random.normal(k_z, (real.shape[0], cfg.latent_dim))
    # Fakes in train mode (batch statistics); G's running stats are updated
    # only by the generator's own step.
    fake, _ = apply_model(state.gen, state.gen.params, z,
                          labels if cfg.conditional else None)
    p = probability(state)
    batch = {"real": aug.augment(real, k_real, cfg.augment, p),
             "fake": aug.augment(jax.lax.stop_gradient(fake), k_fake,
                                 cfg.augment, p),
             "label": labels}
    disc, info = update(state.disc, discriminator_loss_fn(cfg, state.disc),
                        batch, k_eps, gradient_fn=gradient_fn)
    metrics = {**info.metrics, "d_loss": info.loss,
               "d_grad_norm": info.grad_norm}
    if cfg.adaptive:
      r_t = info.metrics["d_real_sign"]
      new_p = jnp.clip(p + jnp.sign(r_t - cfg.ada_target)
                       * real.shape[0] / (cfg.ada_kimg * 1000.0), 0.0, 1.0)
      state = state.replace(augment_p=new_p)
      metrics["augment_p"] = new_p
    return state.replace(disc=disc), metrics

  def g_update(state: GANState, real, labels, key):
    z = jax.random.normal(key, (labels.shape[0], cfg.latent_dim))
    batch = {"z": z, "label": labels}
    if cfg.joint_batch:  # only then does G's step see real images
      batch["real"] = real  # G's fakes take this batch's labels
    gen, info = update(state.gen,
                       generator_loss_fn(cfg, state.gen, state.disc,
                                         probability(state)),
                       batch, key,
                       gradient_fn=gradient_fn)
    decay = ema_decay_at(state.gen.step, cfg.ema_decay)
    # optax's Polyak average t*a + (1-t)*b with t = decay, a = the average:
    # decay * ema + (1 - decay) * params, the same float operations as the
    # GANs trained before this step moved onto train/update.py.
    ema = lambda avg, new: optax.incremental_update(avg, new, decay)
    return state.replace(
        gen=gen,
        ema_params=ema(state.ema_params, gen.params),
        ema_batch_stats=ema(state.ema_batch_stats, gen.batch_stats),
    ), {"g_loss": info.loss, "g_grad_norm": info.grad_norm}

  def step(state: GANState, batch, key: jax.Array):
    key = jax.random.fold_in(key, state.step)
    d_steps = batch["image"].shape[0]
    keys = jax.random.split(key, d_steps + 1)
    # A Python loop (unrolled at trace time): XLA:CPU runs a scan body
    # several times slower than the same ops unrolled, and d_steps is small.
    d_metrics = {}
    for k in range(d_steps):
      state, d_metrics = d_update(state, batch["image"][k], batch["label"][k],
                                  keys[k])
    state, g_metrics = g_update(state, batch["image"][-1], batch["label"][-1],
                                keys[-1])
    return state, {**d_metrics, **g_metrics}

  return step


def make_sample_fn(generator: nn.Module, conditional: bool):
  """`sample(state, z, labels) -> images` with the EMA generator.

  Inference mode (EMA parameters and EMA running statistics), so a sample
  does not depend on the other examples drawn with it.
  """

  def sample(state: GANState, z: jax.Array, labels: jax.Array) -> jax.Array:
    return generator.apply(state.ema_variables(), z,
                           labels if conditional else None, train=False)

  return sample


def make_discriminator_mean(conditional: bool):
  """`d_mean(state, images, labels) -> mean D logit` (inference mode).

  Comparing D's output on training images with held-out images of the same
  distribution shows discriminator overfitting, the usual failure of GANs
  trained on small medical sets (Karras et al. 2020, "Training Generative
  Adversarial Networks with Limited Data").
  """

  def d_mean(state: GANState, images: jax.Array, labels: jax.Array):
    logits, _ = apply_model(state.disc, state.disc.params, images,
                            labels if conditional else None, train=False)
    return jnp.mean(logits)

  return d_mean
