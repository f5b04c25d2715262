"""The task protocol: what a model family gives the loop, the CLI and `sample`.

A family is one class registered in `TASKS` under its name. The loop
(train/loop.py), the CLI (cli.py), checkpointing and sharding know families
only through this protocol, so adding one edits none of them.

A family writes (see `BaseTask` for the defaults it inherits):

    @TASKS.register("mine")
    class MyTask(BaseTask):
      get_config = staticmethod(configs.mine.get_config)  # base + `mine` section
      flags = (Flag("--hidden", "mine.hidden", "hidden units"),)
      data_keys = ("x",)                         # what it needs from a dataset
      def __init__(self, config, dataset=None): ...  # build models; with a
                                                 # dataset, resolve derived fields
      def init_state(self, key): ...             # pytree with a `.step`
      def train_step(self, state, batch, key): ...   # pure: (state, metrics)
      def make_batch(self, split, sampler, step): ...  # numpy arrays for `step`
      def generate(self, state, key, n, options): ...  # arrays of n samples
      def predict(self, state, input_path, options): ...  # optional: a
                                                 # Prediction for `medgen predict`
      def report(self, state, dataset, context): ...  # optional: a Report
                                                 # for `medgen evaluate`

`families/gan/` is the worked example. Families are found by name: the
registry, then the module `medgen_jax.families.<name>`, then the
`medgen_jax.families` entry-point group of installed packages (for families
that live in another package), then the modules named in `$MEDGEN_PLUGINS`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import pkgutil
from typing import (Any, ClassVar, Mapping, Protocol, Sequence,
                    runtime_checkable)

import jax
import ml_collections
import numpy as np

from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError, UnknownNameError
from medgen_jax.registry import Registry

log = logging.getLogger("medgen_jax")

PyTree = Any
Batch = Mapping[str, np.ndarray]
Metrics = dict[str, jax.Array]

ENTRY_POINT_GROUP = "medgen_jax.families"
PLUGINS_ENV = "MEDGEN_PLUGINS"

TASKS: Registry = Registry("model family", hint="medgen train FAMILY")


@dataclasses.dataclass(frozen=True)
class Flag:
  """A `medgen train FAMILY` flag bound to one config field.

  The value is parsed into the type the family's config declares for `path`
  and set there, exactly as `--set PATH=VALUE` would.

  Attributes:
    name: the flag, e.g. "--d-steps".
    path: the config field it sets, e.g. "gan.d_steps".
    help: one line for `--help`.
    const: for a switch without a value (e.g. `--conditional`), the value it
      sets; None for a flag that takes a value.
    metavar: placeholder shown in `--help`.
  """

  name: str
  path: str
  help: str = ""
  const: Any = None
  metavar: str | None = None


@dataclasses.dataclass(frozen=True)
class Option:
  """A `medgen sample` option of a family, passed to `Task.generate`.

  Attributes:
    name: the flag, e.g. "--label"; `generate` sees it as options["label"].
    type: int, float or str.
    help: one line for `--help`.
    default: the value when the flag is not given.
  """

  name: str
  type: type = int
  help: str = ""
  default: Any = None

  @property
  def dest(self) -> str:
    return self.name.lstrip("-").replace("-", "_")


@dataclasses.dataclass
class Outputs:
  """What a task asks the loop (or `medgen sample`) to write.

  Attributes:
    scalars: name -> float, added to the step's metrics.jsonl record.
    images: name -> float images [n, h, w, c] in [-1, 1]; the loop writes
      `<workdir>/<name>/step_<step>.png` (one grid), `medgen sample` writes
      the first one to its `--out` PNG.
    arrays: name -> array; the loop writes `<workdir>/<name>/step_<step>.npz`.
  """

  scalars: dict[str, float] = dataclasses.field(default_factory=dict)
  images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Prediction:
  """What `medgen predict` writes for a file of new examples.

  Attributes:
    table: column name -> array [n] (one row per input example), written in
      this order as the `--out` CSV.
    images: name -> float images [n, h, w, c] in [-1, 1]; the first is
      written to `--plot` PNG.
  """

  table: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Report:
  """What `medgen evaluate` writes: report.json, report.md and PNGs.

  Attributes:
    scalars: name -> float, the report's headline numbers.
    tables: name -> rows (dicts of column -> value), written as JSON lists
      and Markdown tables.
    images: name -> (float images [n, h, w, c] in [-1, 1], columns of the
      grid); each is written as `<name>.png`.
    figures: name -> PNG bytes drawn by the task (e.g. a histogram);
      written as `<name>.png`.
    notes: Markdown paragraphs (what was compared with what, caveats).
    facts: JSON-serialisable settings (sample sizes, seeds, the extractor's
      hash) that say how the numbers were made.
  """

  scalars: dict[str, float] = dataclasses.field(default_factory=dict)
  tables: dict[str, list[dict[str, Any]]] = dataclasses.field(
      default_factory=dict)
  images: dict[str, tuple[np.ndarray, int | None]] = dataclasses.field(
      default_factory=dict)
  figures: dict[str, bytes] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)
  facts: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ReportContext:
  """What `medgen evaluate` tells `Task.report`.

  Attributes:
    step: the checkpoint's step.
    n: samples to generate (0 = the family's default, e.g. the size of the
      test split).
    seed: seed of the generated samples and of any random subset.
    options: the family's `report_options`, by `Option.dest`.
  """

  step: int
  n: int = 0
  seed: int = 0
  options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def held_out_view(dataset: Dataset) -> Dataset:
  """`dataset` without its "val" split when it has a "test" split, so a
  family's held-out evaluation (val first, else test) scores the test split."""
  if "test" not in dataset.splits or "val" not in dataset.splits:
    return dataset
  return dataclasses.replace(
      dataset, splits={k: v for k, v in dataset.splits.items() if k != "val"})


