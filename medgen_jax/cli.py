"""The `medgen` command. Thin: parse, build a config, call the loop.

  medgen train FAMILY [--data NAME] [--steps N] [family flags] ...
  medgen train --workdir DIR --resume [--steps N]     # family from the run
  medgen sample --workdir DIR [--n 64] [--out grid.png | samples.npz | volumes.nii.gz] ...
  medgen embed --workdir DIR [--out latents.npz] [--plot latents.png]
  medgen predict --workdir DIR --input patients.csv [--out curves.csv] [--plot curves.png]
  medgen evaluate --workdir DIR [--out DIR/evaluation] [--n N] [family options]
  medgen sleep-metrics FILE [--kind hypnogram|actigraphy] [--json]
  medgen datasets | medgen families

`medgen train FAMILY --help` lists the shared flags and that family's own.
User mistakes (`MedgenError`, bad arguments) print one line,
`medgen: error: ...`, and exit non-zero (2 configuration, 3 data,
4 workdir/checkpoint, 5 non-finite loss); Ctrl-C exits 130 and keeps the
latest complete checkpoint. Heavy modules (JAX, Flax) are imported inside
`main`, so an interrupt during start-up gets the same one line.
"""

from __future__ import annotations

import signal
import sys

if __name__ == "__main__":  # `python -m medgen_jax.cli`: from the first line
  from medgen_jax._console import interrupted
  signal.signal(signal.SIGINT, interrupted)

import argparse  # noqa: E402
import contextlib
import logging
import os
import pathlib
import tempfile

from medgen_jax.errors import ConfigError, MedgenError

log = logging.getLogger("medgen_jax")


class _Parser(argparse.ArgumentParser):
  """argparse whose mistakes are one-line ConfigErrors, not usage blocks."""

  def error(self, message):
    raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")


def _float_like(text: str) -> bool:
  """A number, or comma-separated numbers ("-600,1500": a CT window)."""
  try:
    for part in text.split(","):
      float(part)
    return True
  except ValueError:
    return False


def _join_negative_values(argv: list[str], parser: argparse.ArgumentParser):
  """`--g-lr -1e-3` -> `--g-lr=-1e-3` (and `--window -600,1500`), which
  argparse would read as a flag."""
  takes_value = {s for a in parser._actions if a.nargs is None
                 and a.option_strings and not isinstance(
                     a, (argparse._StoreConstAction, argparse._HelpAction))
                 for s in a.option_strings}
  out, i = [], 0
  while i < len(argv):
    if (argv[i] in takes_value and i + 1 < len(argv)
        and argv[i + 1].startswith("-") and _float_like(argv[i + 1])):
      out.append(f"{argv[i]}={argv[i + 1]}")
      i += 2
    else:
      out.append(argv[i])
      i += 1
  return out


# -- medgen train ---------------------------------------------------------------

def _shared_flags():
  from medgen_jax.train.task import Flag
  return (
      Flag("--data", "data.name", "dataset name (medgen datasets)", metavar="NAME"),
      Flag("--data-dir", "data.data_dir", "folder holding the dataset's files",
           metavar="DIR"),
      Flag("--train-fraction", "data.train_fraction",
           "train on this fraction of the train split (class-stratified, "
           "seeded by data.seed); val and test are unchanged"),
      Flag("--add-samples", "data.add_samples", "FILE.npz of generated "
           "examples (medgen sample --out) added to the train split "
           "(synthetic augmentation)", metavar="FILE"),
      Flag("--steps", "train.steps", "total training steps"),
      Flag("--batch-size", "train.batch_size", "examples per step"),
      Flag("--seed", "seed", "initialisation and step randomness"),
      Flag("--optimizer", "optimizer.name", "adam | rmsprop | sgd"),
      Flag("--lr", "optimizer.learning_rate", "learning rate"),
      Flag("--lr-schedule", "optimizer.schedule",
           "constant (default) | linear | cosine: decay the learning rate "
           "to --set optimizer.final_lr_fraction of it (default 0)"),
      Flag("--lr-decay-begin", "optimizer.decay_begin",
           "step where the decay begins (default 0)"),
      Flag("--lr-decay-end", "optimizer.decay_end",
           "step where the decay ends (default: --steps)"),
      Flag("--num-devices", "train.num_devices",
           "data-parallel over this many local devices (0 = all)"),
      Flag("--log-every", "train.log_every", "metrics.jsonl every N steps"),
      Flag("--eval-every", "train.eval_every",
           "task outputs (samples, held-out scores) every N steps"),
      Flag("--sample-every", "train.eval_every", "same as --eval-every"),
      Flag("--checkpoint-every", "train.checkpoint_every",
           "checkpoint every N steps"),
      Flag("--no-progress", "train.progress", "no progress bar", const=False),
  )


