"""RnnTask: the autoregressive recurrent family (`medgen train rnn`)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import rnn as rnn_config
from medgen_jax.configs.base import check_real
from medgen_jax.data.base import Dataset
from medgen_jax.families._sequence import SeriesTask, series_flags
from medgen_jax.families.rnn import step as rnn_step
from medgen_jax.models.recurrent import Autoregressive
from medgen_jax.objectives.sequence import HEADS
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import TASKS, Flag, Option, Outputs
from medgen_jax.train.update import make_gradient_fn

EVAL_CHUNK = 64   # held-out windows scored per compiled call


@TASKS.register("rnn")
class RnnTask(SeriesTask):
  """p(y_t | y_<t) over windows of a record (see configs/rnn.py)."""

  section = "rnn"
  get_config = staticmethod(rnn_config.get_config)
  flags = series_flags("rnn") + (
      Flag("--head", "rnn.head", "gaussian | mdn: the distribution per step"),
      Flag("--temperature", "rnn.temperature",
           "sampling temperature (scales the predicted spread)"),
      Flag("--input-noise", "rnn.input_noise",
           "std of noise added to teacher-forced inputs (normalised units)"),
  )
  sample_options = SeriesTask.sample_options + (
      Option("--temperature", float, "scales the predicted spread (0: the "
             "most likely value at each step); default: the run's"),
  )

  @classmethod
  def validate_config(cls, config) -> None:
    super().validate_config(config)
    HEADS.get(config.rnn.head)
    check_real(config.rnn.temperature, "rnn.temperature (--temperature)", 0.0)
    check_real(config.rnn.input_noise, "rnn.input_noise (--input-noise)", 0.0)

  def __init__(self, config, dataset: Dataset | None = None):
    if dataset is not None:
      self.resolve(config, dataset)
    self.check_resolved(config)
    self.config = config
    r = config.rnn
    self.head = HEADS.get(r.head)
    self.model = Autoregressive(
        num_params=self.head.num_params(r.channels), cell=r.cell,
        hidden=r.hidden, layers=r.layers, num_classes=r.num_classes,
        num_covariates=r.num_covariates)
    self.cfg = rnn_step.RnnStepConfig(self.model, self.head,
                                      conditional=bool(r.num_classes),
                                      input_noise=float(r.input_noise))
    self.train_step = rnn_step.make_train_step(self.cfg,
                                               make_gradient_fn(config))
    self._scores = jax.jit(rnn_step.make_scores(self.cfg))
    self._sample = jax.jit(rnn_step.make_sample(self.cfg, r.channels),
                           static_argnums=(5, 6))
    self._forecast = jax.jit(rnn_step.make_forecast(self.cfg),
                             static_argnums=(7,))

  def init_state(self, key: jax.Array) -> TrainState:
    r = self.config.rnn
    y = jnp.zeros((2, 4, r.channels))
    cov = jnp.zeros((2, r.num_covariates)) if r.num_covariates else None
    params = self.model.init(key, y, jnp.ones((2, 4), bool),
                             jnp.zeros((2,), jnp.int32), cov)["params"]
    return TrainState.create(
        apply_fn=self.model.apply, params=params,
        tx=make_optimizer(self.config.optimizer,
                          self.config.optimizer.learning_rate))

  # -- evaluation -------------------------------------------------------------------
  def held_out_nll(self, params, batch) -> float:
    """Mean NLL per unmasked step (nats) over `batch`, in fixed-size chunks."""
    total, steps = 0.0, 0.0
    n = batch["x"].shape[0]
    for start in range(0, n, EVAL_CHUNK):
      chunk = {k: v[start:start + EVAL_CHUNK] for k, v in batch.items()}
      m = chunk["x"].shape[0]
      if m < EVAL_CHUNK:  # pad to the compiled size; padding has no steps
        chunk = {k: np.concatenate([v, np.zeros((EVAL_CHUNK - m,) + v.shape[1:],
                                                v.dtype)])
                 for k, v in chunk.items()}
      nll, count = self._scores(params, chunk)
      total += float(np.asarray(nll)[:m].sum())
      steps += float(np.asarray(count)[:m].sum())
    return total / max(steps, 1.0)

  def forecast(self, state, context, mask, label=None, covariates=None, *,
               horizon: int, temperature: float = 0.0,
               key=None) -> np.ndarray:
    """Continues each context [b, t, c] (normalised) by `horizon` steps."""
    b = context.shape[0]
    label = np.zeros((b,), np.int32) if label is None else label
    key = jax.random.key(0) if key is None else key
    return np.asarray(self._forecast(
        state.params, key, jnp.asarray(context), jnp.asarray(mask),
        jnp.asarray(label), covariates, jnp.float32(temperature), horizon))

  def forecast_scores(self, state, batch) -> dict[str, float]:
    """Forecasts the second half of each held-out window from its first half
    (temperature 0) and reports the MAE over observed steps, beside the
    persistence baseline (the last observed context value, held)."""
    x, mask = batch["x"], batch["mask"]
    half = x.shape[1] // 2
    pred = self.forecast(state, x[:, :half], mask[:, :half], batch["label"],
                         batch.get("covariates"), horizon=x.shape[1] - half)
    target, tmask = x[:, half:], mask[:, half:]
    last = np.zeros_like(x[:, 0])
    for t in range(half):  # the last observed context value of each window
      last = np.where(mask[:, t:t + 1], x[:, t], last)
    denom = max(float(tmask.sum()) * x.shape[2], 1.0)
    err = np.abs(pred - target) * tmask[..., None]
    base = np.abs(last[:, None] - target) * tmask[..., None]
    return {"forecast_mae": float(err.sum() / denom),
            "forecast_mae_persistence": float(base.sum() / denom)}

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    name, batch = self.held_out(dataset)
    out = self.evaluate_samples(state, name, batch,
                                jax.random.key(self.config.seed + 17))
    out.scalars[f"eval/{name}_nll_per_step"] = self.held_out_nll(state.params,
                                                                 batch)
    out.scalars.update({f"eval/{name}_{k}": v for k, v in
                        self.forecast_scores(state, batch).items()})
    return out

  # -- generation ---------------------------------------------------------------------
  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n series sampled from the model, each value fed back as the next
    input: "x" in the record's units, "x_norm" normalised, "mask"."""
    r = self.config.rnn
    length = options.get("length") or r.window
    temperature = options.get("temperature")
    temperature = r.temperature if temperature is None else temperature
    labels = self.sample_labels(n, options)
    x = self._sample(state.params, key, jnp.asarray(labels),
                     self.sample_covariates(n, options),
                     jnp.float32(temperature), n, int(length))
    return self.package(np.asarray(x), labels)