@runtime_checkable
class TrainingState(Protocol):
  """A family's state: any pytree with the number of completed steps."""

  step: jax.Array


@runtime_checkable
class Task(Protocol):
  """The contract between a model family and the generic machinery."""

  name: ClassVar[str]
  flags: ClassVar[Sequence[Flag]]
  sample_options: ClassVar[Sequence[Option]]
  predict_options: ClassVar[Sequence[Option]]
  report_options: ClassVar[Sequence[Option]]
  data_keys: ClassVar[Sequence[str]]
  resumable_fields: ClassVar[Sequence[str]]

  @staticmethod
  def get_config() -> ml_collections.ConfigDict:
    """The family's full default config: base sections + its own section."""

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    """Checks the family's section by meaning, before any data is loaded."""

  @staticmethod
  def upgrade_config(flat: dict) -> dict:
    """A saved run's config fields, flattened, in the current layout."""

  def __init__(self, config: ml_collections.ConfigDict,
               dataset: Dataset | None = None):
    """Builds models and steps. With a dataset (a new run), first checks it
    fits and sets the config's data-derived fields; without one (sampling,
    analysis), the config must already be resolved (a run's config.json)."""

  def init_state(self, key: jax.Array) -> TrainingState:
    """A fresh state; pure, so the loop can jit and eval_shape it."""

  def train_step(self, state: TrainingState, batch: Batch,
                 key: jax.Array) -> tuple[TrainingState, Metrics]:
    """One update; pure and jit-able, randomness from fold_in(key, step)."""

  def batch_axes(self, batch: Batch) -> Mapping[str, int | None]:
    """Per batch array: the axis that indexes examples (sharded over the
    devices), or None to replicate it."""

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    """The numpy batch of step `step` (pure in the sampler's seed and step)."""

  def evaluate(self, state: TrainingState, step: int,
               dataset: Dataset) -> Outputs:
    """Periodic outputs: held-out scalars, sample pictures, arrays."""

  def generate(self, state: TrainingState, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n samples as arrays sharing a leading axis (written to .npz)."""

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    """Pictures of generated samples (for `medgen sample --out X.png`)."""

  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    """Validates `medgen sample` options (ConfigError on a bad value)."""

  def checkpoint_metadata(self, state: TrainingState) -> dict[str, Any]:
    """JSON-serialisable facts saved beside the state in each checkpoint."""

  def restore_metadata(self, metadata: Mapping[str, Any]) -> None:
    """Takes back what `checkpoint_metadata` saved (`load_run` calls it)."""

  def predict(self, state: TrainingState, input_path: str,
              options: Mapping[str, Any]) -> Prediction:
    """Predictions for the examples of a file (`medgen predict`)."""

  def embed(self, state: TrainingState, split: Split) -> dict[str, np.ndarray]:
    """Latent codes of a split's examples ("z" [n, d], with "label" when
    known), for `medgen embed`; families without a latent space refuse."""

  def report(self, state: TrainingState, dataset: Dataset,
             context: ReportContext) -> Report:
    """The evaluation report of a trained run (`medgen evaluate`), scored
    on held-out data only."""


class BaseTask:
  """Defaults of the optional parts of `Task`; families subclass it."""

  name: ClassVar[str] = ""
  flags: ClassVar[Sequence[Flag]] = ()
  sample_options: ClassVar[Sequence[Option]] = ()
  predict_options: ClassVar[Sequence[Option]] = ()
  report_options: ClassVar[Sequence[Option]] = ()
  data_keys: ClassVar[Sequence[str]] = ()
  # Config fields a resumed run may change besides the loop's own (train.steps,
  # logging, checkpointing, devices, data location): they must not change
  # the math.
  resumable_fields: ClassVar[Sequence[str]] = ()

  @classmethod
  def validate_config(cls, config) -> None:
    del config

  @staticmethod
  def upgrade_config(flat: dict) -> dict:
    """A saved run's config fields (flattened) in the current layout; a
    family whose config changed shape keeps its old runs readable here."""
    return flat

  def batch_axes(self, batch: Batch) -> Mapping[str, int | None]:
    return {k: 0 for k in batch}

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return split.take(sampler.indices(step))

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    del state, step, dataset
    return Outputs()

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    del samples
    return Outputs()

  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    del options

  def checkpoint_metadata(self, state) -> dict[str, Any]:
    del state
    return {}

  def restore_metadata(self, metadata: Mapping[str, Any]) -> None:
    del metadata

  def predict(self, state, input_path: str,
              options: Mapping[str, Any]) -> Prediction:
    del state, input_path, options
    raise ConfigError(f"family {self.name!r} makes no predictions for new "
                      "examples (medgen predict works with families such as "
                      "survival)")

  def embed(self, state, split: Split) -> dict[str, np.ndarray]:
    del state, split
    raise ConfigError(f"family {self.name!r} has no latent space to embed "
                      "(medgen embed works with families such as vae)")

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """The family's own held-out evaluation (`evaluate`) of the final state,
    on the test split where the dataset has one (`held_out_view`)."""
    out = self.evaluate(state, context.step, held_out_view(dataset))
    return Report(scalars=dict(out.scalars),
                  images={k: (v, None) for k, v in out.images.items()},
                  notes=["The family's periodic evaluation, run once on the "
                         "checkpoint with the test split as held-out data."])


# -- finding families by name ------------------------------------------------


def _builtin_names() -> list[str]:
  import medgen_jax.families as families
  return sorted(m.name for m in pkgutil.iter_modules(families.__path__)
                if not m.name.startswith("_"))


def _entry_points():
  try:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
  except Exception:  # noqa: BLE001 (a broken installed package must not stop us)
    return []


def import_plugins() -> None:
  """Imports the modules listed in $MEDGEN_PLUGINS (comma-separated)."""
  for module in filter(None, (m.strip() for m in
                              os.environ.get(PLUGINS_ENV, "").split(","))):
    import_family_module(module, f"${PLUGINS_ENV}")


def import_family_module(module: str, source: str) -> None:
  """Imports `module` (whose import registers a family); ConfigError if absent."""
  try:
    if importlib.util.find_spec(module) is None:
      raise ModuleNotFoundError(module)
  except (ModuleNotFoundError, ValueError):
    raise ConfigError(f"{source}: no module {module!r} to import; check the "
                      "name and that its package is installed") from None
  importlib.import_module(module)


def family_names() -> list[str]:
  """Every family that `get_task` can find."""
  import_plugins()
  names = set(TASKS.names()) | set(_builtin_names())
  names |= {ep.name for ep in _entry_points()}
  return sorted(names)


def get_task(name: str):
  """The task class of family `name`, importing its module when needed."""
  if not isinstance(name, str) or not name:
    raise ConfigError("no model family given; e.g. `medgen train gan`")
  if name not in TASKS and name in _builtin_names():
    importlib.import_module(f"medgen_jax.families.{name}")
  if name not in TASKS:
    for ep in _entry_points():
      if ep.name == name:
        loaded = ep.load()  # a module (registers on import) or the class
        if name not in TASKS and isinstance(loaded, type):
          TASKS.register(name, loaded)
        break
  if name not in TASKS:
    import_plugins()
  if name not in TASKS:
    raise UnknownNameError(
        f"unknown model family {name!r}; expected one of: "
        f"{', '.join(family_names())}")
  task = TASKS.get(name)
  check_task_class(task, name)
  return task


REQUIRED = ("get_config", "init_state", "generate")


def check_task_class(task, name: str) -> None:
  """A registered family provides what the protocol cannot default."""
  missing = [m for m in REQUIRED if not callable(getattr(task, m, None))]
  if missing:
    raise TypeError(f"model family {name!r} ({task!r}) does not define "
                    f"{', '.join(missing)}; see medgen_jax/train/task.py")
  if getattr(task, "name", "") != name:
    task.name = name


def get_config(family: str) -> ml_collections.ConfigDict:
  """The default config of `family` (base sections + the family's section)."""
  config = get_task(family).get_config()
  if config.get("family") != family:
    raise TypeError(f"{family}.get_config() must set config.family = "
                    f"{family!r}, got {config.get('family')!r}")
  return config
