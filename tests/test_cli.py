"""The `medgen` command: train, resume, sample, config round trip, help."""

import json
import os
import pathlib
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from medgen_jax import cli

TINY = ["--image-size", "16", "--width", "8", "--latent-dim", "8",
        "--batch-size", "16", "--num-devices", "1", "--no-progress",
        "--set", "data.phantoms.num_train=64",
        "--set", "data.phantoms.num_val=16", "--set", "data.phantoms.num_test=16",
        "--set", "train.num_samples=4"]


def run_cli(args, capsys):
  code = cli.main([str(a) for a in args])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments, exit_code=None):
  assert code != 0
  if exit_code is not None:
    assert code == exit_code, (code, err)
  lines = [l for l in err.strip().splitlines() if l.startswith("medgen: error:")]
  assert len(lines) == 1, err
  assert "Traceback" not in err and "usage:" not in err, err
  for f in fragments:
    assert f in lines[0], lines[0]


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_train_sample_resume(tmp_path, capsys):
  work = tmp_path / "run"
  code, out, err = run_cli(["train", "gan", *TINY, "--steps", "4",
                            "--log-every", "2", "--sample-every", "4",
                            "--checkpoint-every", "2", "--conditional",
                            "--loss", "hinge", "--workdir", work], capsys)
  assert code == 0, err
  assert "done at step 4" in out
  config = json.loads((work / "config.json").read_text())
  assert config["gan"]["loss"] == "hinge" and config["gan"]["num_classes"] == 2
  assert (work / "samples" / "step_0000004.png").exists()

  grid = tmp_path / "grid.png"
  code, out, err = run_cli(["sample", "--workdir", work, "--n", "9",
                            "--out", grid, "--label", "1"], capsys)
  assert code == 0, err
  img = np.asarray(Image.open(grid))
  assert img.ndim == 2 and img.shape[0] == img.shape[1] and img.std() > 0

  # Arrays, in batches: 70 samples in batches of 32 (3 batches, compiled
  # once), uint8 images and the labels that were asked for.
  arrays = tmp_path / "samples.npz"
  code, out, err = run_cli(["sample", "--workdir", work, "--n", "70",
                            "--batch-size", "32", "--out", arrays], capsys)
  assert code == 0, err
  with np.load(arrays) as f:
    images, labels = f["image"], f["label"]
  assert images.shape == (70, 16, 16, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, np.arange(70) % 2)
  assert len({images[i].tobytes() for i in range(70)}) == 70
  # The first batch does not depend on how many samples were asked for.
  code, _, err = run_cli(["sample", "--workdir", work, "--n", "5",
                          "--batch-size", "32", "--out", tmp_path / "few.npz"],
                         capsys)
  assert code == 0, err
  with np.load(tmp_path / "few.npz") as f:
    np.testing.assert_array_equal(f["image"], images[:5])

  # --resume needs only the workdir (and what changes); the family, data
  # and every flag come from the run's config.json.
  before = (work / "config.json").read_text()
  code, out, err = run_cli(["train", "--workdir", work, "--resume",
                            "--steps", "6"], capsys)
  assert code == 0, err
  assert "done at step 6" in out
  after = json.loads((work / "config.json").read_text())
  assert after["train"]["steps"] == 6
  assert {**after, "train": None} == {**json.loads(before), "train": None}
  code, out, err = run_cli(["train", "gan", "--workdir", work, "--resume",
                            "--steps", "6"], capsys)
  assert code == 0, err  # already at step 6: nothing to do


def test_config_json_round_trips(tiny_gan_run, tmp_path, capsys):
  """A run's config.json, passed back through --config, reproduces the run
  bit for bit."""
  first = tiny_gan_run["workdir"]
  code, out, err = run_cli(["train", "gan", "--config", first / "config.json",
                            "--workdir", tmp_path / "again"], capsys)
  assert code == 0, err
  a = cli_state(first)
  b = cli_state(tmp_path / "again")
  chex.assert_trees_all_equal(_leaves(a), _leaves(b))
  assert (json.loads((tmp_path / "again" / "config.json").read_text())
          == json.loads((first / "config.json").read_text()))


def cli_state(workdir):
  from medgen_jax.train.loop import load_run
  return load_run(workdir).state


def test_family_help_shows_only_its_flags(capsys):
  code, out, _ = run_cli(["train", "gan", "--help"], capsys)
  assert code == 0
  for flag in ("--loss", "--d-steps", "--conditional", "--image-size",
               "--data", "--steps", "--resume", "--set"):
    assert flag in out
  code, out, _ = run_cli(["train", "--help"], capsys)
  assert code == 0 and "gan" in out
  code, out, _ = run_cli(["families"], capsys)
  assert code == 0 and "gan" in out.split()


def test_negative_values_are_values_not_flags(tmp_path, capsys):
  code, _, err = run_cli(["train", "gan", *TINY, "--g-lr", "-1e-3",
                          "--workdir", tmp_path / "w"], capsys)
  assert_one_line_error(code, err, "gan.g_learning_rate", "-0.001",
                        exit_code=2)


