"""The augmentation engine: ops that sample per-sample parameters, then apply them
to whole batches on any device (see ops.py, registry.py, rng.py, matrices.py)."""
