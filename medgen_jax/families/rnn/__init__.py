"""The autoregressive recurrent family (`medgen train rnn`): multichannel
physiological series (ECG, arterial pressure, respiration, sines).

task.py: RnnTask (flags, batches, held-out NLL and forecasts, samples);
step.py: the teacher-forced per-example NLL on the generic update, and
sampling / forecasting under lax.scan. Config: configs/rnn.py; model:
models/recurrent.py; objective: objectives/sequence.py; shared with rgan:
families/_sequence.py.
"""

from medgen_jax.families.rnn.task import RnnTask

__all__ = ["RnnTask"]
