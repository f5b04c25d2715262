"""DCGAN on medical images: the default experiment of `medgen train gan`.

    medgen train gan                                   # embedded phantoms
    medgen train gan --data pneumoniamnist --data-dir ../shared/data/medmnist \
        --steps 3000 --conditional

Every field can be overridden from the command line with `--set a.b=value`
or with the named flags of `medgen train gan --help`.
"""

from __future__ import annotations

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.family = "gan"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "phantoms"      # registry name, or tfds:NAME
  c.data.data_dir = ""          # "" -> dataset default (cache / generated)
  c.data.image_size = 28
  c.data.download = True        # may fetch public data into the cache
  c.data.seed = 0               # shuffling (and phantom generation) seed
  c.data.tfds_split_train = "train"
  c.data.tfds_split_val = ""    # "" -> no validation split from TFDS
  c.data.tfds_max_examples = 20000
  c.data.phantoms = ml_collections.ConfigDict()
  c.data.phantoms.num_train = 4096
  c.data.phantoms.num_val = 512
  c.data.phantoms.num_test = 512
  c.data.phantoms.noise_std = 0.02  # Gaussian noise, in units of full range
  c.data.phantoms.blur_sigma = 0.5  # Gaussian blur, in pixels (0 = none)
  c.data.phantoms.lesion_prob = 0.5  # fraction with a lesion (label 1)

  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 64
  c.model.conditional = False
  c.model.width = 64            # channels of the last generator block
  c.model.upsample = "subpixel"  # subpixel | transpose
  c.model.d_norm = "auto"       # auto | batch | layer | none

  c.loss = "nonsaturating"      # minimax | nonsaturating | wgan-gp | hinge
  c.gp_weight = 10.0
  c.d_steps = 1                 # discriminator updates per generator update

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"     # adam | rmsprop
  c.optimizer.g_learning_rate = 2e-4
  c.optimizer.d_learning_rate = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999
  c.optimizer.grad_clip = 0.0   # global-norm clipping, 0 = off
  c.ema_decay = 0.999

  c.train = ml_collections.ConfigDict()
  c.train.steps = 1500
  c.train.batch_size = 64
  c.train.log_every = 50
  c.train.sample_every = 500
  c.train.checkpoint_every = 500
  c.train.keep_checkpoints = 3
  c.train.num_samples = 64      # images in each sample grid
  c.train.num_devices = 0       # 0 = all local devices
  c.train.progress = True
  return c
