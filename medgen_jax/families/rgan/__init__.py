"""The recurrent GAN family (`medgen train rgan`): RCGAN (Esteban et al.
2017) over windows of physiological records, with TimeGAN's supervised
next-step loss as an option (Yoon et al. 2019).

task.py: RganTask (flags, stacked real batches, samples); step.py: the
per-step minimax losses and the supervisor on the generic update. Config:
configs/rgan.py; models: models/recurrent.py; shared with rnn:
families/_sequence.py.
"""

from medgen_jax.families.rgan.task import RganTask

__all__ = ["RganTask"]
