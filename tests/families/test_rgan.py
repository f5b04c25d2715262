"""The recurrent GAN family end to end: it moves towards the data, the
supervised option trains its supervisor, resume is exact, samples through
the CLI."""

import json

import chex
import jax
import numpy as np
import pytest

from medgen_jax import cli
from medgen_jax.data.registry import load_dataset
from medgen_jax.metrics import sequence as seq_metrics
from medgen_jax.train.loop import load_run

STEPS = 200
ARGS = ["--hidden", "16", "--layers", "1", "--batch-size", "32",
        "--set", "data.sines_examples=600", "--eval-every", str(STEPS),
        "--checkpoint-every", "100", "--set", "rgan.eval_classifier_steps=0",
        "--supervised", "1", "--log-every", "20", "--no-progress",
        "--num-devices", "1"]



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  work = tmp_path_factory.mktemp("rgan") / "full"
  assert cli.main(["train", "rgan", "--steps", str(STEPS), "--workdir",
                   str(work)] + ARGS) == 0
  return work


def test_generator_moves_towards_the_data(trained):
  run = load_run(trained)
  task = run.task
  test = load_dataset(run.config.data).split("test")
  real, mask = test["x"], test["mask"]
  key = jax.random.key(5)
  fresh = task.init_state(jax.random.key(run.config.seed))
  learned = task.generate(run.state, key, len(real), {})
  untrained = task.generate(fresh, key, len(real), {})
  m_learned = seq_metrics.mmd(real, learned["x_norm"], mask, learned["mask"])
  m_untrained = seq_metrics.mmd(real, untrained["x_norm"], mask,
                                untrained["mask"])
  # (200 steps: measured 0.54 against 0.82; the floor, train vs test real
  # windows, is 0.00)
  assert m_learned < 0.8 * m_untrained, (m_learned, m_untrained)
  # sines are in [0, 1]: the generator's output is squashed there
  assert 0.0 <= learned["x"].min() and learned["x"].max() <= 1.0
  records = [json.loads(l) for l in
             (trained / "metrics.jsonl").read_text().splitlines()]
  s_losses = [r["s_loss"] for r in records if "s_loss" in r]
  assert s_losses[-1] < 0.5 * s_losses[0]   # the supervisor learns dynamics
  assert "g_supervised" in records[-1] and "eval/val_mmd" in records[-1]
  assert (trained / "traces" / f"step_{STEPS:07d}.png").is_file()


def test_resume_equals_uninterrupted(trained, tmp_path, medgen, leaves):
  split = tmp_path / "split"
  code, _, err = medgen(["train", "rgan", "--steps", "100", "--workdir",
                          split] + ARGS)
  assert code == 0, err
  code, _, err = medgen(["train", "--workdir", split, "--resume", "--steps",
                          str(STEPS)])
  assert code == 0, err
  chex.assert_trees_all_equal(leaves(load_run(split).state),
                              leaves(load_run(trained).state))


def test_sample_and_bad_flags(trained, tmp_path, medgen):
  out = tmp_path / "s.npz"
  code, _, err = medgen(["sample", "--workdir", trained, "--n", "6",
                          "--length", "30", "--out", out])
  assert code == 0, err
  with np.load(out) as f:
    assert f["x"].shape == (6, 30, 5) and f["mask"].all()
  code, _, err = medgen(["train", "rgan", "--loss", "wgan-gp", "--workdir",
                          tmp_path / "w"])
  assert code == 2 and "nonsaturating" in err and "Traceback" not in err
  code, _, err = medgen(["sample", "--workdir", trained, "--length", "1",
                          "--out", out])
  assert code == 2 and "--length" in err
