"""Model families, one module (or package) each, found by name.

`medgen train NAME` imports `medgen_jax.families.NAME`, whose import
registers the family's task in `medgen_jax.train.task.TASKS`. A family keeps
its task, flags and step here, its config in `configs/NAME.py`, its model in
`models/` and its objective in `objectives/`; nothing else changes.
"""
