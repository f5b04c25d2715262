"""Recurrent GANs of multichannel physiological series (RCGAN, TimeGAN's
supervised loss as an option).

    medgen train rgan                                  # embedded sines (TimeGAN)
    medgen train rgan --supervised 10                  # + next-step supervision
    medgen train rgan --data ../shared/data/physionet_vitals/03700181 \
        --channels ABP --window 125 --resample 62.5

Generator: noise per step -> GRU/LSTM stack -> values; discriminator: values
-> stack -> one logit per step, the per-step losses of objectives/minimax.py
averaged over each example's unmasked steps (Esteban et al. 2017). With
`--supervised W`, a recurrent next-step model is fitted to the real windows
and the generator also minimises W times its next-step error on the
generated windows (the supervised loss of Yoon et al. 2019, applied in data
space; see families/rgan/step.py).
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
  c.family = "rgan"
  add_series_data_options(c.data)
  set_training_defaults(c)
  c.train.steps = 3000

  g = c.rgan = ml_collections.ConfigDict()
  add_recurrent_fields(g)
  g.loss = "nonsaturating"      # minimax | nonsaturating | hinge (per step)
  g.noise_dim = 8               # noise values per step (fresh at every step)
  g.static_noise_dim = 0        # noise values per series, the same at every
                                # step (0 = none; see families/rgan/step.py)
  g.d_steps = 1                 # discriminator updates per generator update
  g.supervised = 0.0            # weight of the next-step supervised loss (0 = off)
  g.ema_decay = 0.999           # EMA of the generator's weights, for sampling
  g.output = "auto"             # auto | linear | sigmoid (auto: sigmoid when
                                # every train value is in [0, 1]: minmax, sines)
  add_derived_fields(g)
  return c
