"""Robust VAE options: heavy-tailed image likelihoods train, score in
bits/dim and sample; the denoising criterion corrupts only the encoder's
input; bad settings are refused in one line naming the flag."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax import cli
from medgen_jax.configs import vae as vae_config
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.errors import ConfigError
from medgen_jax.families.vae import VaeTask
from medgen_jax.families.vae import step as vae_step
from medgen_jax.models.vae import VAE
from medgen_jax.objectives import elbo as elbo_lib
from medgen_jax.train.loop import train_and_evaluate


@DATASETS.register("test_robust_expression")
def _expression(data_config):
  del data_config
  x = np.log1p(np.random.default_rng(0).random((64, 5)) * 10)
  return Dataset("test_robust_expression", {"train": Split(
      {"x": x.astype(np.float32)})}, source="simulated", modality="expression",
                 metadata={"gene_names": tuple("abcde"), "matrix": "X",
                           "matrix_kind": "log_normalized"})


def _image_config(**vae):
  c = vae_config.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train, c.data.phantoms.num_val = 128, 32
  c.data.phantoms.num_test = 0
  c.vae.width, c.vae.latent_dim = 8, 4
  c.vae.iwae_samples, c.vae.eval_examples = 2, 32
  c.train.batch_size, c.train.num_devices, c.train.progress = 16, 1, False
  c.train.steps, c.train.eval_every, c.train.checkpoint_every = 3, 3, 3
  c.train.log_every, c.train.num_samples = 3, 4
  for k, v in vae.items():
    c.vae[k] = v
  return c


def test_tiny_run_trains_scores_and_samples(tmp_path):
  """The whole path (train, held-out bits/dim, checkpoint, CLI samples) with
  the Student-t likelihood; the Laplace one shares every line of it but its
  log-probability, checked in a train step below."""
  likelihood = "discretized_student_t"
  work = tmp_path / likelihood
  out = train_and_evaluate(_image_config(likelihood=likelihood,
                                         student_t_df=4.0,
                                         denoise="saltpepper:0.1"), work)
  last = out["last_metrics"]
  assert np.isfinite(last["loss"]) and np.isfinite(last["eval/val_elbo"])
  # A normalised likelihood of 8-bit pixels: bits/dim is reported, and an
  # untrained-ish model sits below 8 bits (uniform) but well above 0.
  assert 0.5 < last["eval/val_bits_per_dim"] < 8.5
  config = json.loads((work / "config.json").read_text())
  assert config["vae"]["resolved_likelihood"] == likelihood
  assert config["vae"]["student_t_df"] == 4.0
  # As many as the run's own samples: the decoder's program is then the
  # one the run compiled (the compilation cache), not a second one.
  assert cli.main(["sample", "--workdir", str(work), "--n", "4", "--out",
                   str(tmp_path / "s.npz")]) == 0
  with np.load(tmp_path / "s.npz") as f:
    images = f["image"]
  assert images.shape == (4, 16, 16, 1) and images.dtype == np.uint8


@pytest.fixture(scope="module")
def image_task_parts():
  """A phantom dataset, one batch and an initial state for the step tests."""
  c = _image_config()
  ds = load_dataset(c.data)
  task = VaeTask(c, ds)
  state = jax.jit(task.init_state)(jax.random.key(0))
  train = ds.split("train")
  batch = task.make_batch(train, IndexSampler(len(train), 16, seed=0), 0)
  return ds, state, batch


def _task(ds, **vae):
  return VaeTask(_image_config(**vae), ds)


def test_zero_noise_equals_plain_training(image_task_parts):
  ds, state, batch = image_task_parts
  key = jax.random.key(3)
  _, plain = jax.jit(_task(ds).train_step)(state, batch, key)
  _, zero = jax.jit(_task(ds, denoise="gaussian:0")
                    .train_step)(state, batch, key)
  _, none = jax.jit(_task(ds, denoise="saltpepper:0")
                    .train_step)(state, batch, key)
  for m in (zero, none):
    assert float(m["loss"]) == float(plain["loss"])
    assert float(m["grad_norm"]) == float(plain["grad_norm"])


def test_laplace_step_trains_on_its_own_likelihood(image_task_parts):
  ds, state, batch = image_task_parts
  key = jax.random.key(3)
  task = _task(ds, likelihood="discretized_laplace")
  assert task.likelihood.name == "discretized_laplace"
  new_state, metrics = jax.jit(task.train_step)(state, batch, key)
  _, plain = jax.jit(_task(ds).train_step)(state, batch, key)
  assert np.isfinite(float(metrics["loss"]))
  assert float(metrics["loss"]) != float(plain["loss"])
  assert int(new_state.step) == 1


def test_noise_corrupts_the_encoder_input_not_the_target(image_task_parts):
  ds, state, batch = image_task_parts
  key = jax.random.key(3)
  task = _task(ds, denoise="gaussian:0.5")
  new_state, metrics = jax.jit(task.train_step)(state, batch, key)
  _, plain = jax.jit(_task(ds).train_step)(state, batch, key)
  assert float(metrics["grad_norm"]) != float(plain["grad_norm"])
  # The step's loss by hand: encoder on the corrupted copy drawn from the
  # loss key, log p(x|z) of the CLEAN batch, same ELBO sample key.
  k = jax.random.fold_in(key, state.step)
  x = jnp.asarray(batch["x"])
  noisy = vae_step.corrupt(jax.random.fold_in(k, vae_step._CORRUPTION_STREAM),
                           x, "gaussian", 0.5, -1.0, 1.0)
  assert float(jnp.abs(noisy - x).mean()) > 0.2
  assert float(noisy.min()) >= -1.0 and float(noisy.max()) <= 1.0
  variables = {"params": state.params}
  mean, log_var = task.model.apply(variables, noisy, None, method=VAE.encode)

  def log_lik(z):
    out = task.model.apply(variables, z, None, None, method=VAE.decode)
    return task.likelihood.log_prob(x, out)

  terms = elbo_lib.elbo(log_lik, mean, log_var, k)
  np.testing.assert_allclose(float(metrics["loss"]),
                             float(-jnp.mean(terms.elbo)), rtol=1e-5)
  # Scoring the noisy copy instead would give a different number.
  wrong = elbo_lib.elbo(
      lambda z: task.likelihood.log_prob(noisy, task.model.apply(
          variables, z, None, None, method=VAE.decode)), mean, log_var, k)
  assert abs(float(-jnp.mean(wrong.elbo)) - float(metrics["loss"])) > 1.0
  # Held-out scores never corrupt: equal to a non-denoising task's.
  plain_task = _task(ds)
  chunk = {k_: v[:32] for k_, v in batch.items()}
  pad = {k_: np.concatenate([v, v])[:32] for k_, v in chunk.items()}
  a = task._scores(new_state.params, pad, jax.random.key(5))
  b = plain_task._scores(new_state.params, pad, jax.random.key(5))
  chex.assert_trees_all_equal(a, b)


def test_saltpepper_rate_and_levels():
  x = jnp.zeros((64, 16, 16, 1))
  y = np.asarray(vae_step.corrupt(jax.random.key(0), x, "saltpepper", 0.2,
                                  -1.0, 1.0))
  assert set(np.unique(y)) == {-1.0, 0.0, 1.0}
  assert abs((y != 0).mean() - 0.2) < 0.01
  assert abs((y == 1).mean() - 0.1) < 0.01
  # Independent per example: no two examples share a corruption pattern.
  flat = (y != 0).reshape(64, -1)
  assert len({r.tobytes() for r in flat}) == 64


@pytest.mark.parametrize("spec,match", [
    ("gauss:0.1", "expected gaussian:SIGMA"),
    ("gaussian", "expected gaussian:SIGMA"),
    ("gaussian:abc", "is not a number"),
    ("gaussian:-1", "SIGMA must be a finite number >= 0"),
    ("saltpepper:1.5", r"P must be in \[0, 1\]"),
])
def test_bad_denoise_is_refused(spec, match):
  c = _image_config(denoise=spec)
  with pytest.raises(ConfigError, match=match) as e:
    VaeTask.validate_config(c)
  assert "vae.denoise (--denoise)" in str(e.value)
  assert "\n" not in str(e.value)


def test_bad_df_and_expression_misuse_are_one_line(tmp_path, capsys):
  code = cli.main(["train", "vae", "--likelihood", "discretized_student_t",
                   "--student-t-df", "0", "--workdir", str(tmp_path / "a")])
  err = capsys.readouterr().err
  assert code == 2 and "vae.student_t_df (--student-t-df)" in err
  for name in ("discretized_laplace", "discretized_student_t"):
    code = cli.main(["train", "vae", "--data", "test_robust_expression",
                     "--likelihood", name, "--set", "data.val_fraction=0",
                     "--set", "data.test_fraction=0",
                     "--workdir", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert code == 2 and f"--likelihood {name} does not fit expression" in err
    assert err.count("medgen: error:") == 1 and not (tmp_path / name).exists()
  code = cli.main(["train", "vae", "--data", "test_robust_expression",
                   "--denoise", "saltpepper:0.1", "--set",
                   "data.val_fraction=0", "--set", "data.test_fraction=0",
                   "--workdir", str(tmp_path / "sp")])
  err = capsys.readouterr().err
  assert code == 2 and "--denoise gaussian:SIGMA" in err