def make_train_parser(task_cls) -> argparse.ArgumentParser:
  """The parser of `medgen train FAMILY`: shared flags + the family's."""
  name = task_cls.name
  p = _Parser(prog=f"medgen train {name}",
              description=f"Train the {name!r} family.",
              formatter_class=argparse.RawDescriptionHelpFormatter,
              epilog="Any config field: --set section.field=VALUE; the "
              "fields are in a run's config.json.")
  p.add_argument("--config", help="config file: .py with get_config(), or "
                 ".json such as a run's config.json")
  p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                 help="override any config field, e.g. train.steps=100")
  p.add_argument("--workdir", help="output folder (default runs/FAMILY-DATA)")
  p.add_argument("--resume", action="store_true",
                 help="continue the run in --workdir from its last checkpoint")
  groups = (("shared flags", _shared_flags()),
            (f"{name} flags", tuple(task_cls.flags)))
  for title, flags in groups:
    g = p.add_argument_group(title)
    for f in flags:
      dest = "flag:" + f.name
      if f.const is not None:
        g.add_argument(f.name, dest=dest, action="store_const", const=f.const,
                       help=f.help)
      else:
        g.add_argument(f.name, dest=dest, metavar=f.metavar or "VALUE",
                       help=f.help)
  return p


def build_train_config(args, task_cls, base=None):
  """The config of a train command: base (a run's, or the family's
  defaults), then --config, then --set, then the flags."""
  from medgen_jax.configs.overrides import apply_overrides, merge_config_file
  config = base if base is not None else task_cls.get_config()
  if args.config:
    merge_config_file(config, args.config, task_cls.upgrade_config)
  for item in args.set:
    if "=" not in item:
      raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. "
                        "--set train.steps=100")
    key, value = item.split("=", 1)
    apply_overrides(config, {key.strip(): value.strip()}, f"--set {item}",
                    from_text=True)
  for f in (*_shared_flags(), *task_cls.flags):
    value = getattr(args, "flag:" + f.name, None)
    if value is not None:
      apply_overrides(config, {f.path: value}, f.name,
                      from_text=f.const is None)
  return config


def default_workdir(config) -> pathlib.Path:
  """runs/<family>-<data>, with -2, -3 ... when taken."""
  data = str(config.data.name)
  if "/" in data or os.sep in data:  # a file path: name the run after its stem
    data = pathlib.Path(data).name.split(".")[0]
  name = f"{config.family}-{data.replace(':', '_')}"
  name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
  base = pathlib.Path("runs") / name
  path, k = base, 1
  while path.exists():
    k += 1
    path = base.with_name(f"{name}-{k}")
  return path


def _option_value(argv: list[str], name: str) -> str | None:
  for i, a in enumerate(argv):
    if a == name and i + 1 < len(argv):
      return argv[i + 1]
    if a.startswith(name + "="):
      return a.split("=", 1)[1]
  return None


