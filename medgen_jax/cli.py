"""The `medgen` command. Thin: parse, build a config, call the loop.

  medgen train gan [--data NAME] [--data-dir DIR] [--steps N] ...
  medgen sample --workdir DIR [--n 64] [--out grid.png] [--label K]
  medgen datasets

User mistakes (`MedgenError`) print one line, `medgen: error: ...`, and exit
non-zero; Ctrl-C exits 130 and leaves the latest complete checkpoint.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import logging
import pathlib
import sys

import ml_collections

from medgen_jax.configs import flatten
from medgen_jax.errors import ConfigError, MedgenError

log = logging.getLogger("medgen_jax")

# flag name -> config path; flags left unset keep the config's value.
TRAIN_FLAGS = {
    "data": "data.name",
    "data_dir": "data.data_dir",
    "image_size": "data.image_size",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "loss": "loss",
    "d_steps": "d_steps",
    "optimizer": "optimizer.name",
    "g_lr": "optimizer.g_learning_rate",
    "d_lr": "optimizer.d_learning_rate",
    "latent_dim": "model.latent_dim",
    "width": "model.width",
    "upsample": "model.upsample",
    "seed": "seed",
    "num_devices": "train.num_devices",
    "log_every": "train.log_every",
    "sample_every": "train.sample_every",
    "checkpoint_every": "train.checkpoint_every",
}


def _parse_value(text: str, current):
  if isinstance(current, bool):
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise ValueError("expected true or false")
  if isinstance(current, int):
    return int(text)
  if isinstance(current, float):
    return float(text)
  if isinstance(current, str) or current is None:
    return text
  return ast.literal_eval(text)


def set_path(config, path: str, value, source: str) -> None:
  """Sets config field `a.b.c`, converting strings to the field's type."""
  *parents, leaf = path.split(".")
  node = config
  for p in parents:
    if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
      raise ConfigError(f"{source}: config has no section {p!r} (in {path!r})")
    node = node[p]
  if leaf not in node:
    raise ConfigError(f"{source}: config has no field {path!r}; see "
                      "config.json of a run for the available fields")
  current = node[leaf]
  if isinstance(value, str):
    try:
      value = _parse_value(value, current)
    except (ValueError, SyntaxError) as e:
      raise ConfigError(f"{source}: cannot read {value!r} as the "
                        f"{type(current).__name__} {path} ({e})") from None
  try:
    node[leaf] = value
  except TypeError as e:
    raise ConfigError(f"{source}: {path} cannot hold {value!r} "
                      f"({' '.join(str(e).split())})") from None


def load_config_file(path: str, family_default) -> ml_collections.ConfigDict:
  """A .py file with get_config() or a .json (e.g. a run's config.json)."""
  p = pathlib.Path(path)
  if not p.is_file():
    raise ConfigError(f"--config {path}: file not found")
  if p.suffix == ".json":
    try:
      data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
      raise ConfigError(f"--config {path}: invalid JSON ({e})") from None
    config = family_default()
    for key, value in flatten(data).items():
      set_path(config, key, value, f"--config {path}")
    return config
  if p.suffix == ".py":
    spec = importlib.util.spec_from_file_location("medgen_user_config", p)
    module = importlib.util.module_from_spec(spec)
    try:
      spec.loader.exec_module(module)
    except Exception as e:  # the user's file; show what failed in one line
      raise ConfigError(f"--config {path}: failed to run ({e!r})") from None
    if not hasattr(module, "get_config"):
      raise ConfigError(f"--config {path}: defines no get_config()")
    return module.get_config()
  raise ConfigError(f"--config {path}: expected a .py or .json file")


def build_train_config(args, task_cls) -> ml_collections.ConfigDict:
  config = (load_config_file(args.config, task_cls.get_config) if args.config
            else task_cls.get_config())
  for item in args.set or []:
    if "=" not in item:
      raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. "
                        "--set model.width=32")
    key, value = item.split("=", 1)
    set_path(config, key.strip(), value.strip(), f"--set {item}")
  for flag, path in TRAIN_FLAGS.items():
    value = getattr(args, flag, None)
    if value is not None:
      set_path(config, path, value, "--" + flag.replace("_", "-"))
  if args.conditional:
    set_path(config, "model.conditional", True, "--conditional")
  if args.no_progress:
    set_path(config, "train.progress", False, "--no-progress")
  return config


def default_workdir(config) -> pathlib.Path:
  """runs/<family>-<data>, with -2, -3 ... when taken."""
  name = f"{config.family}-{config.data.name.replace(':', '_')}"
  base = pathlib.Path("runs") / name
  path, k = base, 1
  while path.exists():
    k += 1
    path = base.with_name(f"{name}-{k}")
  return path


