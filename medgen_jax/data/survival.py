"""Survival tables as Datasets: named datasets, a user's file, synthetic data.

    medgen train survival                        # survival_synthetic
    medgen train survival --data whas500 --data-dir ../shared/data/sksurv
    medgen train survival --data lung --data-dir ../shared/data/lifelines
    medgen train survival --data patients.csv --time days --event died

A survival Dataset (modality "survival") has splits "train" and "test" with
"x" float32 [n, f] (covariates encoded by `survival_tables`, standardised
with the train split's mean/std), "time" float32 [n] (>= 0), "event" int32
[n] (1 = event, 0 = censored) and, when a treatment column is in use,
"treatment" int32 [n] (arm index; that column is not in x). The test split
is fold data.fold of a seeded k-fold (data.folds >= 2) or a seeded
data.test_fraction; both are stratified by event and treatment arm.

Missing cells: with data.missing = "impute" a row lacking its time, event or
arm is dropped (and reported) and other missing cells take the train
split's median (numeric) or mode (categorical); with "drop" every row with
a missing cell in a used column is dropped.

Named datasets (`SPECS`; the files ship with scikit-survival and lifelines;
time in days unless noted; event 0/1 unless noted):

  name               file (package)              time / event / treatment
  whas500            whas500.arff (sksurv)       lenfol / fstat / -
  gbsg2              GBSG2.arff (sksurv)         time / cens / -
  actg320            actg320.arff (sksurv)       time / censor / tx
  flchain            flchain.arff (sksurv)       futime / death alive,dead / -
  veteran            veteran.arff (sksurv)       Survival_in_days /
                                                 Status censored,dead /
                                                 Treatment
  lung               lung.csv (lifelines)        time / status / -
  actg175            ACTG175.csv (lifelines)     days / cens / arms
  kidney_transplant  kidney_transplant.csv (l.)  time / death / -
  larynx             larynx.csv (lifelines)      time (months) / death / -

Dropped: actg320 time_d, censor_d, txgrp; flchain chapter; lung inst;
actg175 "" (row ids), pidnum, treat, cd420, cd820, cd496, r, offtrt. One-hot
besides the ARFF nominal columns: actg320 karnof, raceth; lung sex; actg175
strat. Arm names: actg320 tx 0 "ZDV/d4T + 3TC", 1 "... + IDV" (indinavir);
actg175 arms 0..3 zidovudine, zidovudine + didanosine, zidovudine +
zalcitabine, didanosine.

Dropped columns leak the outcome (actg320's death times, flchain's cause of
death, actg175's post-baseline CD4 counts and off-treatment flag) or merely
repeat another (txgrp, treat, row ids). `--treatment none` keeps a dataset's
treatment column as a covariate instead; --time/--event/--treatment name
other columns. Unnamed columns (R's row names) are always dropped.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
from typing import Mapping

import numpy as np

from medgen_jax.data import survival_tables as st
from medgen_jax.data.base import MODALITIES, Dataset, Split
from medgen_jax.data.registry import DATASETS, FILE_FORMATS, integer_option
from medgen_jax.errors import ConfigError, DataError

MIN_EVENTS = 2  # per split


@dataclasses.dataclass(frozen=True)
class Spec:
  """How a named dataset's file is read.

  Attributes:
    file: the file name; package: "sksurv" or "lifelines" (who ships it).
    time, event: columns; event codings are 0/1 or `st.EVENT_CODES`.
    time_unit: the unit of `time`.
    drop: columns never used as covariates.
    treatment: the default treatment column ("" = none).
    treatment_names: arm level -> readable name.
    categorical: numeric-coded columns to one-hot.
    citation: where the data come from.
  """

  file: str
  package: str
  time: str
  event: str
  time_unit: str
  citation: str
  drop: tuple[str, ...] = ()
  treatment: str = ""
  treatment_names: Mapping[str, str] = dataclasses.field(default_factory=dict)
  categorical: tuple[str, ...] = ()


SPECS = {
    "whas500": Spec("whas500.arff", "sksurv", "lenfol", "fstat", "days",
                    "Worcester Heart Attack Study; Hosmer, Lemeshow & May, "
                    "Applied Survival Analysis (2008)"),
    "gbsg2": Spec("GBSG2.arff", "sksurv", "time", "cens", "days",
                  "German Breast Cancer Study Group 2; Schumacher et al., "
                  "J Clin Oncol 12:2086 (1994)"),
    "actg320": Spec(
        "actg320.arff", "sksurv", "time", "censor", "days",
        "AIDS Clinical Trials Group 320 (AIDS diagnosis or death); Hammer "
        "et al., NEJM 337:725 (1997); Hosmer et al. (2008)",
        drop=("time_d", "censor_d", "txgrp"), treatment="tx",
        treatment_names={"0": "ZDV/d4T + 3TC", "1": "ZDV/d4T + 3TC + IDV"},
        categorical=("karnof", "raceth")),
    "flchain": Spec("flchain.arff", "sksurv", "futime", "death", "days",
                    "serum free light chains, Olmsted County; Dispenzieri et "
                    "al., Mayo Clin Proc 87:512 (2012)", drop=("chapter",)),
    "veteran": Spec("veteran.arff", "sksurv", "Survival_in_days", "Status",
                    "days", "Veterans' Administration lung cancer trial; "
                    "Kalbfleisch & Prentice (2002)", treatment="Treatment"),
    "lung": Spec("lung.csv", "lifelines", "time", "status", "days",
                 "NCCTG advanced lung cancer; Loprinzi et al., J Clin Oncol "
                 "12:601 (1994)", drop=("inst",), categorical=("sex",)),
    "actg175": Spec(
        "ACTG175.csv", "lifelines", "days", "cens", "days",
        "AIDS Clinical Trials Group 175; Hammer et al., NEJM 335:1081 (1996)",
        drop=("", "pidnum", "treat", "cd420", "cd820", "cd496", "r",
              "offtrt"), treatment="arms",
        treatment_names={"0": "zidovudine", "1": "zidovudine + didanosine",
                         "2": "zidovudine + zalcitabine", "3": "didanosine"},
        categorical=("strat",)),
    "kidney_transplant": Spec(
        "kidney_transplant.csv", "lifelines", "time", "death", "days",
        "kidney transplant deaths; Klein & Moeschberger (2003), D.3"),
    "larynx": Spec("larynx.csv", "lifelines", "time", "death", "months",
                   "larynx cancer; Klein & Moeschberger (2003), 1.8"),
}
# Where each package keeps its data, inside the installed package.
PACKAGE_FOLDERS = {"sksurv": ("datasets", "data"), "lifelines": ("datasets",)}


@dataclasses.dataclass(frozen=True)
class Options:
  """The data fields a survival table is built with (see `read_options`)."""

  time: str
  event: str
  treatment: str
  drop: tuple[str, ...]
  categorical: tuple[str, ...]
  missing: str
  folds: int
  fold: int
  test_fraction: float
  seed: int


def _names(value, field: str) -> tuple[str, ...]:
  if isinstance(value, str):
    return tuple(v.strip() for v in value.split(",") if v.strip())
  if not isinstance(value, (tuple, list)):
    raise ConfigError(f"data.{field} must be column names such as a,b; got "
                      f"{value!r}")
  return tuple(str(v) for v in value)


def read_options(data_config, spec: Spec | None = None) -> Options:
  """The data fields, with a named dataset's defaults; ConfigError if bad."""
  get = data_config.get
  treatment = str(get("treatment_column", "") or "")
  if not treatment and spec is not None:
    treatment = spec.treatment
  missing = get("missing", "impute")
  if missing not in ("impute", "drop"):
    raise ConfigError(f"--missing {missing!r}; expected impute (train "
                      "medians / modes) or drop (rows with missing cells)")
  folds = integer_option(get("folds", 0), "--folds (data.folds)", 0)
  if folds == 1:
    raise ConfigError("--folds 1 leaves nothing to hold out; use 0 (one "
                      "train/test split) or k >= 2")
  fold = integer_option(get("fold", 0), "--fold (data.fold)", 0)
  if folds and fold >= folds:
    raise ConfigError(f"--fold {fold} is out of range for --folds {folds}; "
                      f"choose 0..{folds - 1}")
  frac = get("test_fraction", 0.2)
  if (isinstance(frac, bool) or not isinstance(frac, (int, float))
      or not 0.0 < frac < 1.0):
    raise ConfigError(f"--test-fraction (data.test_fraction) must be in "
                      f"(0, 1), got {frac!r}")
  time = str(get("time_column", "") or (spec.time if spec else ""))
  event = str(get("event_column", "") or (spec.event if spec else ""))
  drop = spec.drop if spec else ()
  if spec is not None:  # a named dataset's outcome is never a covariate
    drop += tuple(c for c in (spec.time, spec.event) if c not in (time, event))
  return Options(
      time=time, event=event,
      treatment="" if treatment.lower() == "none" else treatment,
      drop=drop + _names(get("drop_columns", ()), "drop_columns"),
      categorical=(spec.categorical if spec else ()) + _names(
          get("categorical_columns", ()), "categorical_columns"),
      missing=missing, folds=folds, fold=fold, test_fraction=float(frac),
      seed=integer_option(get("seed", 0), "data.seed", 0))


