"""Bad input, by class: one `medgen: error:` line, the documented exit code,
and nothing changed on disk. (Exit codes: 2 config, 3 data, 4 workdir or
checkpoint.)"""

import json
import os
import shutil

import pytest

from test_cli import TINY, assert_one_line_error, run_cli


def _snapshot(folder):
  return {str(p.relative_to(folder)): p.read_bytes()
          for p in sorted(folder.rglob("*")) if p.is_file()}


def _write(tmp_path, name, content):
  path = tmp_path / name
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    path.write_text(content)
  return str(path)


CONFIG_FILES = {
    "py_raises": ("exp.py", "def get_config():\n  raise ValueError('boom')\n",
                  ["get_config() failed", "ValueError: boom"]),
    "py_returns_none": ("exp.py", "def get_config():\n  return None\n",
                        ["returned NoneType"]),
    "py_exits": ("exp.py", "import sys\nsys.exit(3)\n",
                 ["failed to run", "sys.exit(3)"]),
    "py_syntax": ("exp.py", "def get_config(:\n", ["failed to run",
                                                   "SyntaxError"]),
    "py_no_function": ("exp.py", "x = 1\n", ["defines no get_config()"]),
    "json_list": ("c.json", "[1, 2]", ["expected a JSON object", "list"]),
    "json_null": ("c.json", "null", ["expected a JSON object", "NoneType"]),
    "json_not_utf8": ("c.json", b'{"seed": "\xff\xfe"}', ["not UTF-8"]),
    "json_invalid": ("c.json", '{"seed": ', ["invalid JSON"]),
    "json_null_number": ("c.json", '{"train": {"batch_size": null}}',
                         ["train.batch_size expects an integer",
                          "null is not allowed"]),
    "json_bool_number": ("c.json", '{"train": {"steps": true}}',
                         ["train.steps expects an integer", "True"]),
    "json_string_number": ("c.json", '{"gan": {"width": "wide"}}',
                           ["gan.width", "'wide'"]),
    "json_unknown_field": ("c.json", '{"gan": {"widht": 3}}',
                           ["no field 'gan.widht'"]),
    "json_section_value": ("c.json", '{"gan": 3}', ["gan is a section"]),
    "json_other_family": ("c.json", '{"family": "vae"}',
                          ["family 'vae'", "not 'gan'"]),
    "txt_file": ("c.txt", "seed: 1", ["expected a .py file"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_FILES))
def test_bad_config_files(tmp_path, capsys, case):
  name, content, fragments = CONFIG_FILES[case]
  path = _write(tmp_path, name, content)
  code, _, err = run_cli(["train", "gan", "--config", path, "--workdir",
                          tmp_path / "w"], capsys)
  assert_one_line_error(code, err, f"--config {path}", *fragments, exit_code=2)
  assert not (tmp_path / "w").exists()


def test_py_config_returning_a_dict_is_merged(tmp_path, capsys):
  from medgen_jax.cli import build_train_config, make_train_parser
  from medgen_jax.families.gan import GanTask
  path = _write(tmp_path, "exp.py", "def get_config():\n"
                "  return {'gan': {'width': 24, 'loss': 'hinge'}}\n")
  args = make_train_parser(GanTask).parse_args(
      ["--config", path, "--set", "gan.ema_decay=0.5", "--steps", "7",
       "--conditional"])
  c = build_train_config(args, GanTask)
  assert (c.gan.width, c.gan.loss, c.gan.ema_decay, c.train.steps,
          c.gan.conditional, c.gan.latent_dim) == (24, "hinge", 0.5, 7, True, 64)


BAD_ARGUMENTS = [
    (["--data", "pneumonia-mnist"], ["unknown dataset", "pneumoniamnist"], 2),
    (["--loss", "wgan"], ["unknown GAN loss", "wgan-gp"], 2),
    (["--optimizer", "adamw"], ["unknown optimizer", "adam, rmsprop, sgd"], 2),
    (["--set", "gan.widht=3"], ["no field 'gan.widht'"], 2),
    (["--set", "model.width=3"], ["no section 'model'"], 2),
    (["--set", "gan.width=abc"], ["gan.width expects an integer", "'abc'"], 2),
    (["--set", "gan={}"], ["gan is a section"], 2),
    (["--set", "nokey"], ["expected KEY=VALUE"], 2),
    (["--image-size", "30"], ["--image-size", "not base"], 2),
    (["--image-size", "8192"], ["data.image_size", "< 1025"], 2),
    (["--batch-size", "1000"], ["fewer than --batch-size 1000"], 2),
    (["--loss", "wgan-gp", "--set", "gan.d_norm=batch"], ["batch norm"], 2),
    (["--config", "missing.py"], ["--config missing.py", "not found"], 2),
    (["--steps", "0"], ["train.steps must be >= 1"], 2),
    (["--steps", "-5"], ["train.steps must be >= 1"], 2),
    (["--steps", "abc"], ["train.steps expects an integer"], 2),
    (["--steps"], ["expected one argument"], 2),
    (["--bogus", "1"], ["unrecognized arguments: --bogus"], 2),
    (["--set", "train.num_samples=0"], ["train.num_samples must be >= 1"], 2),
    (["--set", "data.seed=-1"], ["data.seed must be >= 0"], 2),
    (["--seed", str(2**64 + 1)], ["seed must be < 4294967296"], 2),
    (["--set", "optimizer.b1=1.0"], ["optimizer.b1", "[0, 1)"], 2),
    (["--set", "optimizer.b2=-0.1"], ["optimizer.b2"], 2),
    (["--lr", "nan"], ["optimizer.learning_rate", "finite"], 2),
    (["--g-lr", "0"], ["gan.g_learning_rate"], 2),
    (["--set", "privacy.enabled=true"], ["not implemented yet"], 2),
    (["--num-devices", "99"], ["devices are visible"], 2),
    (["--set", "gan.ema_decay=1"], ["gan.ema_decay"], 2),
    (["--d-steps", "0"], ["gan.d_steps"], 2),
    (["--r1", "-1"], ["gan.r1_weight (--r1)", "[0, inf]"], 2),
    (["--minibatch-std", "-1"], ["gan.d_minibatch_std"], 2),
    (["--g-norm", "layer"], ["gan.g_norm 'layer'", "batch, pixel, none"], 2),
    (["--g-width", "0"], ["gan.g_width (--g-width)"], 2),
    (["--pack", "0"], ["gan.d_pack (--pack)"], 2),
    (["--pack", "2", "--conditional"], ["--pack", "--conditional"], 2),
    (["--pack", "3", "--batch-size", "8"], ["--pack 3", "--batch-size 8"], 2),
    (["--pack", "2", "--r1", "0.1"], ["--r1", "--pack"], 2),
    (["--pack", "2", "--loss", "wgan-gp", "--set", "gan.d_norm=layer"],
     ["--pack", "wgan-gp"], 2),
    (["--d-joint-batch", "--minibatch-std", "4"],
     ["--d-joint-batch", "--minibatch-std"], 2),
    (["--d-joint-batch", "--set", "gan.d_norm=layer"],
     ["--d-joint-batch", "batch norm in D"], 2),
    (["--minibatch-std", "4", "--loss", "wgan-gp", "--set",
      "gan.d_norm=layer"], ["--minibatch-std", "wgan-gp"], 2),
]


@pytest.mark.parametrize("args,fragments,exit_code", BAD_ARGUMENTS,
                         ids=[" ".join(a[0])[:40] for a in BAD_ARGUMENTS])
def test_bad_train_arguments(tmp_path, capsys, args, fragments, exit_code):
  code, _, err = run_cli(["train", "gan", *TINY, "--workdir", tmp_path / "w",
                          *args], capsys)
  assert_one_line_error(code, err, *fragments, exit_code=exit_code)
  assert not (tmp_path / "w").exists()  # a refused run writes nothing


def test_unknown_family_and_command(capsys):
  code, _, err = run_cli(["train", "gann"], capsys)
  assert_one_line_error(code, err, "unknown model family 'gann'", "gan",
                        exit_code=2)
  code, _, err = run_cli(["trian"], capsys)
  assert_one_line_error(code, err, "unknown command 'trian'", exit_code=2)


def test_huge_phantom_request_is_refused_before_generating(tmp_path, capsys):
  code, _, err = run_cli(["train", "gan", "--image-size", "1024", "--set",
                          "data.phantoms.num_train=1000000", "--workdir",
                          tmp_path / "w"], capsys)
  assert_one_line_error(code, err, "phantom", exit_code=2)


@pytest.mark.parametrize("case", ["file", "under_file", "long_name",
                                  "checkpoints_file", "unwritable"])
def test_bad_workdirs(tmp_path, capsys, case):
  if case == "unwritable" and os.geteuid() == 0:
    pytest.skip("root writes everywhere; permissions cannot be tested")
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  locked = tmp_path / "locked"
  locked.mkdir()
  workdir = {"file": a_file, "under_file": a_file / "run",
             "long_name": tmp_path / ("x" * 300),
             "checkpoints_file": tmp_path / "w",
             "unwritable": locked / "run"}[case]
  if case == "checkpoints_file":
    workdir.mkdir()
    (workdir / "checkpoints").write_text("x")
  locked.chmod(0o500)
  before = _snapshot(tmp_path)
  try:
    code, _, err = run_cli(["train", "gan", *TINY, "--workdir", workdir],
                           capsys)
  finally:
    locked.chmod(0o700)
  assert_one_line_error(code, err, exit_code=4)
  assert _snapshot(tmp_path) == before


def test_resume_errors(tiny_gan_run, tmp_path, capsys):
  code, _, err = run_cli(["train", "gan", *TINY, "--resume"], capsys)
  assert_one_line_error(code, err, "--resume needs --workdir", exit_code=2)
  run = tmp_path / "run"
  shutil.copytree(tiny_gan_run["workdir"], run)
  before = _snapshot(run)
  code, _, err = run_cli(["train", "gan", "--workdir", run, "--resume",
                          "--loss", "hinge"], capsys)
  assert_one_line_error(code, err, "gan.loss: 'nonsaturating' -> 'hinge'",
                        exit_code=2)
  code, _, err = run_cli(["train", "gann", "--workdir", run, "--resume"], capsys)
  assert_one_line_error(code, err, "unknown model family", exit_code=2)
  assert _snapshot(run) == before
  (run / "config.json").write_text("[]")
  code, _, err = run_cli(["train", "--workdir", run, "--resume"], capsys)
  assert_one_line_error(code, err, "not a run config", exit_code=4)


SAMPLE_ERRORS = [
    (["--out", "{tmp}/missing/x.png"], ["does not exist"], 2),
    (["--out", "{tmp}/x.txt"], ["expected a file ending in .png or .npz"], 2),
    (["--label", "1"], ["--label needs a run trained with --conditional"], 2),
    (["--n", "0"], ["--n must be >= 1"], 2),
    (["--n", "-3"], ["--n must be >= 1"], 2),
    (["--seed", "-1"], ["--seed must be >= 0"], 2),
    (["--step", "999"], ["999"], 4),
    (["--label", "x"], ["invalid int value"], 2),
]


@pytest.mark.parametrize("args,fragments,exit_code", SAMPLE_ERRORS,
                         ids=[" ".join(a[0])[:30] for a in SAMPLE_ERRORS])
def test_bad_sample_arguments(tiny_gan_run, tmp_path, capsys, args, fragments,
                              exit_code):
  args = [a.replace("{tmp}", str(tmp_path)) for a in args]
  code, _, err = run_cli(["sample", "--workdir", tiny_gan_run["workdir"],
                          "--out", tmp_path / "s.png", *args], capsys)
  assert_one_line_error(code, err, *fragments, exit_code=exit_code)
  assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sample_without_run(tmp_path, capsys):
  code, _, err = run_cli(["sample", "--workdir", tmp_path], capsys)
  assert_one_line_error(code, err, "config.json", exit_code=4)
  (tmp_path / "config.json").write_bytes(b"\xff\xfe")
  code, _, err = run_cli(["sample", "--workdir", tmp_path], capsys)
  assert_one_line_error(code, err, "not valid UTF-8 JSON", exit_code=4)
  (tmp_path / "config.json").write_text(json.dumps({"family": "gan"}))
  code, _, err = run_cli(["sample", "--workdir", tmp_path], capsys)
  assert_one_line_error(code, err, "gan.channels is not set", exit_code=4)
