"""A second family, registered from a test module (tests/families/
linear_gaussian.py), trains, resumes and samples through the real loop and
CLI, neither of which knows it."""

import json
import os
import pathlib
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

import linear_gaussian as lg  # registers the family and its dataset
from medgen_jax import cli
from medgen_jax.train.loop import load_run


def run_cli(args, capsys):
  code = cli.main([str(a) for a in args])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  work = tmp_path_factory.mktemp("lg") / "full"
  assert cli.main(["train", "linear_gaussian", "--latent", "2",
                   "--workdir", str(work)]) == 0
  return work


def test_learns_the_gaussian(trained):
  run = load_run(trained)
  p = jax.tree.map(np.asarray, run.state.params)
  cov = p["w"] @ p["w"].T + np.exp(2 * p["log_sigma"]) * np.eye(lg.DIM)
  # Against the maximum-likelihood answer on the training rows (the sample
  # mean and covariance, which a rank-2 + isotropic model can express up to
  # the sampling noise of 1024 rows) and against the true parameters.
  x = lg.load_gaussian_table(run.config.data).split("train")["x"]
  np.testing.assert_allclose(p["b"], x.mean(0), atol=0.05)
  np.testing.assert_allclose(cov, np.cov(x.T, bias=True), atol=0.1)
  np.testing.assert_allclose(cov, lg.true_covariance(), atol=0.25)
  records = [json.loads(l) for l in
             (trained / "metrics.jsonl").read_text().splitlines()]
  val = [r["eval/val_nll"] for r in records if "eval/val_nll" in r]
  # Held-out NLL is close to the true density's: 0.5 (d log 2 pi + logdet
  # Sigma + d) per row in expectation.
  true_nll = 0.5 * (lg.DIM * np.log(2 * np.pi)
                    + np.linalg.slogdet(lg.true_covariance())[1] + lg.DIM)
  assert abs(val[-1] - true_nll) < 0.15, (val, true_nll)
  assert run.metadata["fold"] == 0  # the task's checkpoint metadata


def test_resume_equals_uninterrupted(trained, tmp_path, capsys):
  split = tmp_path / "split"
  code, _, err = run_cli(["train", "linear_gaussian", "--latent", "2",
                          "--steps", "200", "--workdir", split], capsys)
  assert code == 0, err
  code, _, err = run_cli(["train", "--workdir", split, "--resume",
                          "--steps", "400"], capsys)
  assert code == 0, err
  chex.assert_trees_all_equal(_leaves(load_run(split).state),
                              _leaves(load_run(trained).state))


def test_sample_arrays_and_options(trained, tmp_path, capsys):
  out = tmp_path / "s.npz"
  code, _, err = run_cli(["sample", "--workdir", trained, "--n", "4000",
                          "--shift", "10", "--out", out], capsys)
  assert code == 0, err
  run = load_run(trained)
  p = jax.tree.map(np.asarray, run.state.params)
  with np.load(out) as f:
    x = f["x"]
  assert x.shape == (4000, lg.DIM)
  np.testing.assert_allclose(x.mean(0), p["b"] + 10, atol=0.1)
  # Pictures are a family's choice: this one draws none, and says so.
  code, _, err = run_cli(["sample", "--workdir", trained, "--out",
                          tmp_path / "s.png"], capsys)
  assert code == 2 and "draws no pictures" in err


def test_own_flags_help_and_validation(tmp_path, capsys):
  code, out, _ = run_cli(["train", "linear_gaussian", "--help"], capsys)
  assert code == 0 and "--latent" in out and "--loss" not in out
  code, out, _ = run_cli(["train", "gan", "--help"], capsys)
  assert "--latent " not in out
  code, _, err = run_cli(["train", "linear_gaussian", "--latent", "9",
                          "--workdir", tmp_path / "w"], capsys)
  assert code == 2 and "linear_gaussian.latent_dim must be < 5" in err
  assert not (tmp_path / "w").exists()
  code, _, err = run_cli(["train", "linear_gaussian", "--data", "phantoms",
                          "--workdir", tmp_path / "w"], capsys)
  # An image dataset does not fit this family: refused before training.
  assert code != 0 and "image dataset" in err, err


def test_found_by_name_in_a_new_process(trained):
  """$MEDGEN_PLUGINS makes a family outside the package visible to a fresh
  `medgen` process."""
  here = pathlib.Path(__file__).parent
  env = dict(os.environ, MEDGEN_PLUGINS="linear_gaussian", XLA_FLAGS="",
             PYTHONPATH=os.pathsep.join([str(here),
                                         os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, "-m", "medgen_jax.cli", "families"],
                        capture_output=True, text=True, env=env, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert {"gan", "linear_gaussian"} <= set(proc.stdout.split())