def stratified_split(strata: np.ndarray, seed: int, folds: int, fold: int,
                     test_fraction: float) -> np.ndarray:
  """bool [n]: True for the test rows.

  Each stratum's rows are shuffled with `seed` and laid end to end; k-fold
  deals that order round-robin into `folds` folds (each row in exactly one
  fold), a fraction takes every (1/test_fraction)-th row of it, so every
  stratum is split in the same proportion (within one row).
  """
  rng = np.random.default_rng(seed)
  order = np.concatenate([rng.permutation(np.flatnonzero(strata == s))
                          for s in np.unique(strata)])
  pos = np.arange(len(order))
  test = np.zeros(len(order), bool)
  if folds >= 2:
    test[order] = pos % folds == fold
  else:
    test[order] = (np.floor((pos + 1) * test_fraction)
                   > np.floor(pos * test_fraction))
  return test


def _check_names(table: st.RawTable, opts: Options) -> None:
  cols = f"its columns are {st._listed(table.header)}"
  for flag, name in (("--time (data.time_column)", opts.time),
                     ("--event (data.event_column)", opts.event)):
    if not name:
      raise ConfigError(f"{table.source}: a survival table needs --time COL "
                        f"and --event COL (data.time_column, "
                        f"data.event_column); {cols}")
    if name not in table.columns:
      raise DataError(f"{table.source} has no column {name!r} ({flag}); "
                      f"{cols}")
  if opts.treatment and opts.treatment not in table.columns:
    raise DataError(f"{table.source} has no treatment column "
                    f"{opts.treatment!r} (--treatment); {cols}")
  for field, names in (("drop_columns", opts.drop),
                       ("categorical_columns", opts.categorical)):
    absent = [n for n in names if n not in table.columns]
    if absent:
      raise DataError(f"{table.source}: data.{field} names "
                      f"{st._listed(absent)}, not a column of the file; "
                      f"{cols}")