def cmd_train(argv: list[str]) -> int:
  from medgen_jax.train.task import family_names, get_task
  if not argv or argv[0] in ("-h", "--help"):
    print("usage: medgen train FAMILY [flags]   (medgen train FAMILY --help)\n"
          "       medgen train --workdir DIR --resume [flags]\n\n"
          f"families: {', '.join(family_names())}")
    return 0
  base = None
  if argv[0].startswith("-"):  # no family: a resumed run names its own
    workdir = _option_value(argv, "--workdir")
    if "--resume" not in argv or not workdir:
      raise ConfigError("medgen train: name a family (medgen train gan ...), "
                        "or continue a run with --workdir DIR --resume")
    from medgen_jax.train.loop import read_run_config
    base = read_run_config(workdir)
    family = base.family
  else:
    family, argv = argv[0], argv[1:]
  task_cls = get_task(family)
  parser = make_train_parser(task_cls)
  args = parser.parse_args(_join_negative_values(argv, parser))
  if args.resume:
    if not args.workdir:
      raise ConfigError("--resume needs --workdir DIR of the run to continue")
    if base is None:
      from medgen_jax.train.loop import read_run_config
      base = read_run_config(args.workdir)
    if base.family != family:
      raise ConfigError(f"--workdir {args.workdir} holds a {base.family!r} "
                        f"run, not {family!r}; run `medgen train "
                        f"{base.family} --workdir {args.workdir} --resume`")
  config = build_train_config(args, task_cls, base)
  workdir = pathlib.Path(args.workdir) if args.workdir else default_workdir(config)
  from medgen_jax.train.loop import train_and_evaluate
  print(f"medgen: training {family} on {config.data.name}; workdir "
        f"{workdir}", file=sys.stderr)
  summary = train_and_evaluate(config, workdir, resume=args.resume)
  last = summary["last_metrics"]
  shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                    if k != "step" and isinstance(v, float))
  print(f"medgen: done at step {summary['step']}; {shown}")
  print(f"medgen: outputs and checkpoints in {workdir}")
  return 0


# -- medgen sample ----------------------------------------------------------------

def _sample_parser(task_cls=None) -> argparse.ArgumentParser:
  p = _Parser(prog="medgen sample",
              description="Generate samples from a trained run.")
  p.add_argument("--workdir", required=True, help="the run's folder")
  p.add_argument("--n", type=int, default=64, help="number of samples")
  p.add_argument("--out", default="samples.png",
                 help="FILE.png (a picture), FILE.npz (the arrays) or "
                 "FILE.nii.gz (3-D volumes, for a viewer)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--step", type=int, help="checkpoint step (default latest)")
  p.add_argument("--batch-size", type=int, default=256,
                 help="samples generated at once")
  _add_options(p, task_cls, "sample_options")
  return p


def _add_options(parser, task_cls, kind: str) -> None:
  """A family's `medgen sample` / `medgen predict` options (Option's)."""
  options = getattr(task_cls, kind, ()) if task_cls is not None else ()
  if options:
    g = parser.add_argument_group(f"{task_cls.name} options")
    for o in options:
      g.add_argument(o.name, dest="option:" + o.dest, type=o.type,
                     default=o.default, help=o.help)


def check_output_file(out: str, suffixes=(".png", ".npz")) -> pathlib.Path:
  """Checks, without writing, that `out` can be written."""
  path = pathlib.Path(out)
  if not path.name.lower().endswith(tuple(suffixes)):
    raise ConfigError(f"--out {out}: expected a file ending in "
                      f"{' or '.join(suffixes)}")
  folder = path.parent
  if not folder.is_dir():
    raise ConfigError(f"--out {out}: folder {folder} does not exist; create "
                      "it first")
  if path.is_dir():
    raise ConfigError(f"--out {out} is a folder; name a file")
  _check_writable(folder, f"--out {out}")
  return path


def _check_writable(folder: pathlib.Path, what: str) -> None:
  """A ConfigError unless a file can be created in `folder` (tried, then
  removed)."""
  try:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".medgen-check-")
    os.close(fd)
    os.unlink(tmp)
  except OSError as e:
    raise ConfigError(f"{what}: cannot write in {folder} "
                      f"({e.strerror})") from None


