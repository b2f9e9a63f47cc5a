"""The search: the evaluation engine with its caches, the objectives and constraints, the Optuna
study, and the Pareto set re-scored on the test split."""

from __future__ import annotations

from optimizer.search._engine import Config, Evaluation, Evaluator
from optimizer.search._objective import N_BLOCKS, Limits, Objective, suggest_config
from optimizer.search._pareto import config_key, entry_of, non_dominated, pick_best, wilson
from optimizer.search._study import (
    SAMPLERS,
    SearchRequest,
    build_evaluator,
    make_sampler,
    open_study,
    reference_points,
    run_search,
    summarize,
)

__all__ = [
    "N_BLOCKS",
    "SAMPLERS",
    "Config",
    "Evaluation",
    "Evaluator",
    "Limits",
    "Objective",
    "SearchRequest",
    "build_evaluator",
    "config_key",
    "entry_of",
    "make_sampler",
    "non_dominated",
    "open_study",
    "pick_best",
    "reference_points",
    "run_search",
    "suggest_config",
    "summarize",
    "wilson",
]
