"""DCGAN on medical images: the default experiment of `medgen train gan`.

    medgen train gan                                   # embedded phantoms
    medgen train gan --data pneumoniamnist --data-dir ../shared/data/medmnist \
        --steps 3000 --conditional

The base sections (seed, data, train, optimizer, privacy) are
`configs/base.py`'s, with GAN defaults (Adam 2e-4, beta1 0.5); the family's
own fields are the `gan` section. Every field can be overridden with
`--set a.b=value` or the flags of `medgen train gan --help`.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.images import add_image_data_options


def get_config() -> ml_collections.ConfigDict:
  c = get_base_config()
  c.family = "gan"
  c.data.name = "phantoms"      # registry name, or tfds:NAME
  add_image_data_options(c.data)

  c.optimizer.learning_rate = 2e-4  # G and D, unless gan.*_learning_rate is set
  c.optimizer.b1 = 0.5              # DCGAN's Adam beta1

  c.train.steps = 1500
  c.train.eval_every = 500

  g = c.gan = ml_collections.ConfigDict()
  g.loss = "nonsaturating"      # minimax | nonsaturating | wgan-gp | hinge
  g.gp_weight = 10.0            # wgan-gp's gradient-penalty weight
  g.r1_weight = 0.0             # gamma: D's loss adds gamma/2 * ||grad_x D(real)||^2 (R1)
  g.d_steps = 1                 # discriminator updates per generator update
  g.ema_decay = 0.999           # EMA of G's weights, used for sampling
  g.g_learning_rate = config_dict.placeholder(float)  # None: optimizer.learning_rate
  g.d_learning_rate = config_dict.placeholder(float)  # None: optimizer.learning_rate
  g.latent_dim = 64
  g.conditional = False         # class-conditional G and projection D
  g.width = 64                  # channels of G's last block and D's first
  g.g_width = config_dict.placeholder(int)  # G's alone (None: width)
  g.upsample = "subpixel"       # subpixel | transpose
  g.d_minibatch_std = 0         # group size of D's minibatch-std feature (0 = off)
  g.g_norm = "batch"            # G's hidden blocks: batch | pixel | none
  g.d_pack = 1                  # PacGAN: D judges packs of this many examples (1 = off)
  g.d_joint_batch = False       # D's batch norm sees real and generated images as one batch
  g.d_norm = "auto"             # auto (layer for wgan-gp, else batch) | batch | layer | none
  g.augment = ""                # DiffAugment ops for D's inputs: translation,cutout,color ("" = none)
  g.ada_target = 0.0            # > 0: ADA adapts the ops' probability toward this r_t (0.6)
  g.ada_kimg = 100.0            # ADA: thousands of images for the probability to move by 1
  # Derived from the data when a run starts (declared here, None until then):
  g.channels = config_dict.placeholder(int)     # 1 grayscale, 3 RGB
  g.num_classes = config_dict.placeholder(int)  # classes G and D see; 0 unconditional
  return c


# Fields of the first release's flat GAN config (before the base + `gan`
# section layout) -> their place now.
_V0_FIELDS = {
    "loss": "gan.loss", "gp_weight": "gan.gp_weight", "d_steps": "gan.d_steps",
    "ema_decay": "gan.ema_decay",
    "optimizer.g_learning_rate": "gan.g_learning_rate",
    "optimizer.d_learning_rate": "gan.d_learning_rate",
    "train.sample_every": "train.eval_every",
}


def upgrade(flat: dict) -> dict:
  """A first-release run's config.json fields (flattened) in today's layout.

  Runs written before the `gan` section existed keep restoring and resuming:
  `model.*` moves to `gan.*` and the GAN-only top-level fields into `gan`.
  The optimizer settings are carried over with the values those runs really
  used (rmsprop's decay was b2, sgd's momentum was b1), so the math is
  unchanged. A config already in today's layout is returned as it is.
  """
  if not any(k.startswith("model.") for k in flat) and "loss" not in flat:
    return flat
  out = {}
  for key, value in flat.items():
    if key.startswith("model."):
      out["gan." + key[len("model."):]] = value
    else:
      out[_V0_FIELDS.get(key, key)] = value
  name = flat.get("optimizer.name")
  if name == "rmsprop" and "optimizer.b2" in flat:
    out["optimizer.decay"] = flat["optimizer.b2"]
  if name == "sgd" and "optimizer.b1" in flat:
    out["optimizer.momentum"] = flat["optimizer.b1"]
  lr = out.get("gan.g_learning_rate")
  if lr is not None:
    out.setdefault("optimizer.learning_rate", lr)
  return out