def cmd_sample(argv: list[str]) -> int:
  first, _ = _sample_parser().parse_known_args(argv)
  from medgen_jax.train.loop import generate_samples, load_run, read_run_config
  from medgen_jax.train.task import get_task
  task_cls = get_task(read_run_config(first.workdir).family)
  parser = _sample_parser(task_cls)
  args = parser.parse_args(_join_negative_values(argv, parser))
  if args.n < 1:
    raise ConfigError(f"--n must be >= 1, got {args.n}")
  if args.batch_size < 1:
    raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
  from medgen_jax.configs.base import SEED_LIMIT, check_int
  check_int(args.seed, "--seed", 0, SEED_LIMIT)
  from medgen_jax.outputs import SAMPLE_WRITERS
  out = check_output_file(args.out, (".png", ".npz", *SAMPLE_WRITERS))
  options = {o.dest: getattr(args, "option:" + o.dest)
             for o in task_cls.sample_options}
  run = load_run(args.workdir, args.step)
  run.task.check_sample_options(options)
  samples = generate_samples(run.task, run.state, args.n, args.seed, options,
                             batch_size=args.batch_size)
  from medgen_jax.outputs import save_image_grid, save_npz
  writer = [w for suffix, w in SAMPLE_WRITERS.items()
            if out.name.lower().endswith(suffix)]
  if writer:
    writer[0](out, samples, run.config)
    print(f"medgen: wrote {args.n} samples of step {run.step} to {out}")
  elif out.suffix.lower() == ".npz":
    save_npz(out, samples)
    shapes = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in samples.items())
    print(f"medgen: wrote {args.n} samples of step {run.step} to {out} ({shapes})")
  else:
    pictures = run.task.render(samples).images
    if not pictures:
      raise ConfigError(f"family {task_cls.name!r} draws no pictures; use "
                        "--out FILE.npz for the samples' arrays")
    save_image_grid(out, next(iter(pictures.values())))
    print(f"medgen: wrote {args.n} samples of step {run.step} to {out}")
  return 0


def cmd_embed(argv: list[str]) -> int:
  p = _Parser(prog="medgen embed",
              description="Latent codes of a run's data, with cluster scores "
              "and an optional 2-D picture.")
  p.add_argument("--workdir", required=True, help="the run's folder")
  p.add_argument("--out", default="latents.npz", help="FILE.npz")
  p.add_argument("--split", default="all",
                 help="train | val | test | all (default)")
  p.add_argument("--step", type=int, help="checkpoint step (default latest)")
  p.add_argument("--plot", help="FILE.png: the latents' first two principal "
                 "components, coloured by label")
  p.add_argument("--clusters", type=int, default=0,
                 help="k of the k-means scored against the labels "
                 "(default: the number of classes)")
  args = p.parse_args(argv)
  import numpy as np
  out = check_output_file(args.out, (".npz",))
  plot = check_output_file(args.plot, (".png",)) if args.plot else None
  from medgen_jax.data.registry import load_dataset
  from medgen_jax.train.loop import load_run
  run = load_run(args.workdir, args.step)
  dataset = load_dataset(run.config.data)
  names = list(dataset.splits) if args.split == "all" else [args.split]
  for name in names:
    dataset.split(name)  # a DataError naming the splits when absent
  parts = [(name, run.task.embed(run.state, dataset.split(name)))
           for name in names]
  arrays = {k: np.concatenate([a[k] for _, a in parts]) for k in parts[0][1]}
  arrays["split"] = np.concatenate([np.full(len(a["z"]), name)
                                    for name, a in parts])
  from medgen_jax.outputs import save_npz
  save_npz(out, arrays)
  z, labels = arrays["z"], arrays.get("label")
  print(f"medgen: wrote {len(z)} latent codes ({z.shape[1]} dims, splits "
        f"{', '.join(names)}) of step {run.step} to {out}")
  from medgen_jax.metrics import latent
  if labels is not None and len(np.unique(labels)) > 1:
    k = args.clusters or max(dataset.num_classes, len(np.unique(labels)))
    try:
      scores = latent.cluster_scores(z, labels, k, seed=run.config.seed)
      print(f"medgen: k-means (k={k}) on the latents vs the labels: ARI "
            f"{scores['ari']:.3f}, NMI {scores['nmi']:.3f}")
    except ConfigError as e:
      print(f"medgen: no cluster scores: {e}", file=sys.stderr)
  if plot is not None:
    points = z[:, :2] if z.shape[1] <= 2 else latent.pca(z, 2)
    latent.scatter_png(points, labels, dataset.class_names, plot,
                       title=f"{run.config.family} latents of "
                       f"{run.config.data.name} ({', '.join(names)}), "
                       f"step {run.step}")
    print(f"medgen: wrote the latent picture to {plot}")
  return 0