def cmd_train(args) -> int:
  from medgen_jax.train.loop import train_and_evaluate
  from medgen_jax.train.tasks import get_task
  task_cls = get_task(args.family)
  config = build_train_config(args, task_cls)
  if args.resume and not args.workdir:
    raise ConfigError("--resume needs --workdir DIR of the run to continue")
  workdir = pathlib.Path(args.workdir) if args.workdir else default_workdir(config)
  print(f"medgen: training {args.family} on {config.data.name}; workdir "
        f"{workdir}", file=sys.stderr)
  summary = train_and_evaluate(config, workdir, resume=args.resume)
  last = summary["last_metrics"]
  shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                    if k != "step" and isinstance(v, float))
  print(f"medgen: done at step {summary['step']}; {shown}")
  print(f"medgen: samples in {workdir / 'samples'}, checkpoints in "
        f"{workdir / 'checkpoints'}")
  return 0


def cmd_sample(args) -> int:
  from medgen_jax.outputs import save_image_grid
  from medgen_jax.train.loop import load_run
  if args.n < 1:
    raise ConfigError(f"--n must be >= 1, got {args.n}")
  task, state, config = load_run(args.workdir, args.step)
  if args.label is not None:
    k = config.model.num_classes
    if not k:
      raise ConfigError("--label needs a run trained with --conditional")
    if not 0 <= args.label < k:
      raise ConfigError(f"--label {args.label}: expected 0..{k - 1}")
  z, labels = task.grid_inputs(args.n, seed=args.seed, label=args.label)
  out = save_image_grid(args.out, task.sample(state, z, labels))
  print(f"medgen: wrote {args.n} samples of step {int(state.step)} to {out}")
  return 0


def cmd_datasets(args) -> int:
  from medgen_jax.data.registry import dataset_names
  print("\n".join(dataset_names()))
  return 0


def make_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="medgen", description=__doc__.split("\n")[0])
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train", help="train a model family")
  t.add_argument("family", help="model family, e.g. gan")
  t.add_argument("--config", help="config file (.py with get_config, or .json)")
  t.add_argument("--set", action="append", metavar="KEY=VALUE",
                 help="override any config field, e.g. model.width=32")
  t.add_argument("--data", help="dataset name (medgen datasets), or tfds:NAME")
  t.add_argument("--data-dir", help="folder holding the dataset's files")
  t.add_argument("--image-size", type=int)
  t.add_argument("--steps", type=int)
  t.add_argument("--batch-size", type=int)
  t.add_argument("--workdir", help="output folder (default runs/FAMILY-DATA)")
  t.add_argument("--loss", help="minimax | nonsaturating | wgan-gp | hinge")
  t.add_argument("--conditional", action="store_true",
                 help="condition on the class labels")
  t.add_argument("--d-steps", type=int, help="D updates per G update")
  t.add_argument("--optimizer", help="adam | rmsprop | sgd")
  t.add_argument("--g-lr", type=float, help="generator learning rate")
  t.add_argument("--d-lr", type=float, help="discriminator learning rate")
  t.add_argument("--latent-dim", type=int)
  t.add_argument("--width", type=int)
  t.add_argument("--upsample", help="subpixel | transpose")
  t.add_argument("--seed", type=int)
  t.add_argument("--num-devices", type=int, help="0 = all local devices")
  t.add_argument("--log-every", type=int)
  t.add_argument("--sample-every", type=int)
  t.add_argument("--checkpoint-every", type=int)
  t.add_argument("--resume", action="store_true",
                 help="continue the run in --workdir from its last checkpoint")
  t.add_argument("--no-progress", action="store_true")
  t.set_defaults(func=cmd_train)

  s = sub.add_parser("sample", help="draw samples from a trained run")
  s.add_argument("--workdir", required=True)
  s.add_argument("--n", type=int, default=64)
  s.add_argument("--out", default="samples.png")
  s.add_argument("--label", type=int, help="class to sample (conditional runs)")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--step", type=int, help="checkpoint step (default latest)")
  s.set_defaults(func=cmd_sample)

  d = sub.add_parser("datasets", help="list the registered datasets")
  d.set_defaults(func=cmd_datasets)
  return p


def main(argv: list[str] | None = None) -> int:
  args = make_parser().parse_args(argv)
  # Our own handler, for the command's lifetime: a library imported with JAX
  # already puts a handler on the root logger, which would print our
  # messages a second time in its own format.
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("medgen: %(message)s"))
  saved = (log.level, log.propagate)
  log.addHandler(handler)
  log.setLevel(logging.INFO)
  log.propagate = False
  try:
    return args.func(args)
  except MedgenError as e:
    print(f"medgen: error: {e}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print("medgen: interrupted; the latest complete checkpoint is kept "
          "(continue with --resume --workdir DIR)", file=sys.stderr)
    return 130
  finally:
    log.removeHandler(handler)
    log.setLevel(saved[0])
    log.propagate = saved[1]


if __name__ == "__main__":
  sys.exit(main())