def _rows_kept(table: st.RawTable, used: list[str], time: np.ndarray,
               event: np.ndarray, opts: Options) -> tuple[np.ndarray, int, int]:
  """(kept row indices, rows lacking time/event/arm, rows dropped)."""
  flags = {opts.time: "--time", opts.event: "--event",
           opts.treatment: "--treatment"}
  outcome = np.isnan(time) | (event < 0)
  gaps = np.zeros(len(table), bool)
  for name in used:
    gap = np.array([st.missing(c) for c in table.columns[name]])
    if gap.all():
      fix = (f"choose another column with {flags[name]}" if name in flags else
             f"drop it with --set data.drop_columns={name}")
      raise DataError(f"{table.source}: column {name!r} is entirely missing "
                      f"(no cell has a value); {fix}")
    if name == opts.treatment:
      outcome |= gap
    gaps |= gap
  dropped = outcome | gaps if opts.missing == "drop" else outcome
  return np.flatnonzero(~dropped), int(outcome.sum()), int(dropped.sum())


def _covariates(rows: st.RawTable, names: list[str],
                categorical: tuple[str, ...], train: np.ndarray):
  """(encoding columns with train fills, unstandardised features float64
  [n, f], cells filled per column) of the covariates `names`."""
  columns = []
  for c in names:
    kind = st.column_kind(rows, c, c in categorical)
    columns.append({"name": c, "kind": kind} if kind == "numeric" else
                   {"name": c, "kind": kind,
                    "levels": st.observed_levels(rows, c)})
  parsed = [st.parse_column(rows.columns[c["name"]], c, rows.source,
                            rows.lines) for c in columns]
  for values, column in zip(parsed, columns):
    column["fill"] = st.fill_value(values[train], column, rows.source)
  raw, filled = st.features(parsed, columns, len(rows))
  return columns, raw, filled