def _predict_parser(task_cls=None) -> argparse.ArgumentParser:
  p = _Parser(prog="medgen predict",
              description="Predictions of a trained run for new examples "
              "(e.g. survival curves of patients).")
  p.add_argument("--workdir", required=True, help="the run's folder")
  p.add_argument("--input", required=True, help="file of examples, e.g. "
                 "patients.csv with the training covariates' columns")
  p.add_argument("--out", default="predictions.csv", help="FILE.csv")
  p.add_argument("--plot", help="FILE.png: the family's picture of the "
                 "predictions")
  p.add_argument("--step", type=int, help="checkpoint step (default latest)")
  _add_options(p, task_cls, "predict_options")
  return p


def table_csv(table) -> str:
  """Columns of equal length -> CSV text (floats with 6 significant digits)."""
  import csv
  import io
  import numpy as np
  names = list(table)
  columns = [np.asarray(table[k]) for k in names]
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(names)
  for i in range(len(columns[0]) if columns else 0):
    writer.writerow([f"{c[i]:.6g}" if c.dtype.kind == "f" else str(c[i])
                     for c in columns])
  return buf.getvalue()


def cmd_predict(argv: list[str]) -> int:
  first, _ = _predict_parser().parse_known_args(argv)
  from medgen_jax.train.loop import load_run, read_run_config
  from medgen_jax.train.task import get_task
  task_cls = get_task(read_run_config(first.workdir).family)
  parser = _predict_parser(task_cls)
  args = parser.parse_args(_join_negative_values(argv, parser))
  out = check_output_file(args.out, (".csv",))
  plot = check_output_file(args.plot, (".png",)) if args.plot else None
  if not pathlib.Path(args.input).is_file():
    raise ConfigError(f"--input {args.input}: no such file")
  options = {o.dest: getattr(args, "option:" + o.dest)
             for o in task_cls.predict_options}
  run = load_run(args.workdir, args.step)
  prediction = run.task.predict(run.state, args.input, options)
  from medgen_jax.outputs import save_image_grid, write_bytes
  write_bytes(out, table_csv(prediction.table).encode())
  rows = len(next(iter(prediction.table.values()))) if prediction.table else 0
  print(f"medgen: wrote predictions for {rows} examples (step {run.step}, "
        f"{len(prediction.table)} columns) to {out}")
  if plot is not None:
    if not prediction.images:
      raise ConfigError(f"family {task_cls.name!r} draws no picture of its "
                        "predictions; leave out --plot")
    save_image_grid(plot, next(iter(prediction.images.values())))
    print(f"medgen: wrote the picture to {plot}")
  return 0


def cmd_sleep_metrics(argv: list[str]) -> int:
  p = _Parser(prog="medgen sleep-metrics",
              description="Sleep measures of a hypnogram, an actigraphy "
              "recording, or a sample .npz of a sleep run.")
  p.add_argument("file", help="hypnogram (.txt/.csv/.edf), actigraphy "
                 "(.awd/.csv) or `medgen sample` .npz")
  p.add_argument("--kind", default="auto",
                 help="auto | hypnogram | actigraphy (needed for .npz)")
  p.add_argument("--epoch-seconds", type=float, default=0.0,
                 help="seconds per epoch of a text hypnogram or an .npz "
                 "(default 30 for hypnograms, 60 for actigraphy)")
  p.add_argument("--nonwear-minutes", type=float, default=90.0,
                 help="actigraphy: zero runs at least this long are non-wear")
  p.add_argument("--diary", default="",
                 help="actigraphy: a sleep diary CSV (TYPE, START, END); one "
                 "row per NIGHT")
  p.add_argument("--json", action="store_true", help="print JSON")
  args = p.parse_args(argv)
  from medgen_jax.sleep_report import report
  print(report(args.file, args.kind, args.epoch_seconds,
               args.nonwear_minutes, args.json, args.diary))
  return 0


