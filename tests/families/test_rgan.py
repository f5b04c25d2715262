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


def test_report_explains_the_discriminator(trained):
  """`discriminator_attributions`: integrated gradients of the mean
  per-step logit, complete against the discriminator applied directly."""
  from medgen_jax.train.task import Report, ReportContext
  run = load_run(trained)
  task, params = run.task, run.state.disc.params
  dataset = load_dataset(run.config.data)
  report = task.report(run.state, dataset, ReportContext(
      step=run.step, options={"seeds": 1, "score_steps": 20}))
  picture, ncols = report.images["discriminator_attributions"]
  assert picture.ndim == 4 and picture.shape[0] == 1 and ncols is None
  assert -1.0 <= picture.min() and picture.max() <= 1.0
  rows = report.tables["Discriminator attributions per channel"]
  assert [r["channel"] for r in rows] == list(run.config.rgan.channel_names)
  for row in rows:
    assert row["real test mean absolute attribution"] > 0
    assert row["generated mean absolute attribution"] > 0
  assert report.facts["discriminator_attributions_max_gap"] < 1e-3
  assert any("discriminator_attributions.png" in n for n in report.notes)

  _, real = task.attribution_windows(dataset, 4, seed=0)
  attr, delta = task.series_attributions(
      Report(), "d", task.critic_score(params), real, ["real"] * 4, "D")
  mask = real["mask"].astype(np.float32)

  def direct(x):  # mean logit over each window's steps, [4]
    logits = np.asarray(task.cfg.discriminator.apply({"params": params}, x))
    return (logits * mask).sum(1) / mask.sum(1)

  gain = direct(real["x"]) - direct(np.zeros_like(real["x"]))
  assert np.abs(gain).max() > 0.05   # there is something to attribute
  # Completeness: sum(attr) = D(x) - D(0). The GRU is smooth, so the
  # 64-point trapezoid rule errs by O(1/64^2) of the path's curvature
  # (about 1e-4 here) and float32 sums of 120 terms by about 1e-6; 1e-3 is
  # far below what a lost channel or step would cost (>= 0.01).
  np.testing.assert_allclose(attr.sum((1, 2)), gain, atol=1e-3)
  np.testing.assert_allclose(delta, attr.sum((1, 2)) - gain, atol=1e-5)


def test_static_noise_is_one_draw_per_series(trained):
  """`--static-noise-dim`: the last features of the generator's input are
  drawn once per series and repeated at every step; the per-step features
  are the same draw as a run without static noise (old runs unchanged)."""
  import dataclasses
  from medgen_jax.families.rgan import step as rgan_step
  cfg = load_run(trained).task.cfg
  key = jax.random.key(3)
  plain = np.asarray(rgan_step.noise(cfg, key, 64, 12))
  assert plain.shape == (64, 12, cfg.noise_dim)
  both = np.asarray(rgan_step.noise(
      dataclasses.replace(cfg, static_noise_dim=3), key, 64, 12))
  assert both.shape == (64, 12, cfg.noise_dim + 3)
  np.testing.assert_array_equal(both[..., :cfg.noise_dim], plain)
  static = both[..., cfg.noise_dim:]
  np.testing.assert_array_equal(static, np.repeat(static[:, :1], 12, 1))
  # One standard normal draw per series and feature.
  assert abs(static[:, 0].mean()) < 0.4 and 0.7 < static[:, 0].std() < 1.3
  assert np.all(np.abs(np.diff(plain, axis=1)) > 0)


def test_static_noise_only_run_samples_smooth_series(tmp_path, medgen):
  """--noise-dim 0 --static-noise-dim 4: each series is a deterministic
  function of one draw, so two samples with the same key are equal and
  different series differ; both dims 0 is refused in one line."""
  work = tmp_path / "static"
  code, _, err = medgen(["train", "rgan", "--steps", "2", "--workdir", work,
                         "--noise-dim", "0", "--static-noise-dim", "4",
                         "--eval-every", "2", "--checkpoint-every", "2"]
                        + ARGS[:6] + ["--set", "rgan.eval_classifier_steps=0",
                                      "--no-progress", "--num-devices", "1"])
  assert code == 0, err
  run = load_run(work)
  assert run.task.cfg.static_noise_dim == 4 and run.task.cfg.noise_dim == 0
  a = run.task.generate(run.state, jax.random.key(1), 8, {})["x_norm"]
  b = run.task.generate(run.state, jax.random.key(1), 8, {})["x_norm"]
  np.testing.assert_array_equal(a, b)
  assert np.abs(a[0] - a[1]).max() > 0
  code, _, err = medgen(["train", "rgan", "--noise-dim", "0", "--workdir",
                         tmp_path / "none"])
  assert code == 2 and "--static-noise-dim" in err and "Traceback" not in err
  assert err.count("medgen: error:") == 1 and not (tmp_path / "none").exists()
