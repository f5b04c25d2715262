"""TimeGAN: its objectives against hand computations, each of its three
phases moves only the networks it trains and ignores padded steps, D's
threshold, and the family end to end (it learns, resume is exact, samples
and errors through the CLI)."""

import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax import cli
from medgen_jax.data.registry import load_dataset
from medgen_jax.families.timegan import step as tg_step
from medgen_jax.families.timegan.task import TimeGanTask
from medgen_jax.metrics import sequence as seq_metrics
from medgen_jax.objectives import timegan as tg
from medgen_jax.train.loop import load_run
from medgen_jax.train.task import get_config
from medgen_jax.train.update import make_gradient_fn

STEPS = 240
ARGS = ["--hidden", "12", "--layers", "2", "--batch-size", "32",
        "--set", "data.sines_examples=600", "--embed-steps", "60",
        "--supervise-steps", "60", "--eval-every", str(STEPS),
        "--checkpoint-every", "120", "--set", "timegan.eval_classifier_steps=0",
        "--log-every", "20", "--no-progress", "--num-devices", "1"]


# -- objectives ------------------------------------------------------------------

def test_moment_gap_by_hand():
  rng = np.random.default_rng(0)
  fake = rng.normal(size=(5, 4, 2)).astype(np.float32)
  real = rng.normal(size=(5, 4, 2)).astype(np.float32)
  mask = np.ones((5, 4), bool)
  mask[3:, 2] = False          # step 2: three examples observed
  mask[:, 3] = False           # step 3: nobody; left out
  got = float(tg.moment_gap(jnp.asarray(fake), jnp.asarray(real),
                            jnp.asarray(mask)))
  gaps = []
  for t in range(3):
    rows = mask[:, t]
    for c in range(2):
      f, r = fake[rows, t, c], real[rows, t, c]
      gaps.append(abs(np.sqrt(f.var() + 1e-6) - np.sqrt(r.var() + 1e-6))
                  + abs(f.mean() - r.mean()))
  np.testing.assert_allclose(got, np.mean(gaps), rtol=1e-5)
  # padded values do not enter
  fake2 = np.where(mask[..., None], fake, 1e3).astype(np.float32)
  np.testing.assert_allclose(
      float(tg.moment_gap(jnp.asarray(fake2), jnp.asarray(real),
                          jnp.asarray(mask))), got, rtol=1e-6)


def test_reconstruction_and_adversarial_terms_by_hand():
  x = jnp.asarray([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])      # [1, 3, 2]
  rec = jnp.asarray([[[1.0, 0.0], [3.0, 5.0], [-7.0, 0.0]]])
  mask = jnp.asarray([[True, True, False]])
  # steps 0 and 1 only: ((0 + 4) / 2 + (0 + 1) / 2) / 2
  np.testing.assert_allclose(tg.reconstruction_error(rec, x, mask), [1.25])
  np.testing.assert_allclose(tg.root(jnp.asarray([4.0])), [2.0], rtol=1e-6)
  logits = jnp.asarray([[0.3, -1.2, 50.0]])
  real = np.mean([np.log1p(np.exp(-0.3)), np.log1p(np.exp(1.2))])
  fake = np.mean([np.log1p(np.exp(0.3)), np.log1p(np.exp(-1.2))])
  np.testing.assert_allclose(tg.real_loss(logits, mask), [real], rtol=1e-6)
  np.testing.assert_allclose(tg.fake_loss(logits, mask), [fake], rtol=1e-6)
  np.testing.assert_allclose(
      tg.generator_adversarial(logits, logits, mask, 0.5), [1.5 * real],
      rtol=1e-6)


