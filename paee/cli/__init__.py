"""Command-line entry points (paee-data, paee-eval, paee-train, paee-predict, ...)."""
