"""Runs written by the first release (flat GAN config, state-only
checkpoints) still sample and resume."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp

from medgen_jax import cli
from medgen_jax.configs import gan
from medgen_jax.families.gan import GanTask
from medgen_jax.train.loop import load_run, read_run_config

# config.json of a run made by the first release (commit bb86061):
# medgen train gan --image-size 16 --width 8 --latent-dim 8 --batch-size 16
#   --conditional --optimizer rmsprop --steps 4 ...
V0_CONFIG = {
    "d_steps": 1, "ema_decay": 0.999, "family": "gan", "gp_weight": 10.0,
    "loss": "nonsaturating", "seed": 0,
    "data": {"data_dir": "", "download": True, "image_size": 16,
             "name": "phantoms", "seed": 0, "tfds_max_examples": 20000,
             "tfds_split_train": "train", "tfds_split_val": "",
             "phantoms": {"blur_sigma": 0.5, "lesion_prob": 0.5,
                          "noise_std": 0.02, "num_test": 16,
                          "num_train": 64, "num_val": 16}},
    "model": {"channels": 1, "conditional": True, "d_norm": "batch",
              "latent_dim": 8, "num_classes": 2, "upsample": "subpixel",
              "width": 8},
    "optimizer": {"b1": 0.5, "b2": 0.999, "d_learning_rate": 0.0002,
                  "g_learning_rate": 0.0002, "grad_clip": 0.0,
                  "name": "rmsprop"},
    "train": {"batch_size": 16, "checkpoint_every": 2, "keep_checkpoints": 3,
              "log_every": 2, "num_devices": 1, "num_samples": 4,
              "progress": False, "sample_every": 4, "steps": 4},
}


def test_upgrade_keeps_the_math():
  flat = gan.upgrade({"loss": "hinge", "model.width": 8,
                      "optimizer.name": "rmsprop", "optimizer.b2": 0.99,
                      "optimizer.g_learning_rate": 1e-3,
                      "train.sample_every": 7})
  assert flat == {"gan.loss": "hinge", "gan.width": 8,
                  "optimizer.name": "rmsprop", "optimizer.b2": 0.99,
                  "optimizer.decay": 0.99, "gan.g_learning_rate": 1e-3,
                  "optimizer.learning_rate": 1e-3, "train.eval_every": 7}
  assert gan.upgrade({"gan.loss": "hinge"}) == {"gan.loss": "hinge"}
  sgd = gan.upgrade({"loss": "minimax", "optimizer.name": "sgd",
                     "optimizer.b1": 0.5})
  assert sgd["optimizer.momentum"] == 0.5


def test_first_release_run_samples_and_resumes(tmp_path, capsys):
  run = tmp_path / "old"
  run.mkdir()
  (run / "config.json").write_text(json.dumps(V0_CONFIG))
  config = read_run_config(run)
  assert (config.gan.conditional, config.gan.num_classes,
          config.optimizer.decay, config.train.eval_every) == (True, 2, 0.999, 4)
  # A state-only checkpoint, as the first release's Checkpointer wrote it.
  state = GanTask(config).init_state(jax.random.key(0))
  manager = ocp.CheckpointManager(run / "checkpoints", options=(
      ocp.CheckpointManagerOptions(create=True,
                                   enable_async_checkpointing=False)))
  manager.save(0, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  manager.close()

  assert cli.main(["sample", "--workdir", str(run), "--n", "4", "--out",
                   str(tmp_path / "s.npz"), "--label", "1"]) == 0
  with np.load(tmp_path / "s.npz") as f:
    assert f["image"].shape == (4, 16, 16, 1) and set(f["label"]) == {1}
  assert cli.main(["train", "--workdir", str(run), "--resume",
                   "--steps", "2"]) == 0
  resumed = load_run(run)
  assert resumed.step == 2
  saved = json.loads((run / "config.json").read_text())
  assert "model" not in saved and saved["gan"]["width"] == 8
  capsys.readouterr()
