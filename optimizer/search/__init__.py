"""The search: scoring configurations (the evaluation engine with its caches); the Optuna study
arrives with the rest of issue 5."""

from __future__ import annotations

from optimizer.search._engine import Config, Evaluation, Evaluator

__all__ = ["Config", "Evaluation", "Evaluator"]