def build_dataset(name: str, table: st.RawTable, opts: Options, *,
                  metadata: Mapping | None = None,
                  treatment_names: Mapping[str, str] | None = None) -> Dataset:
  """The survival Dataset of a table (see the module docstring)."""
  src = table.source
  _check_names(table, opts)
  outcome_cols = {opts.time, opts.event, opts.treatment} - {""}
  drop = [h for h in table.header if h in opts.drop or not h]
  covariates = [h for h in table.header
                if h not in outcome_cols and h not in drop]
  time = st.parse_time(table.columns[opts.time], opts.time, src, table.lines)
  event = st.parse_event(table.columns[opts.event], opts.event, src,
                         table.lines)
  used = [c for c in (opts.time, opts.event, opts.treatment) if c]
  kept, no_outcome, n_dropped = _rows_kept(table, used + covariates, time,
                                           event, opts)
  if not kept.size:
    raise DataError(f"{src}: every row lacks a time, event or arm (or has a "
                    "missing cell, with --missing drop); nothing to train on")
  rows = table.take(kept)
  time, event = time[kept].astype(np.float32), event[kept].astype(np.int32)
  arm = arm_levels = None
  if opts.treatment:
    arm_levels = st.observed_levels(rows, opts.treatment)
    arm = st.parse_column(rows.columns[opts.treatment],
                          {"name": opts.treatment, "kind": "categorical",
                           "levels": arm_levels}, src, rows.lines)
  strata = event + 2 * (arm if arm is not None else 0)
  total = int(event.sum())
  if opts.folds > len(kept):
    raise ConfigError(f"--folds {opts.folds} exceeds the {len(kept)} rows of "
                      f"{src}; use fewer folds")
  test = stratified_split(strata, opts.seed, opts.folds, opts.fold,
                          opts.test_fraction)
  parts = {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}
  for split, idx in parts.items():
    k = int(event[idx].sum())
    if k < MIN_EVENTS:
      raise DataError(
          f"{src}: too few events: the {split} split has {k} event(s) in "
          f"{idx.size} rows and needs at least {MIN_EVENTS} (the file has "
          f"{total} events in {len(kept)} rows); use more data, fewer --folds "
          "or another --test-fraction")
  columns, raw, filled = _covariates(rows, covariates, opts.categorical,
                                     parts["train"])
  mean = raw[parts["train"]].mean(axis=0)
  std = raw[parts["train"]].std(axis=0)
  std = np.where(std > 0, std, 1.0)
  names = dict(treatment_names or {})
  encoding = {
      "columns": columns, "feature_names": st.feature_names(columns),
      "mean": [float(v) for v in mean], "std": [float(v) for v in std],
      "time_column": opts.time, "event_column": opts.event,
      "treatment_column": opts.treatment,
      "treatment_levels": arm_levels or [],
      "treatment_names": [names.get(v, v) for v in arm_levels or []],
      "drop_columns": drop, "missing": opts.missing}
  x = st.standardize(raw, encoding)
  splits = {}
  for split, idx in parts.items():
    arrays = {"x": x[idx], "time": time[idx], "event": event[idx]}
    if arm is not None:
      arrays["treatment"] = arm[idx].astype(np.int32)
    splits[split] = Split(arrays)
  meta = {
      "feature_names": encoding["feature_names"], "encoding": encoding,
      "time_column": opts.time, "event_column": opts.event,
      "n_events": total, "n_rows": int(len(kept)),
      "missing_report": _report(name, opts, filled, columns, no_outcome,
                                n_dropped, len(table)),
      "source_rows": {s: [int(kept[i]) for i in idx]
                      for s, idx in parts.items()},
      "folds": opts.folds, "fold": opts.fold,
      "test_fraction": opts.test_fraction, "split_seed": opts.seed,
      **(metadata or {})}
  if arm is not None:
    meta.update(treatment_column=opts.treatment,
                treatment_names=encoding["treatment_names"])
  return Dataset(name=name, splits=splits, source=src, modality="survival",
                 metadata=meta)


def _report(name, opts, filled, columns, no_outcome, n_dropped, n) -> str:
  """One line: what happened to missing values."""
  if opts.missing == "drop":
    if not n_dropped:
      return f"{name}: no missing values"
    return (f"{name}: {n_dropped} row{'s' * (n_dropped != 1)} with missing "
            f"cells dropped ({n} -> {n - n_dropped} rows)")
  cells = {c["name"]: k for c, k in zip(columns, filled) if k}
  parts = []
  if no_outcome:
    parts.append(f"dropped {no_outcome} row{'s' * (no_outcome != 1)} lacking "
                 "time, event or arm")
  if cells:
    listed = ", ".join(f"{c} {k}" for c, k in cells.items())
    parts.append(f"imputed {sum(cells.values())} cells in {len(cells)} "
                 f"column{'s' * (len(cells) != 1)} with train medians/modes "
                 f"({listed})")
  return f"{name}: " + ("; ".join(parts) or "no missing values")


