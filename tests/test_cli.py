"""The `medgen` command: bad input gives one clear line and a non-zero exit."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from medgen_jax import cli

TINY = ["--image-size", "16", "--width", "8", "--latent-dim", "8",
        "--batch-size", "16", "--num-devices", "1", "--no-progress",
        "--set", "data.phantoms.num_train=64",
        "--set", "data.phantoms.num_val=16", "--set", "data.phantoms.num_test=16",
        "--set", "train.num_samples=4"]


def run_cli(args, capsys):
  code = cli.main(args)
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
  assert code != 0
  lines = [l for l in err.strip().splitlines() if l.startswith("medgen: error:")]
  assert len(lines) == 1, err
  assert "Traceback" not in err
  for f in fragments:
    assert f in lines[0], lines[0]


def test_train_then_sample(tmp_path, capsys):
  work = tmp_path / "run"
  code, out, err = run_cli(["train", "gan", *TINY, "--steps", "4",
                            "--log-every", "2", "--sample-every", "4",
                            "--checkpoint-every", "2", "--conditional",
                            "--loss", "hinge", "--workdir", str(work)], capsys)
  assert code == 0, err
  assert "done at step 4" in out
  config = json.loads((work / "config.json").read_text())
  assert config["loss"] == "hinge" and config["model"]["num_classes"] == 2
  assert (work / "samples" / "step_0000004.png").exists()

  grid = tmp_path / "grid.png"
  code, out, err = run_cli(["sample", "--workdir", str(work), "--n", "9",
                            "--out", str(grid), "--label", "1"], capsys)
  assert code == 0, err
  from PIL import Image
  img = np.asarray(Image.open(grid))
  assert img.ndim == 2 and img.shape[0] == img.shape[1] and img.std() > 0

  # Resume to more steps continues from the checkpoint.
  code, out, err = run_cli(["train", "gan", *TINY, "--steps", "6",
                            "--conditional", "--loss", "hinge",
                            "--log-every", "2", "--checkpoint-every", "2",
                            "--sample-every", "4",
                            "--workdir", str(work), "--resume"], capsys)
  assert code == 0, err
  assert "done at step 6" in out


@pytest.mark.parametrize("args,fragments", [
    (["--data", "pneumonia-mnist"], ["unknown dataset", "pneumoniamnist"]),
    (["--loss", "wgan"], ["unknown GAN loss", "wgan-gp"]),
    (["--set", "model.widht=3"], ["no field 'model.widht'"]),
    (["--set", "model.width=abc"], ["cannot read 'abc'", "model.width"]),
    (["--set", "nokey"], ["expected KEY=VALUE"]),
    (["--image-size", "30"], ["--image-size", "not base"]),
    (["--batch-size", "1000"], ["fewer than --batch-size 1000"]),
    (["--loss", "wgan-gp", "--set", "model.d_norm=batch"], ["batch norm"]),
    (["--config", "missing.py"], ["--config missing.py", "not found"]),
    (["--steps", "0"], ["train.steps must be >= 1"]),
])
def test_bad_train_arguments(tmp_path, capsys, args, fragments):
  code, _, err = run_cli(["train", "gan", *TINY, "--workdir",
                          str(tmp_path / "w"), *args], capsys)
  assert_one_line_error(code, err, *fragments)
  # Nothing was written for a run that never started.
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_bad_medmnist_inputs(tmp_path, capsys):
  d = tmp_path / "data"
  d.mkdir()
  code, _, err = run_cli(["train", "gan", "--data", "pneumoniamnist",
                          "--data-dir", str(d), "--workdir",
                          str(tmp_path / "w")], capsys)
  assert_one_line_error(code, err, str(d / "pneumoniamnist.npz"))

  bad = np.zeros((10, 28, 28), np.float32)
  bad[3, 4, 5] = np.nan
  np.savez(d / "pneumoniamnist.npz", train_images=bad,
           train_labels=np.zeros((10, 1), np.uint8))
  code, _, err = run_cli(["train", "gan", "--data", "pneumoniamnist",
                          "--data-dir", str(d), "--workdir",
                          str(tmp_path / "w")], capsys)
  assert_one_line_error(code, err, "NaN", "train_images")

  np.savez(d / "pneumoniamnist.npz", images=np.zeros((10, 28, 28), np.uint8))
  code, _, err = run_cli(["train", "gan", "--data", "pneumoniamnist",
                          "--data-dir", str(d), "--workdir",
                          str(tmp_path / "w")], capsys)
  assert_one_line_error(code, err, "train_images")


def test_resume_needs_workdir(capsys):
  code, _, err = run_cli(["train", "gan", *TINY, "--resume"], capsys)
  assert_one_line_error(code, err, "--resume needs --workdir")


def test_sample_without_run(tmp_path, capsys):
  code, _, err = run_cli(["sample", "--workdir", str(tmp_path)], capsys)
  assert_one_line_error(code, err, "config.json")


def test_console_script_entry_point(tmp_path):
  # The installed command (not just the function) works end to end.
  env = dict(os.environ, XLA_FLAGS="")
  proc = subprocess.run(
      [sys.executable, "-m", "medgen_jax.cli", "train", "gan", *TINY,
       "--steps", "2", "--log-every", "1", "--workdir", str(tmp_path / "r")],
      capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr
  proc = subprocess.run(
      [sys.executable, "-m", "medgen_jax.cli", "train", "gan", "--data",
       "nope", "--workdir", str(tmp_path / "r2")],
      capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "medgen: error: unknown dataset")


def test_config_files_and_overrides(tmp_path):
  from medgen_jax.train.gan_task import GanTask
  py = tmp_path / "exp.py"
  py.write_text(
      "from medgen_jax.configs import gan\n"
      "def get_config():\n"
      "  c = gan.get_config()\n"
      "  c.model.width = 24\n"
      "  c.loss = 'hinge'\n"
      "  return c\n")
  args = cli.make_parser().parse_args(
      ["train", "gan", "--config", str(py), "--set", "ema_decay=0.5",
       "--steps", "7", "--conditional"])
  c = cli.build_train_config(args, GanTask)
  assert (c.model.width, c.loss, c.ema_decay, c.train.steps,
          c.model.conditional) == (24, "hinge", 0.5, 7, True)

  js = tmp_path / "config.json"
  js.write_text(json.dumps({"loss": "wgan-gp", "model": {"width": 12},
                            "train": {"steps": 9}}))
  args = cli.make_parser().parse_args(
      ["train", "gan", "--config", str(js), "--set", "model.upsample=transpose"])
  c = cli.build_train_config(args, GanTask)
  assert (c.loss, c.model.width, c.train.steps, c.model.upsample) == (
      "wgan-gp", 12, 9, "transpose")


def test_datasets_command(capsys):
  code, out, _ = run_cli(["datasets"], capsys)
  assert code == 0
  names = out.split()
  assert {"phantoms", "pneumoniamnist", "bloodmnist", "tfds:NAME"} <= set(names)


def test_config_json_with_wrong_type(tmp_path, capsys):
  js = tmp_path / "bad.json"
  js.write_text(json.dumps({"model": {"width": "wide"}}))
  code, _, err = run_cli(["train", "gan", "--config", str(js)], capsys)
  assert_one_line_error(code, err, "model.width", "'wide'")


def test_real_pneumoniamnist_run_logs_checksum_once(shared_data_dir, tmp_path,
                                                    capsys):
  code, out, err = run_cli(
      ["train", "gan", "--data", "pneumoniamnist", "--data-dir",
       str(shared_data_dir / "medmnist"), "--steps", "1", "--width", "8",
       "--latent-dim", "8", "--batch-size", "8", "--num-devices", "1",
       "--no-progress", "--conditional", "--workdir", str(tmp_path / "r")],
      capsys)
  assert code == 0, err
  warnings = [l for l in err.splitlines() if "differs from the official" in l]
  assert len(warnings) == 1 and warnings[0].startswith("medgen: "), err
  config = json.loads((tmp_path / "r" / "config.json").read_text())
  assert config["model"]["num_classes"] == 2 and config["model"]["channels"] == 1