# -- the step ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
  """A tiny task, its jitted step, a batch with padded steps and a fresh
  state."""
  c = get_config("timegan")
  c.data.sines_examples = 60
  c.data.window = 8
  c.train.steps = 10
  c.train.num_devices = 1
  g = c.timegan
  g.hidden, g.layers, g.embed_steps, g.supervise_steps = 6, 1, 2, 2
  g.d_threshold = 0.0
  task = TimeGanTask(c, load_dataset(c.data))
  x = np.asarray(load_dataset(c.data).split("train")["x"][:12], np.float32)
  x = x.reshape(tg_step.BATCHES, 4, 8, -1)
  mask = np.ones(x.shape[:3], bool)
  mask[:, 1, 5:] = False
  mask[:, 3, :2] = False
  return task, {"x": x, "mask": mask}, task.init_state(jax.random.key(0))


def _run(step_fn, state, batch, at):
  state = state.replace(step=jnp.asarray(at, jnp.int32))
  return step_fn(state, {k: jnp.asarray(v) for k, v in batch.items()},
                 jax.random.key(1))


def _changed(a, b):
  return not all(np.array_equal(u, v) for u, v in
                 zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_each_phase_trains_its_networks_and_ignores_padding_in_one_program(
    tiny, leaves):
  task, batch, state = tiny
  # the phase is chosen inside the program: one compilation for all three
  step = jax.jit(chex.assert_max_traces(task.train_step, n=1))
  padded = dict(batch, x=np.where(batch["mask"][..., None], batch["x"],
                                  123.0).astype(np.float32))
  moved = {}
  for at, phase in ((0, 1), (2, 2), (4, 3)):
    new, metrics = _run(step, state, batch, at)
    assert int(metrics["phase"]) == phase and int(new.step) == at + 1
    live = tg_step.sampling_params(new.auto.params, new.gen.params)
    if phase < 3:   # before joint training the average is the weights
      chex.assert_trees_all_equal(new.ema, live)
    else:           # the joint phase's first step: decay (1 + 0) / (10 + 0)
      chex.assert_trees_all_close(
          new.ema, jax.tree.map(lambda old, w: 0.1 * old + 0.9 * w,
                                state.ema, live), rtol=1e-6, atol=1e-7)
      assert _changed(new.ema, live)
    # values at masked steps change neither the losses nor the gradients
    again, _ = _run(step, state, padded, at)
    chex.assert_trees_all_equal(leaves(again), leaves(new))
    moved[phase] = {
        "embedder": _changed(new.auto.params["embedder"],
                             state.auto.params["embedder"]),
        "recovery": _changed(new.auto.params["recovery"],
                             state.auto.params["recovery"]),
        "generator": _changed(new.gen.params["generator"],
                              state.gen.params["generator"]),
        "supervisor": _changed(new.gen.params["supervisor"],
                               state.gen.params["supervisor"]),
        "discriminator": _changed(new.disc.params, state.disc.params)}
  assert moved[1] == {"embedder": True, "recovery": True, "generator": False,
                      "supervisor": False, "discriminator": False}
  assert moved[2] == {"embedder": False, "recovery": False,
                      "generator": False, "supervisor": True,
                      "discriminator": False}
  assert all(moved[3].values())


def test_fresh_joint_optimizers_restart_adam_at_the_joint_phase_only(tiny):
  task, batch, state = tiny
  c = task.config.copy_and_resolve_references()
  c.timegan.fresh_joint_optimizers = True
  carried = jax.jit(task.train_step)
  fresh = jax.jit(TimeGanTask(c).train_step)
  # Adam moments from one autoencoder step (phase 1) and one supervisor step
  warm, _ = _run(carried, state, batch, 0)
  warm, _ = _run(carried, warm, batch, 2)
  assert int(warm.auto.opt_state[0].count) == 1
  init = lambda ts: ts.replace(opt_state=ts.tx.init(ts.params))  # noqa: E731
  restarted = warm.replace(auto=init(warm.auto), gen=init(warm.gen))
  close = functools.partial(chex.assert_trees_all_close, rtol=1e-6, atol=1e-7)
  # the joint phase's first step: as if the two groups had new Adams, while
  # D's (never used before) and everything else is as carried
  got, _ = _run(fresh, warm, batch, 4)
  want, _ = _run(carried, restarted, batch, 4)
  close(got, want)
  kept, _ = _run(carried, warm, batch, 4)
  assert int(kept.gen.opt_state[0].count) == 3
  assert int(got.gen.opt_state[0].count) == 2
  assert max(float(jnp.abs(u - v).max()) for u, v in zip(
      jax.tree.leaves(kept.gen.params), jax.tree.leaves(got.gen.params))) > 1e-5
  # any later joint step and the earlier phases: no restart
  for at in (0, 2, 5):
    close(_run(fresh, warm, batch, at)[0], _run(carried, warm, batch, at)[0])


def test_static_noise_is_drawn_once_per_series(tiny):
  task, _, _ = tiny
  import dataclasses
  cfg = dataclasses.replace(task.cfg, noise_dim=3, static_noise_dim=2)
  z = np.asarray(tg_step.noise(cfg, jax.random.key(3), 400, 7))
  assert z.shape == (400, 7, 5) and z.min() >= 0.0 and z.max() < 1.0
  np.testing.assert_array_equal(z[:, :, 3:], np.repeat(z[:, :1, 3:], 7, 1))
  assert np.all(np.ptp(z[:, :, :3], axis=1) > 0)   # fresh at every step
  # U[0, 1): the static values have mean 1/2 and variance 1/12
  static = z[:, 0, 3:]
  assert abs(static.mean() - 0.5) < 0.03 and abs(static.var() - 1 / 12) < 0.01
  # --noise-dim 0 beside static noise: the generator sees static noise only
  c = task.config.copy_and_resolve_references()
  c.timegan.static_noise_dim = 4
  only = TimeGanTask(c)
  assert (only.cfg.noise_dim, only.cfg.static_noise_dim) == (0, 4)
  out = only.generate(only.init_state(jax.random.key(0)), jax.random.key(1),
                      3, {"length": 5})
  assert out["x"].shape == (3, 5, 5) and np.isfinite(out["x"]).all()


def test_discriminator_is_updated_only_above_its_threshold(tiny):
  task, batch, state = tiny
  import dataclasses
  strict = dataclasses.replace(task.cfg, d_threshold=1e6)
  step = jax.jit(tg_step.make_train_step(strict,
                                         make_gradient_fn(task.config)))
  new, metrics = _run(step, state, batch, 4)
  assert float(metrics["d_updated"]) == 0.0 and float(metrics["d_loss"]) > 0
  chex.assert_trees_all_equal(new.disc, state.disc)
  assert _changed(new.gen.params, state.gen.params)


# -- end to end ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  work = tmp_path_factory.mktemp("timegan") / "full"
  assert cli.main(["train", "timegan", "--steps", str(STEPS), "--workdir",
                   str(work)] + ARGS) == 0
  return work


def test_timegan_moves_towards_the_data(trained):
  run = load_run(trained)
  test = load_dataset(run.config.data).split("test")
  real, mask = test["x"], test["mask"]
  key = jax.random.key(5)
  fresh = run.task.init_state(jax.random.key(run.config.seed))
  learned = run.task.generate(run.state, key, len(real), {})
  untrained = run.task.generate(fresh, key, len(real), {})
  m_learned = seq_metrics.mmd(real, learned["x_norm"], mask, learned["mask"])
  m_untrained = seq_metrics.mmd(real, untrained["x_norm"], mask,
                                untrained["mask"])
  assert m_learned < 0.5 * m_untrained, (m_learned, m_untrained)
  assert 0.0 <= learned["x"].min() and learned["x"].max() <= 1.0
  records = [json.loads(l) for l in
             (trained / "metrics.jsonl").read_text().splitlines()]
  phase = {r["step"]: r["phase"] for r in records if "phase" in r}
  assert phase[60] == 1 and phase[120] == 2 and phase[140] == 3
  recon = [r["e_recon"] for r in records if r.get("phase") == 1]
  assert recon[-1] < 0.5 * recon[0]          # the autoencoder learns
  sup = [r["s_loss"] for r in records if r.get("phase") == 2]
  assert sup[-1] < sup[0]                    # the supervisor learns


def test_resume_equals_uninterrupted(trained, tmp_path, medgen, leaves):
  split = tmp_path / "split"
  code, _, err = medgen(["train", "timegan", "--steps", "180", "--workdir",
                          split] + ARGS)
  assert code == 0, err
  code, _, err = medgen(["train", "--workdir", split, "--resume", "--steps",
                          str(STEPS)])
  assert code == 0, err
  chex.assert_trees_all_equal(leaves(load_run(split).state),
                              leaves(load_run(trained).state))


def test_sample_and_bad_settings(trained, tmp_path, medgen):
  out = tmp_path / "s.npz"
  code, _, err = medgen(["sample", "--workdir", trained, "--n", "6",
                          "--length", "30", "--out", out])
  assert code == 0, err
  with np.load(out) as f:
    assert f["x"].shape == (6, 30, 5) and f["mask"].all()
  # the default samples the EMA; --weights last the last weights
  run = load_run(trained)
  z = tg_step.noise(run.task.cfg, jax.random.key(2), 4, 9)
  live = tg_step.sampling_params(run.state.auto.params, run.state.gen.params)
  want = {"average": tg_step.synthesize(run.task.cfg, run.state.ema, z),
          "last": tg_step.synthesize(run.task.cfg, live, z)}
  for weights, x in want.items():
    got = run.task.generate(run.state, jax.random.key(2), 4,
                            {"length": 9, "weights": weights})
    np.testing.assert_allclose(got["x_norm"], x, rtol=1e-5, atol=1e-6)
  assert np.abs(want["average"] - want["last"]).max() > 1e-4
  code, _, err = medgen(["sample", "--workdir", trained, "--n", "2",
                         "--weights", "mean", "--out", tmp_path / "w.npz"])
  assert code == 2 and "--weights 'mean'" in err and "average, last" in err
  for flags, words in (
      (["--steps", "100"], "leaves no joint training"),
      (["--condition", "label"], "unconditional"),
      (["--lr-schedule", "linear"], "constant"),
      (["--output", "tanh"], "auto, linear, sigmoid"),
      (["--d-threshold", "-1"], "timegan.d_threshold"),
      (["--static-noise-dim", "-2"], "--static-noise-dim"),
      (["--set", "timegan.ema_decay=1.0"], "timegan.ema_decay")):
    code, _, err = medgen(["train", "timegan", "--workdir", tmp_path / "w"]
                          + flags)
    assert code == 2 and words in err and "Traceback" not in err, (flags, err)
    assert len([l for l in err.splitlines() if "error" in l]) == 1, err


def test_report_explains_the_latent_discriminator(trained):
  """Integrated gradients of D(embedder(x)), complete against the two
  networks applied directly."""
  from medgen_jax.train.task import Report, ReportContext
  run = load_run(trained)
  task, state = run.task, run.state
  dataset = load_dataset(run.config.data)
  report = task.report(state, dataset, ReportContext(
      step=run.step, options={"seeds": 1, "score_steps": 20}))
  assert "test_discriminative_mean" in report.scalars
  rows = report.tables["Discriminator attributions per channel"]
  assert [r["channel"] for r in rows] == list(run.config.timegan.channel_names)
  assert report.facts["discriminator_attributions_max_gap"] < 1e-3
  _, real = task.attribution_windows(dataset, 4, seed=0)
  score = task.critic_score(state.auto.params, state.disc.params)
  attr, _ = task.series_attributions(Report(), "d", score, real, ["r"] * 4,
                                     "D")
  mask = real["mask"].astype(np.float32)

  def direct(x):
    h = task.cfg.apply("embedder", state.auto.params["embedder"], x)
    logits = np.asarray(task.cfg.apply("discriminator", state.disc.params,
                                       h))[..., 0]
    return (logits * mask).sum(1) / mask.sum(1)

  gain = direct(real["x"]) - direct(np.zeros_like(real["x"]))
  assert np.abs(gain).max() > 0.01
  np.testing.assert_allclose(attr.sum((1, 2)), gain, atol=1e-3)
