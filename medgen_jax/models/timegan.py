"""TimeGAN's five recurrent networks (Yoon et al. 2019, "Time-series
Generative Adversarial Networks", NeurIPS).

TimeGAN learns a latent space of the series with an autoencoder and plays
the GAN in that space:

  embedder       x [b, t, C]       -> h [b, t, H]   (sigmoid: h in (0, 1))
  recovery       h [b, t, H]       -> x [b, t, C]   (sigmoid or linear)
  generator      z [b, t, Z]       -> e [b, t, H]   (sigmoid)
  supervisor     h [b, t, H]       -> h_{t+1} [b, t, H] (sigmoid; one layer
                                      fewer than the others, as in the paper)
  discriminator  h [b, t, H]       -> logits [b, t]

Each is a GRU/LSTM stack (models/recurrent.py, `nn.RNN` scans) and a dense
layer per step. Samples are recovery(supervisor(generator(z))). No batch
norm: every loss of objectives/timegan.py stays per example.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from medgen_jax.models.recurrent import RecurrentStack


class StepMap(nn.Module):
  """A recurrent stack and a dense layer at every step: [b, t, F] -> [b, t, out].

  Attributes:
    out: features per step.
    output: "sigmoid" or "linear".
    cell, hidden, layers: the recurrent stack.
  """

  out: int
  output: str = "sigmoid"
  cell: str = "gru"
  hidden: int = 24
  layers: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.Dense(self.out)(RecurrentStack(self.cell, self.hidden,
                                          self.layers)(x))
    return nn.sigmoid(y) if self.output == "sigmoid" else y


def networks(channels: int, output: str, cell: str, hidden: int,
             layers: int) -> dict[str, StepMap]:
  """TimeGAN's networks by name (see the module docstring)."""
  stack = dict(cell=cell, hidden=hidden)
  return {
      "embedder": StepMap(hidden, "sigmoid", layers=layers, **stack),
      "recovery": StepMap(channels, output, layers=layers, **stack),
      "generator": StepMap(hidden, "sigmoid", layers=layers, **stack),
      "supervisor": StepMap(hidden, "sigmoid", layers=max(layers - 1, 1),
                            **stack),
      "discriminator": StepMap(1, "linear", layers=layers, **stack),
  }
