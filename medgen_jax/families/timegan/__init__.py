"""TimeGAN (`medgen train timegan`; Yoon et al. 2019): an embedder and a
recovery network learn a latent space of the series, and a recurrent GAN
with a latent next-step supervisor plays in that space.

task.py: TimeGanTask (flags, stacked real batches, samples); step.py: the
three training phases on the generic update. Config: configs/timegan.py;
networks: models/timegan.py; losses: objectives/timegan.py; shared with rnn
and rgan: families/_sequence.py.
"""

from medgen_jax.families.timegan.task import TimeGanTask

__all__ = ["TimeGanTask"]
