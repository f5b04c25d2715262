"""Variational autoencoders for medical images and gene expression.

    medgen train vae                                    # embedded phantoms
    medgen train vae --data pneumoniamnist --data-dir ../shared/data/medmnist
    medgen train vae --data pbmc68k_reduced --data-dir ../shared/data/pbmc68k_reduced
    medgen train vae --data cells.h5ad --matrix layers/counts \
        --matrix-kind counts --likelihood zinb --label-key cell_type
    medgen train vae --data pneumoniamnist --data-dir ../shared/data/medmnist \
        --likelihood discretized_student_t --denoise gaussian:0.2

The base sections are `configs/base.py`'s; the family's fields are the `vae`
section. `vae.likelihood` "auto" picks the discretised logistic for images
(a normalised likelihood of 8-bit pixels, so held-out NLL and bits/dim are
honest), NB for counts and a Gaussian for log-normalised or scaled
expression; the choice made is recorded as `vae.resolved_likelihood`.

Robust options for noisy data: the heavy-tailed image likelihoods
"discretized_laplace" and "discretized_student_t" (degrees of freedom
`vae.student_t_df`), normalised over the 256 levels like the logistic; and
`vae.denoise` (`--denoise`), the denoising criterion of Im et al. 2017,
"Denoising Criterion for Variational Auto-Encoding Framework": in training
only, the encoder sees a corrupted copy of each example while the
likelihood scores the clean one. "gaussian:SIGMA" adds N(0, SIGMA^2) noise
in the units of the model's x (images span [-1, 1], so 0.2 is 10% of the
pixel range; images are clipped back to their range, counts at 0);
"saltpepper:P" (images only) sets each pixel with probability P to the
lowest or the highest level, with equal chance.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.expression import add_expression_data_options
from medgen_jax.configs.images import add_image_data_options


def get_config() -> ml_collections.ConfigDict:
  c = get_base_config()
  c.family = "vae"
  c.data.name = "phantoms"
  add_image_data_options(c.data)
  add_expression_data_options(c.data)

  c.optimizer.learning_rate = 1e-3
  c.train.steps = 3000
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000

  v = c.vae = ml_collections.ConfigDict()
  v.likelihood = "auto"         # auto | bernoulli | gaussian | discretized_logistic
                                # | discretized_gaussian | discretized_laplace
                                # | discretized_student_t | nb | zinb
  v.student_t_df = 3.0          # degrees of freedom of discretized_student_t
  v.denoise = ""                # "" | gaussian:SIGMA | saltpepper:P (training)
  v.latent_dim = 16
  v.beta = 1.0                  # weight of the KL term (beta-VAE)
  v.kl_warmup_steps = 0         # linear KL warm-up from 0 to beta
  v.hidden = (128, 128)         # MLP widths (expression)
  v.width = 32                  # conv width (images)
  v.condition = ""              # "" | label | batch: condition encoder and decoder
  v.iwae_samples = 100          # K of the held-out importance-weighted bound
  v.eval_examples = 512         # held-out examples scored at each evaluation
  v.impute_fraction = 0.1       # expression: entries masked for the imputation score
  # Derived from the data when a run starts (None until then):
  v.resolved_likelihood = config_dict.placeholder(str)
  v.data_shape = config_dict.placeholder(tuple)   # one example: (s, s, c) or (genes,)
  v.num_conditions = config_dict.placeholder(int)  # classes of the condition; 0 = none
  v.library_size = config_dict.placeholder(float)  # median train library size (counts)
  return c
