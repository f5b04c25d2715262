"""An image classifier trained on a dataset's own labels (`classifier`).

    medgen train classifier                          # embedded phantoms
    medgen train classifier --data pneumoniamnist \
        --data-dir ../shared/data/medmnist --steps 2000

Two uses. (a) A domain feature extractor: its penultimate features (the
`classifier.feature_dim` units before the logits) feed Fréchet distance,
KID and precision/recall; the run's checkpoints record
`extractor_hash`, a content hash of the parameters, so a score names the
extractor it used (`families.classifier.extract_features(load_run(DIR),
images)` computes them). (b) Train on synthetic, test on real (TSTR):
train on a conditional GAN's samples, evaluate on a real test split:

    medgen sample --workdir runs/cgan --n 5000 --out samples.npz
    medgen train classifier --data samples.npz --eval-data pneumoniamnist \
        --data-dir ../shared/data/medmnist --steps 2000

With `data.eval_name` (--eval-data) set, every evaluation scores that
dataset's "test" split (same image shape and class count required);
otherwise the dataset's own "val" split during training and its "test"
split too at the last step.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.images import add_image_data_options

DATA_KIND = "images"  # `--data FILE.npz` reads generated samples (see
                      # data/sample_files.py)


def get_config() -> ml_collections.ConfigDict:
  c = get_base_config()
  c.family = "classifier"
  c.data.name = "phantoms"
  add_image_data_options(c.data)
  c.data.kind = DATA_KIND
  # "" = the data's own val/test splits; NAME = NAME's "test" split (TSTR).
  c.data.eval_name = ""

  c.optimizer.learning_rate = 1e-3
  c.train.steps = 2000
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 500

  k = c.classifier = ml_collections.ConfigDict()
  k.width = 32                  # channels of the first conv stage
  k.feature_dim = 128           # penultimate features (the extractor's output)
  k.norm = "layer"              # layer | none (no batch norm: per-example
                                # losses)
  k.dropout = 0.0               # on the features, before the logits
  k.label_smoothing = 0.0       # eps of the smoothed cross-entropy targets
  k.weight_decay = 0.0          # L2 on the conv / dense kernels
  k.blur = 0.0                  # training images blurred by a Gaussian of
                                # std U(0, blur) pixels (0 = off)
  k.eval_examples = 0           # held-out examples scored; 0 = the whole split
  # Derived from the data when a run starts (None until then):
  # one example: (s, s, c) or (s, s, s, c)
  k.data_shape = config_dict.placeholder(tuple)
  k.num_classes = config_dict.placeholder(int)
  k.class_names = config_dict.placeholder(tuple)
  return c
