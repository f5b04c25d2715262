"""Classical baselines, fitted on a train split, that the models are
measured against in the same table (sleep.py: Markov chains of hypnograms,
time-of-day count models of actigraphy)."""
