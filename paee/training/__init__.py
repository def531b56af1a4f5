"""Training loop, optimisation schedule, checkpoints."""
