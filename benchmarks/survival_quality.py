"""Survival: neural Cox and logistic-hazard models against Cox PH, a random
survival forest and Kaplan–Meier, on the same cross-validation folds.

Per dataset (default whas500, gbsg2, flchain, actg320), k stratified folds
(data/survival.py); on each fold every model is fitted on the train part and
scored on the held-out fold with the same code (metrics/survival.py):
Harrell's C-index and the integrated Brier score over the same grid (10th to
90th percentile of the fold's event times). The neural models are
`medgen train survival` runs (the loop, checkpoint and restored task a user
gets); the baselines see the same encoded covariates
(baselines/survival.py). Table: mean ± std over folds.

The treatment part (--effect, ACTG175: four arms, zidovudine alone as the
reference) trains the neural Cox model with the arm as an input, predicts
every patient's curve under each arm, and reports the average hazard ratio
and the difference in restricted mean survival time with their bootstrap
intervals, beside lifelines' Cox model adjusted for the same covariates
(hazard ratio and 95 % interval) and the Kaplan–Meier RMST difference of
the randomised arms.

    python benchmarks/survival_quality.py --data-dir ../shared/data
    python benchmarks/survival_quality.py --data-dir ../shared/data \
        --datasets whas500 --folds 2 --steps 300        # quick
    python benchmarks/survival_quality.py --data-dir ../shared/data \
        --datasets none --effect actg175

Writes benchmarks/results/survival_quality.json (and the effect table there).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time

import jax
import numpy as np

from medgen_jax.baselines import survival as baselines
from medgen_jax.configs.overrides import apply_overrides
from medgen_jax.data.registry import load_dataset
from medgen_jax.metrics import survival as sm
from medgen_jax.train.loop import load_run, train_and_evaluate
from medgen_jax.train.task import get_config

HERE = pathlib.Path(__file__).resolve().parent
DATASETS = ("whas500", "gbsg2", "flchain", "actg320")
NEURAL = {"deepsurv": {"survival.objective": "cox"},
          "logistic_hazard": {"survival.objective": "logistic_hazard"}}
BASELINES = ("cox_ph", "rsf", "km")
SUBDIRS = {"whas500": "sksurv", "gbsg2": "sksurv", "actg320": "sksurv",
           "flchain": "sksurv", "veteran": "sksurv", "lung": "lifelines",
           "actg175": "lifelines", "kidney_transplant": "lifelines",
           "larynx": "lifelines"}


def data_dir_of(root: str, name: str) -> str:
  """The folder of a named table under --data-dir (its sksurv/ or
  lifelines/ subfolder when there is one)."""
  if not root:
    return ""
  sub = pathlib.Path(root) / SUBDIRS.get(name, "")
  return str(sub if sub.is_dir() else root)


def make_config(name: str, data_dir: str, fold: int, folds: int, steps: int,
                values: dict, seed: int, texts: dict | None = None):
  c = get_config("survival")
  c.data.name, c.data.data_dir = name, data_dir
  c.data.folds, c.data.fold = folds, fold
  c.seed = seed
  c.train.steps = steps
  c.train.eval_every = c.train.checkpoint_every = c.train.log_every = steps
  c.train.progress = False
  apply_overrides(c, values, "benchmark")
  if texts:
    apply_overrides(c, texts, "--set", from_text=True)
  return c


def train_neural(config, workdir: pathlib.Path):
  """A `medgen train survival` run; returns the restored (task, state)."""
  train_and_evaluate(config, workdir)
  run = load_run(workdir)
  return run.task, run.state


def covariates(arrays, arms: int) -> np.ndarray:
  """The baselines' inputs: the encoded covariates and, for data with a
  treatment arm, its one-hot columns (the neural models see it too)."""
  if not arms:
    return arrays["x"]
  onehot = np.eye(arms, dtype=np.float32)[arrays["treatment"]][:, 1:]
  return np.concatenate([arrays["x"], onehot], 1)


def score(train, test, risk, surv, times) -> dict[str, float]:
  return sm.survival_metrics(train["time"], train["event"], test["time"],
                             test["event"], risk, surv, times,
                             tau=float(times[-1]))


def run_dataset(name: str, args, overrides: dict) -> dict:
  rows: dict[str, list[dict]] = {m: [] for m in (*args.models,)}
  data_dir = data_dir_of(args.data_dir, name)
  for fold in range(args.folds):
    config = make_config(name, data_dir, fold, args.folds, args.steps, {},
                         args.seed)
    ds = load_dataset(config.data)
    train, test = ds.split("train").arrays, ds.split("test").arrays
    times = sm.evaluation_times(test["time"], test["event"], n=50)
    arms = len(ds.metadata.get("treatment_names", ()))
    x, x_test = covariates(train, arms), covariates(test, arms)
    for model in args.models:
      t0 = time.perf_counter()
      if model in NEURAL:
        cfg = make_config(name, data_dir, fold, args.folds, args.steps,
                          NEURAL[model], args.seed, overrides)
        with tempfile.TemporaryDirectory() as tmp:
          task, state = train_neural(cfg, pathlib.Path(tmp) / "run")
          risk, surv = task.risk_and_curves(state, test, times)
      elif model == "cox_ph":
        risk, surv = baselines.cox_ph(x, train["time"], train["event"],
                                      x_test, times)
      elif model == "rsf":
        risk, surv = baselines.random_survival_forest(
            x, train["time"], train["event"], x_test, times,
            seed=args.seed + fold)
      elif model == "km":
        risk, surv = baselines.kaplan_meier(train["time"], train["event"],
                                            len(test["x"]), times)
      else:
        raise SystemExit(f"unknown model {model!r}")
      result = score(train, test, risk, surv, times)
      result["seconds"] = time.perf_counter() - t0
      rows[model].append(result)
      print(f"  {name} fold {fold} {model:16s} C {result['c_index']:.3f} "
            f"IBS {result['ibs']:.4f} ({result['seconds']:.1f} s)",
            flush=True)
  summary = {}
  for model, results in rows.items():
    summary[model] = {
        k: {"mean": float(np.mean([r[k] for r in results])),
            "std": float(np.std([r[k] for r in results], ddof=1))
            if len(results) > 1 else 0.0}
        for k in ("c_index", "uno_c", "ibs", "seconds")}
    summary[model]["folds"] = results
  return {"n": int(sum(len(ds.split(s)) for s in ds.splits)),
          "events": int(sum(ds.split(s)["event"].sum() for s in ds.splits)),
          "models": summary}


def print_table(results: dict) -> None:
  print(f"\n{'dataset':10s} {'model':16s} {'C-index':>15s} {'Uno C':>15s} "
        f"{'IBS':>17s}")
  for name, r in results.items():
    for model, m in r["models"].items():
      fmt = lambda k, p: f"{m[k]['mean']:.{p}f} ± {m[k]['std']:.{p}f}"
      print(f"{name:10s} {model:16s} {fmt('c_index', 3):>15s} "
            f"{fmt('uno_c', 3):>15s} {fmt('ibs', 4):>17s}")


def independent_columns(x: np.ndarray) -> np.ndarray:
  """x without its constant columns and without columns that are linear
  combinations of earlier ones (ACTG175's `str2` is implied by `strat`), so
  the unpenalised Cox model of the reference has a unique fit."""
  kept = []
  for j in range(x.shape[1]):
    if x[:, j].std() == 0:
      continue
    trial = np.column_stack([x[:, kept + [j]], np.ones(len(x))])
    if np.linalg.matrix_rank(trial) == len(kept) + 2:
      kept.append(j)
  return x[:, kept]


def run_effect(name: str, args, overrides: dict) -> dict:
  """Counterfactual arms of the neural Cox model vs lifelines' adjusted Cox."""
  data_dir = data_dir_of(args.data_dir, name)
  cfg = make_config(name, data_dir, 0, 0, args.steps,
                    {"survival.objective": "cox"}, args.seed, overrides)
  with tempfile.TemporaryDirectory() as tmp:
    task, state = train_neural(cfg, pathlib.Path(tmp) / "run")
    ds = load_dataset(cfg.data)
    every = {k: np.concatenate([ds.split(s)[k] for s in ds.splits])
             for k in ds.keys}
    neural = task.effects(state, every)
  arms, tau = task.arms, task.tau()
  import lifelines
  import pandas as pd
  x = independent_columns(every["x"].astype(np.float64))
  frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
  for a in range(1, len(arms)):
    frame[f"arm_{a}"] = (every["treatment"] == a).astype(float)
  frame["T"], frame["E"] = every["time"], every["event"]
  cox = lifelines.CoxPHFitter().fit(frame, "T", "E")
  table = []
  for a, row in enumerate(neural, start=1):
    ci = cox.confidence_intervals_.loc[f"arm_{a}"]
    sel = lambda k: every["treatment"] == k
    km = [lifelines.KaplanMeierFitter().fit(every["time"][sel(k)],
                                            every["event"][sel(k)])
          for k in (0, a)]
    km_rmst = [float(lifelines.utils.restricted_mean_survival_time(f, tau))
               for f in km]
    table.append({
        "arm": row["arm"], "reference": row["reference"], "tau": tau,
        "neural_hr": row["hr"], "neural_delta_rmst": row["delta_rmst"],
        "cox_hr": {"mean": float(np.exp(cox.params_[f"arm_{a}"])),
                   "lo": float(np.exp(ci.iloc[0])),
                   "hi": float(np.exp(ci.iloc[1]))},
        "km_delta_rmst": km_rmst[1] - km_rmst[0]})
  print(f"\n{name}: arms vs {arms[0]} (RMST up to {tau:g})")
  print(f"{'arm':24s} {'neural HR [95% boot]':>24s} {'Cox HR [95% CI]':>22s} "
        f"{'neural dRMST ± sd':>20s} {'KM dRMST':>9s}")
  for r in table:
    h, c, d = r["neural_hr"], r["cox_hr"], r["neural_delta_rmst"]
    print(f"{r['arm']:24s} {h['mean']:6.3f} [{h['lo']:.3f}, {h['hi']:.3f}]"
          f"{'':3s} {c['mean']:6.3f} [{c['lo']:.3f}, {c['hi']:.3f}]"
          f" {d['mean']:9.1f} ± {d['std']:5.1f} {r['km_delta_rmst']:9.1f}")
  return {"dataset": name, "arms": list(arms), "tau": tau, "rows": table}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data-dir", default="",
                 help="folder holding sksurv/ and lifelines/ (../shared/data)")
  p.add_argument("--datasets", default=",".join(DATASETS),
                 help="comma-separated names, or 'none'")
  p.add_argument("--models", default=",".join((*NEURAL, *BASELINES)))
  p.add_argument("--folds", type=int, default=5)
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="config override of the neural models")
  p.add_argument("--effect", default="", help="dataset for the treatment "
                 "table, e.g. actg175")
  p.add_argument("--out", default=str(HERE / "results" /
                                      "survival_quality.json"))
  args = p.parse_args()
  args.models = [m for m in args.models.split(",") if m]
  overrides = dict(item.split("=", 1) for item in args.set)
  results = {}
  names = [] if args.datasets == "none" else args.datasets.split(",")
  for name in names:
    print(f"{name}: {args.folds} folds", flush=True)
    results[name] = run_dataset(name, args, overrides)
  if results:
    print_table(results)
  effect = run_effect(args.effect, args, overrides) if args.effect else None
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  record = {"command": " ".join(["python", "benchmarks/survival_quality.py",
                                  *sys.argv[1:]]),
      "machine": platform.platform(), "device": str(jax.devices()[0]),
      "steps": args.steps, "folds": args.folds, "overrides": overrides,
      "datasets": results, "effect": effect}
  previous = json.loads(out.read_text()) if out.exists() else {}
  # Datasets run before (with their own command) are kept beside new ones.
  record["datasets"] = {**previous.get("datasets", {}), **results}
  commands = previous.get("commands") or {
      name: previous.get("command", "") for name in previous.get("datasets",
                                                                  {})}
  record["commands"] = {**commands,
                        **{name: record["command"] for name in results}}
  if effect is None and previous.get("effect"):
    record["effect"] = previous["effect"]
  out.write_text(json.dumps(record, indent=1))
  print(f"\nwrote {out}")


if __name__ == "__main__":
  main()
