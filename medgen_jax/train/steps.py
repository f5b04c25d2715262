"""Pure, jit-able train and eval steps.

A step is `step(state, batch, key) -> (state, metrics)` with no Python side
effects; randomness comes from `jax.random.fold_in(key, state.step)`, so the
same (state, batch, key) always gives the same result, which is what makes a
resumed run equal an uninterrupted one.

GAN step (one generator update after `d_steps` discriminator updates):
  batch["image"]: float32 [d_steps, batch, height, width, channels] in [-1, 1]
  batch["label"]: int32 [d_steps, batch]
Discriminator update k uses real batch k and fresh z; the generator update
uses fresh z and the labels of the last real batch (so conditional samples
follow the data's class mix).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from medgen_jax.objectives import minimax
from medgen_jax.objectives.reduce import mean_over_batch
from medgen_jax.train.state import GANState, TrainState, ema_decay_at, ema_update

Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class GanStepConfig:
  """Static settings of the GAN step (hashable; part of the compiled program)."""

  loss: minimax.GanLoss
  latent_dim: int
  conditional: bool
  gp_weight: float = 10.0
  ema_decay: float = 0.999


def _apply(state: TrainState, params, *args, train: bool = True):
  """Runs a model; returns (output, new batch_stats or {})."""
  variables = state.variables(params)
  if state.batch_stats and train:
    out, mutated = state.apply_fn(variables, *args, train=True,
                                  mutable=["batch_stats"])
    return out, mutated["batch_stats"]
  return state.apply_fn(variables, *args, train=train), state.batch_stats


def make_gan_train_step(cfg: GanStepConfig) -> Callable:
  """Builds `step(state: GANState, batch, key) -> (GANState, metrics)`."""

  def labels_or_none(labels):
    return labels if cfg.conditional else None

  def d_update(state: GANState, real, labels, key):
    k_z, k_eps = jax.random.split(key)
    y = labels_or_none(labels)
    z = jax.random.normal(k_z, (real.shape[0], cfg.latent_dim))
    # Fakes in train mode (batch statistics); G's running stats are updated
    # only by the generator's own step.
    fake, _ = _apply(state.gen, state.gen.params, z, y)
    fake = jax.lax.stop_gradient(fake)

    def loss_fn(d_params):
      real_logits, stats = _apply(state.disc, d_params, real, y)
      d_fake = state.disc.replace(batch_stats=stats)
      fake_logits, stats = _apply(d_fake, d_params, fake, y)
      per_example = cfg.loss.discriminator(real_logits, fake_logits)  # [b]
      aux = {"d_real_logit": jnp.mean(real_logits),
             "d_fake_logit": jnp.mean(fake_logits)}
      if cfg.loss.gradient_penalty:
        eps = jax.random.uniform(k_eps, (real.shape[0],))
        x_hat = minimax.interpolate(real, fake, eps)
        if y is None:
          critic = lambda x: _apply(state.disc, d_params, x, None)[0]
          gp = minimax.gradient_penalty(critic, x_hat)
        else:
          # Pair each interpolate with its own label inside the vmap.
          gp = jax.vmap(lambda xi, yi: minimax.gradient_penalty(
              lambda x: _apply(state.disc, d_params, x, yi[None])[0],
              xi[None])[0])(x_hat, y)
        per_example = per_example + cfg.gp_weight * gp
        aux["gradient_penalty"] = jnp.mean(gp)
      return mean_over_batch(per_example), (stats, aux)

    (d_loss, (stats, aux)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.disc.params)
    disc = state.disc.apply_gradients(grads=grads).replace(batch_stats=stats)
    aux["d_loss"] = d_loss
    aux["d_grad_norm"] = optax.tree.norm(grads)
    return state.replace(disc=disc), aux

  def g_update(state: GANState, labels, key):
    y = labels_or_none(labels)
    z = jax.random.normal(key, (labels.shape[0], cfg.latent_dim))

    def loss_fn(g_params):
      fake, g_stats = _apply(state.gen, g_params, z, y)
      fake_logits, _ = _apply(state.disc, state.disc.params, fake, y)
      return mean_over_batch(cfg.loss.generator(fake_logits)), g_stats

    (g_loss, g_stats), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.gen.params)
    gen = state.gen.apply_gradients(grads=grads).replace(batch_stats=g_stats)
    decay = ema_decay_at(state.gen.step, cfg.ema_decay)
    return state.replace(
        gen=gen,
        ema_params=ema_update(state.ema_params, gen.params, decay),
        ema_batch_stats=ema_update(state.ema_batch_stats, g_stats, decay),
    ), {"g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads)}

  def step(state: GANState, batch: dict[str, jax.Array], key: jax.Array):
    key = jax.random.fold_in(key, state.step)
    d_steps = batch["image"].shape[0]
    keys = jax.random.split(key, d_steps + 1)

    # A Python loop (unrolled at trace time): XLA:CPU runs a scan body
    # several times slower than the same ops unrolled, and d_steps is small.
    per_step = []
    for k in range(d_steps):
      state, m = d_update(state, batch["image"][k], batch["label"][k], keys[k])
      per_step.append(m)
    d_metrics = per_step[-1]
    state, g_metrics = g_update(state, batch["label"][-1], keys[-1])
    return state, {**d_metrics, **g_metrics}

  return step


def make_sample_fn(generator: nn.Module, conditional: bool):
  """Builds `sample(state, z, labels) -> images` using the EMA generator.

  Uses the EMA parameters and EMA running statistics (inference mode), so a
  sample does not depend on the other examples drawn with it.
  """

  def sample(state: GANState, z: jax.Array, labels: jax.Array) -> jax.Array:
    return generator.apply(state.ema_variables(), z,
                           labels if conditional else None, train=False)

  return sample


def make_gan_eval_step(conditional: bool):
  """Builds `eval(state, images, labels) -> mean D logit` (inference mode).

  Comparing D's output on training images with held-out images of the same
  distribution shows discriminator overfitting, the usual failure of GANs
  trained on small medical sets (Karras et al. 2020, "Training Generative
  Adversarial Networks with Limited Data").
  """

  def evaluate(state: GANState, images: jax.Array, labels: jax.Array):
    logits, _ = _apply(state.disc, state.disc.params, images,
                       labels if conditional else None, train=False)
    return jnp.mean(logits)

  return evaluate
