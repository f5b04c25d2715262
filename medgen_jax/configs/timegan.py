"""TimeGAN (Yoon et al. 2019): a GAN in the latent space of a recurrent
autoencoder, for multichannel physiological series.

    medgen train timegan                               # embedded sines
    medgen train timegan --data ../shared/data/physionet_vitals/03700181 \
        --channels ABP --window 125 --resample 62.5

Five GRU/LSTM networks (models/timegan.py), trained in three phases
(families/timegan/step.py): the autoencoder for `embed_steps`, the latent
next-step supervisor for `supervise_steps`, then joint training for the
rest of `--steps`. Defaults follow the paper's code: GRU 24 x 3, batch 128,
Adam 1e-3 without clipping, noise U[0, 1) with one value per channel,
gamma 1, weights 100 on the supervised and moment losses, D updated only
while its loss exceeds 0.15. Two additions, both off in the paper: samples
from an EMA of the weights (`ema_decay`, on by default) and per-series
noise (`--static-noise-dim`, off by default).
"""

from __future__ import annotations

import ml_collections

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.sequence import (add_derived_fields,
                                         add_recurrent_fields,
                                         set_training_defaults)
from medgen_jax.configs.series import add_series_data_options


def get_config() -> ml_collections.ConfigDict:
  c = get_base_config()
  c.family = "timegan"
  add_series_data_options(c.data)
  set_training_defaults(c)
  c.train.steps = 4000
  c.train.batch_size = 128
  c.optimizer.grad_clip = 0.0   # the paper's Adam has no clipping

  g = c.timegan = ml_collections.ConfigDict()
  add_recurrent_fields(g)
  g.hidden = 24                 # latent and recurrent units (paper: 24)
  g.layers = 3                  # layers of each network (supervisor: one fewer)
  g.embed_steps = 1000          # phase 1: the autoencoder alone
  g.supervise_steps = 1000      # phase 2: the latent supervisor alone
  g.noise_dim = 0               # noise values per step (0 = one per channel,
                                # or none when static_noise_dim > 0)
  g.static_noise_dim = 0        # noise values per series, repeated at every
                                # step (not in the paper; 0 = none)
  g.gamma = 1.0                 # weight of the generator-path (e) adversarial terms
  g.supervised = 100.0          # weight of sqrt(S) in the generator's loss
  g.moments = 100.0             # weight of the moment loss V (batch-coupled; 0 = off)
  g.d_threshold = 0.15          # D is updated only while its loss exceeds this
  g.ema_decay = 0.999           # EMA of the sampling path's weights, for
                                # sampling (not in the paper; 0 = last weights)
  g.fresh_joint_optimizers = False  # joint training restarts the autoencoder's
                                # and generator's Adam states (the paper's code)
  g.output = "auto"             # auto | linear | sigmoid (the recovery's output;
                                # auto: sigmoid when train values are in [0, 1])
  add_derived_fields(g)
  return c