def cmd_datasets(argv: list[str]) -> int:
  _Parser(prog="medgen datasets").parse_args(argv)
  from medgen_jax.data.registry import dataset_names
  print("\n".join(dataset_names()))
  return 0


def _evaluate_parser(task_cls=None) -> argparse.ArgumentParser:
  p = _Parser(prog="medgen evaluate",
              description="The evaluation report of a trained run, on "
              "held-out data: report.json, report.md and PNGs.")
  p.add_argument("--workdir", required=True, help="the run's folder")
  p.add_argument("--out", help="folder for the report (default "
                 "WORKDIR/evaluation)")
  p.add_argument("--n", type=int, default=0, help="samples to generate "
                 "(default: the family's choice, e.g. the test split's size)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--step", type=int, help="checkpoint step (default latest)")
  p.add_argument("--data-dir", help="where the run's dataset is now, if it "
                 "moved")
  _add_options(p, task_cls, "report_options")
  return p


def check_output_folder(out: str, flag: str = "--out") -> pathlib.Path:
  """Checks, without writing, that files can be written in folder `out`
  (created later if missing, when its parent exists)."""
  path = pathlib.Path(out)
  if path.exists() and not path.is_dir():
    raise ConfigError(f"{flag} {out} is a file; name a folder")
  folder = path if path.is_dir() else path.parent
  if not folder.is_dir():
    raise ConfigError(f"{flag} {out}: folder {folder} does not exist; "
                      "create it first")
  _check_writable(folder, f"{flag} {out}")
  return path


def cmd_evaluate(argv: list[str]) -> int:
  first, _ = _evaluate_parser().parse_known_args(argv)
  from medgen_jax.train.loop import load_run, read_run_config
  from medgen_jax.train.task import ReportContext, get_task
  task_cls = get_task(read_run_config(first.workdir).family)
  parser = _evaluate_parser(task_cls)
  args = parser.parse_args(_join_negative_values(argv, parser))
  from medgen_jax.configs.base import SEED_LIMIT, check_int
  check_int(args.n, "--n", 0, 10_000_001)
  check_int(args.seed, "--seed", 0, SEED_LIMIT)
  out = check_output_folder(args.out or str(pathlib.Path(args.workdir)
                                            / "evaluation"))
  options = {o.dest: getattr(args, "option:" + o.dest)
             for o in task_cls.report_options}
  run = load_run(args.workdir, args.step)
  if args.data_dir:
    run.config.data.data_dir = args.data_dir
  from medgen_jax.data.registry import load_dataset
  dataset = load_dataset(run.config.data)
  context = ReportContext(step=run.step, n=args.n, seed=args.seed,
                          options=options)
  report = run.task.report(run.state, dataset, context)
  report.facts = {"workdir": str(args.workdir), "family": run.config.family,
                  "data": run.config.data.name, "step": run.step,
                  "seed": args.seed, **report.facts}
  from medgen_jax.outputs import write_report
  write_report(out, report, f"{run.config.family} on {run.config.data.name}"
               f", step {run.step}")
  width = max((len(k) for k in report.scalars), default=0)
  for k, v in report.scalars.items():
    print(f"  {k:<{width}}  {v:.4g}")
  print(f"medgen: wrote the report of step {run.step} to {out}/report.md "
        f"(and report.json, {len(report.images) + len(report.figures)} "
        "pictures)")
  return 0


def cmd_families(argv: list[str]) -> int:
  _Parser(prog="medgen families").parse_args(argv)
  from medgen_jax.train.task import family_names
  print("\n".join(family_names()))
  return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "embed": cmd_embed,
            "predict": cmd_predict, "evaluate": cmd_evaluate,
            "datasets": cmd_datasets, "families": cmd_families,
            "sleep-metrics": cmd_sleep_metrics}


