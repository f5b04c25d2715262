"""The classifier's train step and evaluation function, as pure functions.

Train: one update of the per-example (optionally label-smoothed) softmax
cross-entropy plus weight_decay * ||W||^2 on every kernel (the same value
in each example's loss, so the batch mean adds it once), through
train/update.py (the gradient seam every family shares). Randomness
(dropout, blur): fold_in(key, step).

Blur augmentation (`classifier.blur`, `--blur-augment S`): each training
image is blurred by a Gaussian whose std is drawn per example from
U(0, S) pixels. Generated images are often a little softer than real ones;
a classifier used to judge them (class mix, features) should read a
lesion, not sharpness, as the class.

Batch (numpy, from ClassifierTask.make_batch):
  image: float32 [b, *data_shape] in [-1, 1]
  label: int32 [b] class index
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from medgen_jax.models.classifier import ImageClassifier
from medgen_jax.objectives import classification as cls_lib
from medgen_jax.train.update import GradientFn, LossOutput, update


@dataclasses.dataclass(frozen=True)
class ClassifierStepConfig:
  """Static settings of the classifier step (hashable)."""

  model: ImageClassifier
  label_smoothing: float = 0.0
  weight_decay: float = 0.0
  blur: float = 0.0             # max Gaussian std (pixels) of the augmentation


def random_blur(key: jax.Array, x: jax.Array, max_sigma: float) -> jax.Array:
  """Blurs each example of x [b, *spatial, c] by a Gaussian of std
  U(0, max_sigma) pixels along every spatial axis (separable; edge pixels
  repeated; std 0 leaves the image as it is)."""
  b = x.shape[0]
  sigma = jax.random.uniform(key, (b,), maxval=max_sigma)
  radius = max(1, math.ceil(3.0 * max_sigma))
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  logits = -0.5 * jnp.square(t[None, :] / jnp.maximum(sigma, 1e-6)[:, None])
  weights = jax.nn.softmax(logits, axis=-1)        # [b, taps], rows sum to 1
  for axis in range(1, x.ndim - 1):
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = jnp.pad(x, pad, mode="edge")
    n = x.shape[axis]
    shape = (b,) + (1,) * (x.ndim - 1)
    x = sum(weights[:, i].reshape(shape)
            * jax.lax.slice_in_dim(padded, i, i + n, axis=axis)
            for i in range(2 * radius + 1))
  return x


def l2_penalty(params) -> jax.Array:
  """Sum of squared kernel weights (biases and norm scales are not
  penalised)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return sum((jnp.sum(jnp.square(v)) for path, v in leaves
              if getattr(path[-1], "key", "") == "kernel"), jnp.zeros(()))


def make_train_step(cfg: ClassifierStepConfig, gradient_fn: GradientFn):
  """Builds `step(state, batch, key) -> (state, metrics)`."""

  def step(state, batch, key):
    key = jax.random.fold_in(key, state.step)

    def loss_fn(params, b, k) -> LossOutput:
      images = b["image"]
      if cfg.blur:
        images = random_blur(jax.random.fold_in(k, 1), images, cfg.blur)
      logits = cfg.model.apply({"params": params}, images, train=True,
                               rngs={"dropout": k})
      ce = cls_lib.cross_entropy(logits, b["label"], cfg.label_smoothing)
      penalty = (cfg.weight_decay * l2_penalty(params) if cfg.weight_decay
                 else jnp.zeros(()))
      return LossOutput(ce + penalty, {
          "cross_entropy": jnp.mean(ce),
          "accuracy": jnp.mean(cls_lib.accuracy(logits, b["label"])),
          "l2": penalty})

    state, info = update(state, loss_fn, batch, key, gradient_fn=gradient_fn)
    return state, {"loss": info.loss, "grad_norm": info.grad_norm,
                   **info.metrics}

  return step


def make_predict(cfg: ClassifierStepConfig):
  """`predict(params, images) -> (features [b, F], logits [b, K])`, no
  dropout."""

  def predict(params, images):
    return cfg.model.apply({"params": params}, images,
                           method=ImageClassifier.forward)

  return predict
