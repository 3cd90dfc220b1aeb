"""Constrained architecture search: budgets, the Optuna driver, results tables and plots."""