def _dispatch(argv: list[str]) -> int:
  if not argv or argv[0] in ("-h", "--help"):
    print(__doc__.strip())
    return 0 if argv else 2
  command = argv[0]
  if command not in COMMANDS:
    raise ConfigError(f"unknown command {command!r}; expected one of: "
                      f"{', '.join(COMMANDS)} (medgen --help)")
  with _interrupts_deferred():
    # The heavy imports (JAX, Flax, orbax), with Ctrl-C held back until they
    # are done: an extension module interrupted while it initialises prints
    # its own traceback from C.
    import medgen_jax.train.loop  # noqa: F401
  from medgen_jax.train.task import import_plugins
  import_plugins()
  return COMMANDS[command](argv[1:])


@contextlib.contextmanager
def _interrupts_deferred():
  """Holds a Ctrl-C back until the block ends, then raises it."""
  if not threading_is_main():
    yield
    return
  requested = []
  previous = signal.signal(signal.SIGINT, lambda *_: requested.append(True))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
  if requested:
    raise KeyboardInterrupt


class _InterruptRescue:
  """A sys.unraisablehook that re-delivers a swallowed Ctrl-C.

  Python cannot raise from a garbage-collection callback (JAX registers
  one), so a KeyboardInterrupt that lands there is printed as "Exception
  ignored in ..." with a traceback and lost, and the command would go on.
  This hook drops that report and interrupts the main thread again once the
  callback has returned.
  """

  def __init__(self, previous):
    self.previous = previous

  def __call__(self, unraisable):
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
      import _thread
      import threading
      threading.Timer(0.01, _thread.interrupt_main).start()
      return
    self.previous(unraisable)


_interrupted = False


def _on_sigint(signum, frame):
  """Python's default Ctrl-C, remembered: a C extension being imported at
  that moment (jaxlib) turns the KeyboardInterrupt into an ImportError."""
  global _interrupted
  _interrupted = True
  raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
  """Runs one `medgen` command; returns its exit code."""
  global _interrupted
  argv = list(sys.argv[1:] if argv is None else argv)
  _interrupted = False
  previous_hook = sys.unraisablehook
  sys.unraisablehook = _InterruptRescue(previous_hook)
  previous_handler = None
  if threading_is_main():
    previous_handler = signal.signal(signal.SIGINT, _on_sigint)
  try:
    return _main(argv)
  except KeyboardInterrupt:  # between the handlers of _main
    print("medgen: interrupted", file=sys.stderr)
    return 130
  except Exception:  # noqa: BLE001
    if _interrupted:  # e.g. jaxlib's ImportError for a Ctrl-C in its init
      print("medgen: interrupted", file=sys.stderr)
      return 130
    raise
  finally:
    if previous_handler is not None:
      signal.signal(signal.SIGINT, previous_handler)
    if isinstance(sys.unraisablehook, _InterruptRescue):
      sys.unraisablehook = previous_hook


def threading_is_main() -> bool:
  import threading
  return threading.current_thread() is threading.main_thread()


def run() -> None:
  """The console script: `main`, then exit with its code.

  After a Ctrl-C the process leaves without the interpreter's teardown,
  once its output is flushed: an interrupt can leave XLA or TensorStore
  threads mid-work, and tearing the interpreter down under them crashed
  (a segmentation fault after the one-line message). Checkpoints are
  written synchronously and closed before this point.
  """
  try:
    code = main()
  except BrokenPipeError:   # `medgen ... | head`: the reader has gone
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
  if code == 130:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  sys.exit(code)


def _main(argv: list[str]) -> int:
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
    return _dispatch(argv)
  except MedgenError as e:
    print(f"medgen: error: {' '.join(str(e).split())}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print("medgen: interrupted; the latest complete checkpoint is kept "
          "(continue with --resume --workdir DIR)", file=sys.stderr)
    return 130
  except SystemExit as e:  # --help
    return e.code if isinstance(e.code, int) else 0
  finally:
    log.removeHandler(handler)
    log.setLevel(saved[0])
    log.propagate = saved[1]


if __name__ == "__main__":
  run()
