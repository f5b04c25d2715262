"""The survival family's train step and prediction, as pure functions.

Train: one update of the per-example negative log-likelihood through
train/update.py (the gradient seam every family shares):

  cox:             loss_i = event_i * -(r_i - log sum_{j in batch, t_j >= t_i}
                   exp r_j) (Breslow; Efron splits tied events), the
                   partial likelihood with the batch as the risk set;
  logistic_hazard: loss_i = -sum_{k < k_i} log(1 - h_ik) - (log h_ik_i if an
                   event, else the censored interval's survival term), plus
                   rank_weight * DeepHit's ranking term when asked;

plus weight_decay * ||W||^2 on every kernel (the same value in each
example's loss, so the batch mean adds it once). Randomness (dropout):
fold_in(key, step).

The Cox loss couples the examples of a batch through the risk set, so its
"per-example" values are each event's term over the batch: the batch mean
is a stochastic estimate of the full partial likelihood (exact when a batch
holds the whole training split), and a per-example gradient of it is not one
patient's influence, which is why DP-SGD (a per-example clipping gradient
function) is refused for it; the logistic-hazard loss is truly per example.

Batch (numpy, from SurvivalTask.make_batch):
  x:             float32 [b, f] encoded covariates
  time:          float32 [b] follow-up time
  event:         float32 [b] 1 = event observed, 0 = censored
  treatment:     int32 [b] arm (zeros without a treatment column)
  interval:      int32 [b] discrete-time interval of the time (logistic hazard)
  survived_last: float32 [b] 1 when a censored patient counts as surviving
                 its last interval (logistic hazard)
  series, mask:  float32 [b, t, c], bool [b, t] (series inputs only)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from medgen_jax.models.survival import SurvivalNet
from medgen_jax.objectives import survival as surv_lib
from medgen_jax.train.update import GradientFn, LossOutput, update


@dataclasses.dataclass(frozen=True)
class SurvivalStepConfig:
  """Static settings of the survival step (hashable)."""

  model: SurvivalNet
  objective: str = "cox"
  ties: str = "breslow"
  weight_decay: float = 0.0
  rank_weight: float = 0.0
  rank_sigma: float = 0.1


def apply_model(cfg: SurvivalStepConfig, params, batch, *, train=False,
                key=None) -> jax.Array:
  """The model's outputs [b, outputs] for a batch."""
  rngs = {"dropout": key} if train else None
  return cfg.model.apply({"params": params}, batch["x"],
                         batch.get("treatment"), batch.get("series"),
                         batch.get("mask"), train=train, rngs=rngs)


def per_example_nll(cfg: SurvivalStepConfig, out: jax.Array,
                    batch) -> jax.Array:
  """The objective's per-example negative log-likelihood [b]."""
  if cfg.objective == "cox":
    return surv_lib.cox_partial_nll(out[:, 0], batch["time"], batch["event"],
                                    ties=cfg.ties)
  nll = surv_lib.logistic_hazard_nll(out, batch["interval"], batch["event"],
                                     batch["survived_last"])
  if cfg.rank_weight:
    nll = nll + cfg.rank_weight * surv_lib.deephit_rank_loss(
        out, batch["interval"], batch["event"], sigma=cfg.rank_sigma)
  return nll


def l2_penalty(params) -> jax.Array:
  """Sum of squared kernel weights (biases are not penalised)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return sum(jnp.sum(jnp.square(v)) for path, v in leaves
             if getattr(path[-1], "key", "") == "kernel")


def make_train_step(cfg: SurvivalStepConfig, gradient_fn: GradientFn):
  """Builds `step(state, batch, key) -> (state, metrics)`."""

  def step(state, batch, key):
    key = jax.random.fold_in(key, state.step)

    def loss_fn(params, b, k) -> LossOutput:
      out = apply_model(cfg, params, b, train=True, key=k)
      nll = per_example_nll(cfg, out, b)
      penalty = cfg.weight_decay * l2_penalty(params)
      return LossOutput(nll + penalty, {"nll": jnp.mean(nll),
                                        "l2": penalty})

    state, info = update(state, loss_fn, batch, key, gradient_fn=gradient_fn)
    return state, {"loss": info.loss, "grad_norm": info.grad_norm,
                   **info.metrics}

  return step


def make_predict(cfg: SurvivalStepConfig):
  """`predict(params, batch) -> outputs [b, outputs]` (no dropout)."""

  def predict(params, batch):
    return apply_model(cfg, params, batch)

  return predict
