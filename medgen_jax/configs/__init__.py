"""Experiment configs: a base (configs/base.py) plus one section per family.

`base.py` holds the fields every family shares; `gan.py` (and later one
module per family) adds its section and defaults; `overrides.py` reads
config files and `--set` values with strict types.
"""