@MODALITIES.register("survival")
def _survival_modality(ds: Dataset) -> None:
  """Keys x float [n, f], time, event (+ treatment int) and the encoding."""
  train = ds.split("train")
  lacks = [k for k in ("x", "time", "event") if k not in train]
  if lacks:
    raise DataError(f"{ds.source}: survival dataset {ds.name!r} lacks key(s) "
                    f"{lacks} (it has {list(train.keys())}); build it with "
                    "data/survival.py's build_dataset")
  x = train["x"]
  names = ds.metadata.get("feature_names", ())
  if x.dtype.kind != "f" or x.ndim != 2 or len(names) != x.shape[1]:
    raise DataError(f"{ds.source}: key 'x' has dtype {x.dtype} and shape "
                    f"{x.shape} with {len(names)} feature names; expected "
                    "float features [n, f] and one name per feature")
  if train["time"].ndim != 1 or train["event"].ndim != 1:
    raise DataError(f"{ds.source}: 'time' and 'event' must be [n] arrays")
  if "treatment" in train:
    arms = len(ds.metadata.get("treatment_names", ()))
    for split, s in ds.splits.items():
      t = s["treatment"]
      if t.dtype.kind not in "iu" or t.ndim != 1 or t.min() < 0 or (
          t.max() >= arms):
        raise DataError(f"{ds.source}: split {split!r}, key 'treatment' must "
                        f"hold arm indices [n] in 0..{arms - 1} (one "
                        "metadata treatment_names entry per arm)")
  if "encoding" not in ds.metadata:
    raise DataError(f"{ds.source}: survival dataset {ds.name!r} has no "
                    "metadata 'encoding'; build it with build_dataset")


# ---------------------------------------------------------------------------
# Sources: named datasets, files, the synthetic trial.
# ---------------------------------------------------------------------------


def _bundled(spec: Spec) -> pathlib.Path | None:
  """The copy of spec.file inside the installed package, if any."""
  try:
    found = importlib.util.find_spec(spec.package)
  except (ImportError, ValueError):
    return None
  for root in (found.submodule_search_locations or []) if found else []:
    path = pathlib.Path(root, *PACKAGE_FOLDERS[spec.package], spec.file)
    if path.is_file():
      return path
  return None


def locate(name: str, data_config) -> pathlib.Path:
  """The file of named dataset `name`: in --data-dir (or its sksurv/ or
  lifelines/ subfolder), else in the installed package."""
  spec = SPECS[name]
  folder = str(data_config.get("data_dir", "") or "")
  where = f"../shared/data/{spec.package}"
  if folder:
    base = pathlib.Path(folder).expanduser()
    for path in (base / spec.file, base / spec.package / spec.file):
      if path.is_file():
        return path
    inside = "/".join((spec.package,) + PACKAGE_FOLDERS[spec.package])
    raise DataError(f"{base / spec.file} not found; dataset {name!r} reads "
                    f"{spec.file} from --data-dir (e.g. --data-dir {where}, "
                    f"or the {spec.package} package's {inside} folder)")
  path = _bundled(spec)
  if path is None:
    raise DataError(f"dataset {name!r} needs {spec.file}: pass --data-dir DIR "
                    f"(e.g. {where}) or pip install 'medgen_jax[survival]' "
                    f"to read the copy that {spec.package} ships")
  return path


def load_named(name: str, data_config) -> Dataset:
  """A dataset of `SPECS` read from its file."""
  spec = SPECS[name]
  opts = read_options(data_config, spec)
  table = st.read_table(locate(name, data_config))
  names = spec.treatment_names if opts.treatment == spec.treatment else {}
  return build_dataset(name, table, opts, treatment_names=names, metadata={
      "citation": spec.citation, "time_unit": spec.time_unit})


def _named_loader(name: str):
  def load(data_config) -> Dataset:
    return load_named(name, data_config)
  load.__doc__ = f"{name}: {SPECS[name].citation}."
  return load


for _name in SPECS:
  DATASETS.register(_name, _named_loader(_name))


def load_file(path: pathlib.Path, data_config) -> Dataset:
  """`--data PATH` (.csv, .tsv, .arff) with --time and --event."""
  table = st.read_table(path)
  opts = read_options(data_config)
  return build_dataset(pathlib.Path(path).name, table, opts,
                       metadata={"time_unit": ""})


