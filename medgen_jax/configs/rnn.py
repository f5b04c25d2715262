"""Autoregressive recurrent models of multichannel physiological series.

    medgen train rnn                                   # embedded sines (TimeGAN)
    medgen train rnn --data ../shared/data/mitbih_100/100 --channels MLII \
        --resample 125 --window 250
    medgen train rnn --data ../shared/data/physionet_vitals/03700181 \
        --channels MCL1,ABP --window 250
    medgen train rnn --data vitals.csv --rate 125 --channels ECG,ABP

p(y_t | y_<t) with a Gaussian or mixture-density head per step
(objectives/sequence.py), a GRU or LSTM stack (models/recurrent.py),
teacher-forced training on the masked per-step NLL, sampling and forecasting
under `lax.scan` with a temperature. The data options are
configs/series.py's; the `rnn` section is the family's.
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
  c.family = "rnn"
  add_series_data_options(c.data)
  set_training_defaults(c)
  c.train.steps = 2000

  r = c.rnn = ml_collections.ConfigDict()
  add_recurrent_fields(r)
  r.head = "auto"               # auto | mdn (5 diagonal Normals) | gaussian |
                                # categorical | nb | zinb; auto: mdn for real
                                # values, categorical for sleep stages, zinb
                                # for counts (a run's config.json holds the
                                # head chosen). On ECG the mixture gives sharp
                                # QRS complexes where one Normal blurs them
                                # (benchmarks/sequence_quality.py)
  r.temperature = 1.0           # sampling: scales the predicted spread
  r.input_noise = 0.02          # std of Gaussian noise on the teacher-forced
                                # inputs (targets stay clean): a model that has
                                # seen slightly-off inputs drifts less when it
                                # feeds back its own samples
  add_derived_fields(r)
  return c
