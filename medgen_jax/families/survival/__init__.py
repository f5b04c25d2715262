"""The survival family (`medgen train survival`): time to event with
censoring, and the effect of a treatment on it.

task.py: SurvivalTask (flags, batches, held-out concordance and Brier
scores, counterfactual arms, simulated outcomes, `medgen predict`);
step.py: the per-example Cox / logistic-hazard NLL on the generic update;
effect.py: RMST differences and hazard ratios between arms, and sampling
event times from fitted curves. Config: configs/survival.py; model:
models/survival.py; objectives: objectives/survival.py; data:
data/survival.py; metrics: metrics/survival.py.
"""

from medgen_jax.families.survival.task import SurvivalTask

__all__ = ["SurvivalTask"]