for _suffix in st.SUFFIXES:
  FILE_FORMATS.register(f"survival:{_suffix}", load_file)

SYNTHETIC_PATIENTS = 1000
SYNTHETIC_SHAPE = 1.5            # Weibull shape k
SYNTHETIC_SCALE = 5.0            # Weibull scale lambda (years)
SYNTHETIC_CENSOR_MAX = 12.0      # censoring ~ Uniform(0, 12) years
SYNTHETIC_LOG_HR = -0.5          # treated vs control
SYNTHETIC_COEFFICIENTS = {       # log-hazard per unit of each term
    "age - 60": 0.04, "sex=male": 0.3, "stage=II": 0.5, "stage=III": 1.0,
    "biomarker^2 - 1": 0.8, "log(creatinine)": 0.5, "bmi": 0.0}


def synthetic_table(seed: int, n: int = SYNTHETIC_PATIENTS) -> st.RawTable:
  """Seeded synthetic trial patients as text cells (see load_synthetic)."""
  rng = np.random.default_rng(seed)
  age, bmi = rng.normal(60, 10, n), rng.normal(27, 4, n)
  biomarker, creatinine = rng.normal(0, 1, n), rng.lognormal(0, 0.3, n)
  male, stage = rng.integers(0, 2, n), rng.choice(3, n, p=[0.4, 0.35, 0.25])
  arm = rng.integers(0, 2, n)
  b = SYNTHETIC_COEFFICIENTS
  eta = (b["age - 60"] * (age - 60) + b["sex=male"] * male
         + b["stage=II"] * (stage == 1) + b["stage=III"] * (stage == 2)
         + b["biomarker^2 - 1"] * (biomarker**2 - 1)
         + b["log(creatinine)"] * np.log(creatinine) + b["bmi"] * bmi
         + SYNTHETIC_LOG_HR * arm)
  # Inverse of S(t | x) = exp(-(t / scale)^k exp(eta)).
  t = SYNTHETIC_SCALE * (-np.log(rng.uniform(size=n)) / np.exp(eta)) ** (
      1.0 / SYNTHETIC_SHAPE)
  c = rng.uniform(0.0, SYNTHETIC_CENSOR_MAX, n)
  cells = {
      "age": [f"{v:.1f}" for v in age], "bmi": [f"{v:.2f}" for v in bmi],
      "biomarker": [f"{v:.4f}" for v in biomarker],
      "creatinine": [f"{v:.4f}" for v in creatinine],
      "sex": [("female", "male")[v] for v in male],
      "stage": [("I", "II", "III")[v] for v in stage],
      "arm": [("control", "treated")[v] for v in arm],
      "time": [f"{v:.6f}" for v in np.minimum(t, c)],
      "event": [str(int(v)) for v in t <= c]}
  return st.RawTable(f"generated survival_synthetic (seed {seed})",
                     list(cells), cells, list(range(2, n + 2)))


SYNTHETIC_SPEC = Spec("", "", "time", "event", "years",
                      "generated by medgen_jax", treatment="arm")


@DATASETS.register("survival_synthetic")
def load_synthetic(data_config) -> Dataset:
  """A seeded synthetic two-arm trial (no files): 1000 patients.

  Covariates: age, bmi (no effect), biomarker (a U-shaped effect, so a
  non-linear model can beat linear Cox), creatinine (log effect), sex
  (female/male) and stage (I/II/III) as text, through the same encoder as
  a file. Times follow a Weibull proportional-hazards model, S(t | x) =
  exp(-(t / 5)^1.5 exp(eta)), with the arm's log-hazard ratio -0.5 and the
  coefficients of SYNTHETIC_COEFFICIENTS (metadata "true_coefficients");
  censoring is independent, Uniform(0, 12) years (about a third censored).
  data.seed seeds both the patients and the split.
  """
  opts = read_options(data_config, SYNTHETIC_SPEC)
  return build_dataset("survival_synthetic", synthetic_table(opts.seed), opts,
                       metadata={
                           "time_unit": "years",
                           "true_log_hazard_ratio": SYNTHETIC_LOG_HR,
                           "true_coefficients": dict(SYNTHETIC_COEFFICIENTS),
                           "weibull_shape": SYNTHETIC_SHAPE,
                           "weibull_scale": SYNTHETIC_SCALE})