def test_datasets_command(capsys):
  code, out, _ = run_cli(["datasets"], capsys)
  assert code == 0
  names = out.split()
  assert {"phantoms", "pneumoniamnist", "bloodmnist", "tfds:NAME"} <= set(names)


def test_console_script_entry_point(tmp_path):
  # The command as a new process (not just the function) works end to end:
  # it parses, imports the package, reads a file and prints; a bad name is
  # one line with exit code 2. (Training in-process is tested above.)
  env = dict(os.environ, XLA_FLAGS="")
  night = tmp_path / "night.txt"
  night.write_text("W\nW\nN1\nN2\nN2\nN3\nREM\nW\n")
  proc = subprocess.run(
      [sys.executable, "-m", "medgen_jax.cli", "sleep-metrics", str(night),
       "--json"], capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert json.loads(proc.stdout)["rows"][0]["TST"] == 2.5   # 5 epochs of 30 s
  proc = subprocess.run(
      [sys.executable, "-m", "medgen_jax.cli", "train", "gan", "--data",
       "nope", "--workdir", str(tmp_path / "r2")],
      capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "medgen: error: unknown dataset")


def test_real_pneumoniamnist_run_logs_checksum_once(shared_data_dir, tmp_path,
                                                    capsys):
  code, out, err = run_cli(
      ["train", "gan", "--data", "pneumoniamnist", "--data-dir",
       shared_data_dir / "medmnist", "--steps", "1", "--width", "8",
       "--latent-dim", "8", "--batch-size", "8", "--num-devices", "1",
       "--no-progress", "--conditional", "--workdir", tmp_path / "r"],
      capsys)
  assert code == 0, err
  warnings = [l for l in err.splitlines() if "differs from the official" in l]
  assert len(warnings) == 1 and warnings[0].startswith("medgen: "), err
  config = json.loads((tmp_path / "r" / "config.json").read_text())
  assert config["gan"]["num_classes"] == 2 and config["gan"]["channels"] == 1


def test_start_up_imports_no_jax_and_ctrl_c_is_one_line(tmp_path):
  """The command module loads without JAX, so a Ctrl-C while JAX and Flax
  are imported (inside main) gets the one-line message, not a traceback."""
  import signal
  import time
  env = dict(os.environ, XLA_FLAGS="")
  proc = subprocess.run(
      [sys.executable, "-c", "import sys, medgen_jax.cli; "
       "print(sorted(m for m in ('jax', 'flax', 'numpy') if m in sys.modules))"],
      capture_output=True, text=True, env=env, timeout=60)
  assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
  # Interrupt `medgen train gan` early and late in its start-up imports:
  # once the command has begun loading numpy (the first heavy library,
  # inside main), once jaxlib, and 1.5 s after that. Waiting for the
  # library, not a fixed delay, keeps a loaded machine from landing the
  # signal in the interpreter's own start-up (site.py), which no program
  # can answer in one line.
  for i, (library, extra) in enumerate((("numpy", 0.0), ("jaxlib", 0.0),
                                        ("jaxlib", 1.5))):
    # Ctrl-C's default action, as in a terminal: a test runner's worker
    # process (pytest-xdist) may ignore SIGINT, and a child inherits an
    # ignored signal (a handled one starts at its default).
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
      proc = subprocess.Popen(
          [sys.executable, "-m", "medgen_jax.cli", "train", "gan",
           "--workdir", str(tmp_path / f"w{i}")], stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, text=True, env=env)
    finally:
      signal.signal(signal.SIGINT, saved)
    if not _wait_until_mapped(proc.pid, library):
      proc.kill()
      proc.communicate()
      pytest.skip("needs /proc/PID/maps to see the command's libraries load")
    time.sleep(extra)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (library, extra, err)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1].startswith("medgen: interrupted"), err


def _wait_until_mapped(pid: int, library: str, timeout: float = 60) -> bool:
  """Waits until process `pid` has mapped a shared object whose path names
  `library`; False when /proc cannot tell."""
  import time
  maps = pathlib.Path(f"/proc/{pid}/maps")
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    try:
      if library in maps.read_text():
        return True
    except OSError:
      return False
    time.sleep(0.002)
  return False


def test_predict_is_refused_by_a_family_without_predictions(
    tiny_gan_run, tmp_path, medgen):
  patients = tmp_path / "p.csv"
  patients.write_text("a\n1\n")
  code, _, err = medgen(["predict", "--workdir", tiny_gan_run["workdir"],
                         "--input", patients, "--out", tmp_path / "o.csv"])
  assert code == 2 and "family 'gan' makes no predictions" in err
  assert not (tmp_path / "o.csv").exists()
  code, _, err = medgen(["predict", "--workdir", tiny_gan_run["workdir"],
                         "--input", patients, "--out", tmp_path / "o.txt"])
  assert code == 2 and "--out" in err and ".csv" in err
