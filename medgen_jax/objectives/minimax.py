"""GAN objectives as pure per-example functions of discriminator logits.

Every function returns one value per example ([batch]); the train step
reduces them with `objectives.reduce.mean_over_batch`. Logits are the
discriminator's pre-sigmoid outputs, so D(x) = sigmoid(logit) and the
log-probabilities are computed stably with softplus:
  log D(x)       = -softplus(-logit)
  log(1 - D(x))  = -softplus(logit)

Losses (discriminator side / generator side):
  * minimax: Goodfellow et al. 2014, "Generative Adversarial Nets". D
    maximises V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]; G minimises
    log(1 - D(G(z))) (the saturating form).
  * nonsaturating: same D; G minimises -log D(G(z)) (Goodfellow et al. 2014,
    section 3), which has strong gradients early in training.
  * wgan-gp: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs".
    Critic minimises D(G(z)) - D(x) + lambda * (||grad D(x_hat)|| - 1)^2 with
    x_hat on the line between a real and a fake example; G minimises -D(G(z)).
  * hinge: Lim & Ye 2017 / Miyato et al. 2018. D minimises
    relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z)).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from medgen_jax.registry import Registry

PerExample = jax.Array  # [batch]


def minimax_value(real_logits: jax.Array, fake_logits: jax.Array) -> PerExample:
  """Per-example value V_i = log D(x_i) + log(1 - D(G(z_i))) (D maximises)."""
  return -jax.nn.softplus(-real_logits) - jax.nn.softplus(fake_logits)


def minimax_discriminator_loss(real_logits: jax.Array,
                               fake_logits: jax.Array) -> PerExample:
  """-V_i: binary cross-entropy of real as 1 and fake as 0."""
  return -minimax_value(real_logits, fake_logits)


def minimax_generator_loss(fake_logits: jax.Array) -> PerExample:
  """log(1 - D(G(z_i))): the generator's side of the original minimax game."""
  return -jax.nn.softplus(fake_logits)


def nonsaturating_generator_loss(fake_logits: jax.Array) -> PerExample:
  """-log D(G(z_i))."""
  return jax.nn.softplus(-fake_logits)


def wasserstein_critic_loss(real_logits: jax.Array,
                            fake_logits: jax.Array) -> PerExample:
  """D(G(z_i)) - D(x_i) (without the gradient penalty)."""
  return fake_logits - real_logits


def wasserstein_generator_loss(fake_logits: jax.Array) -> PerExample:
  """-D(G(z_i))."""
  return -fake_logits


def hinge_discriminator_loss(real_logits: jax.Array,
                             fake_logits: jax.Array) -> PerExample:
  """relu(1 - D(x_i)) + relu(1 + D(G(z_i)))."""
  return jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)


def hinge_generator_loss(fake_logits: jax.Array) -> PerExample:
  """-D(G(z_i))."""
  return -fake_logits


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
  """x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i; eps: [batch]."""
  eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic: Callable[[jax.Array], jax.Array],
                     x_hat: jax.Array) -> PerExample:
  """(||grad_x critic(x_hat_i)||_2 - 1)^2 for each example.

  The gradient of each example's critic value is taken with respect to that
  example's input alone (vmapped `jax.grad` over single examples), so the
  penalty is a true per-example quantity even if `critic` were to mix
  examples, rather than relying on the critic being batch-independent.

  Args:
    critic: maps inputs [n, ...] to logits [n]; closes over its parameters
      (and any per-example conditioning, passed through `x_hat`'s partner
      arguments by the caller).
    x_hat: [batch, ...] points at which the gradient norm is penalised.

  Returns:
    [batch] penalties.
  """
  def one(x):  # x: [...]; one example
    return critic(x[None])[0]

  grads = jax.vmap(jax.grad(one))(x_hat)  # [batch, ...]
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)
                   + 1e-12)
  return (norms - 1.0) ** 2


def r1_penalty(critic: Callable[[jax.Array], jax.Array],
               real: jax.Array) -> PerExample:
  """||grad_x D(x_i)||_2^2 at each real input (R1; Mescheder et al. 2018).

  The discriminator's loss adds (gamma / 2) * R1: a zero-centred penalty on
  D's slope at the data, which makes the GAN's training dynamics converge
  where the unregularised game circles ("Which Training Methods for GANs do
  actually Converge?", ICML 2018).

  The gradient is that of sum_j critic(real)_j with respect to each input,
  as StyleGAN's R1 is computed: for a critic without batch coupling (no
  batch norm in D) that is exactly each example's own gradient, and under
  DP-SGD (one example per call) it always is. With batch norm in D it also
  carries the example's effect on the batch statistics, the same effect the
  generator's gradient sees through D.

  Args:
    critic: inputs [n, ...] -> logits [n]; closes over D's parameters.
    real: [batch, ...] real inputs (after D's augmentation, if any).

  Returns:
    [batch] squared gradient norms.
  """
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(real)
  return jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


@dataclasses.dataclass(frozen=True)
class GanLoss:
  """A pair of per-example objectives.

  Attributes:
    discriminator: (real_logits [b], fake_logits [b]) -> [b] loss for D.
    generator: fake_logits [b] -> [b] loss for G.
    gradient_penalty: whether the step adds `gp_weight * gradient_penalty`.
  """

  discriminator: Callable[[jax.Array, jax.Array], PerExample]
  generator: Callable[[jax.Array], PerExample]
  gradient_penalty: bool = False


GAN_LOSSES: Registry[GanLoss] = Registry("GAN loss", hint="--loss")
GAN_LOSSES.register("minimax", GanLoss(minimax_discriminator_loss,
                                       minimax_generator_loss))
GAN_LOSSES.register("nonsaturating", GanLoss(minimax_discriminator_loss,
                                             nonsaturating_generator_loss))
GAN_LOSSES.register("wgan-gp", GanLoss(wasserstein_critic_loss,
                                       wasserstein_generator_loss,
                                       gradient_penalty=True))
GAN_LOSSES.register("hinge", GanLoss(hinge_discriminator_loss,
                                     hinge_generator_loss))
