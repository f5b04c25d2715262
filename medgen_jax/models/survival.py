"""Survival models: covariates (and a treatment arm) -> a risk or hazards.

`SurvivalNet` is one module for both objectives of objectives/survival.py:
`outputs=1` gives the log-risk score of a Cox model (DeepSurv, Katzman et
al. 2018), `outputs=K` the logits of K discrete-time hazards (logistic
hazard, Gensheimer & Narasimhan 2019).

Inputs:
  x:         float [b, f] encoded covariates (standardised, one-hot)
  treatment: int [b] arm index, one-hot into the MLP (None without arms), so
             the network may learn effects that vary with the covariates;
             counterfactual prediction sets it to each arm in turn
  series:    float [b, t, c] longitudinal measurements with mask bool [b, t]
             (None for tabular data): a GRU/LSTM reads each patient's
             observed steps and its last state joins the covariates

No batch norm (its statistics mix examples, and DP-SGD needs per-example
losses); dropout on the hidden units during training only.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from medgen_jax.models.recurrent import CELLS


class SeriesEncoder(nn.Module):
  """A recurrent cell over each patient's observed steps -> last state.

  Attributes:
    cell: "gru" or "lstm" (the recurrent family's cells).
    hidden: units.
  """

  cell: str = "gru"
  hidden: int = 32

  @nn.compact
  def __call__(self, series: jax.Array, mask: jax.Array) -> jax.Array:
    """series [b, t, c], mask bool [b, t] (observed steps first) -> [b, hidden]."""
    lengths = jnp.sum(mask.astype(jnp.int32), axis=1)        # [b]
    x = jnp.where(mask[..., None], series, 0.0)
    x = jnp.concatenate([x, mask[..., None].astype(x.dtype)], -1)
    rnn = nn.RNN(CELLS[self.cell](features=self.hidden), return_carry=True)
    carry, _ = rnn(x, seq_lengths=jnp.maximum(lengths, 1))
    h = carry[1] if self.cell == "lstm" else carry              # [b, hidden]
    return jnp.where((lengths > 0)[:, None], h, 0.0)


class SurvivalNet(nn.Module):
  """MLP (with an optional recurrent encoder) -> `outputs` values per patient.

  Attributes:
    hidden: widths of the MLP's hidden layers.
    outputs: 1 (Cox log-risk) or K (hazard logits).
    dropout: rate on the hidden units while training.
    num_treatments: arms one-hot into the MLP (0: no treatment input).
    encoder: "mlp" (tabular) or a cell name for series inputs.
    rnn_hidden: width of the recurrent encoder.
    linear_skip: add a linear function of the inputs to the output (a
      linear Cox model, or per-interval linear logits, plus the MLP's
      non-linear correction): on small tables, where effects are mostly
      linear, the network then starts from and stays near the classical
      model unless the data say otherwise.
  """

  hidden: Sequence[int] = (64, 64)
  outputs: int = 1
  dropout: float = 0.0
  num_treatments: int = 0
  encoder: str = "mlp"
  rnn_hidden: int = 32
  linear_skip: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, treatment: jax.Array | None = None,
               series: jax.Array | None = None,
               mask: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    """Returns [b, outputs] (float32)."""
    parts = [x.astype(jnp.float32)]
    if self.num_treatments:
      parts.append(jax.nn.one_hot(treatment, self.num_treatments))
    if self.encoder != "mlp":
      parts.append(SeriesEncoder(self.encoder, self.rnn_hidden)(series, mask))
    h = inputs = jnp.concatenate(parts, -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    # The output layer starts at zero: every patient begins with the same
    # risk (hazard 1/2 per interval), a neutral start for both likelihoods.
    # A Cox log-risk has no intercept: the partial likelihood cannot see one
    # (it cancels in every risk set; the baseline hazard absorbs it), and an
    # unidentified weight would only drift under Adam's normalised steps.
    out = nn.Dense(self.outputs, use_bias=self.outputs > 1,
                   kernel_init=nn.initializers.zeros)(h)
    if self.linear_skip:
      out = out + nn.Dense(self.outputs, use_bias=False,
                           kernel_init=nn.initializers.zeros,
                           name="linear")(inputs)
    return out
