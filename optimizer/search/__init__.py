"""The search: the evaluation engine with its caches, the objectives and constraints, the Optuna
study, and the Pareto set re-scored on the test split."""

from __future__ import annotations

from optimizer.search._constraints import CONSTRAINTS, Limits, infeasibility
from optimizer.search._engine import Config, Evaluation, Evaluator
from optimizer.search._models import (
    SpaceModel,
    canonical_params,
    legacy_block_ks,
    legacy_params,
    modern_trial,
    resolve_model,
    resolve_models,
)
from optimizer.search._objective import Objective, SearchChoices, config_of, suggest_config
from optimizer.search._pareto import (
    SELECTION_RULE,
    config_key,
    entry_of,
    non_dominated,
    pick_best,
    trial_metrics,
    wilson,
)
from optimizer.search._study import (
    SAMPLERS,
    SearchRequest,
    build_evaluator,
    evaluator_choices,
    make_sampler,
    open_study,
    reference_points,
    run_search,
    summarize,
)

__all__ = [
    "CONSTRAINTS",
    "SAMPLERS",
    "SELECTION_RULE",
    "Config",
    "Evaluation",
    "Evaluator",
    "Limits",
    "Objective",
    "SearchChoices",
    "SpaceModel",
    "SearchRequest",
    "build_evaluator",
    "canonical_params",
    "config_of",
    "evaluator_choices",
    "legacy_block_ks",
    "legacy_params",
    "modern_trial",
    "config_key",
    "entry_of",
    "infeasibility",
    "make_sampler",
    "non_dominated",
    "open_study",
    "pick_best",
    "reference_points",
    "resolve_model",
    "resolve_models",
    "run_search",
    "suggest_config",
    "summarize",
    "trial_metrics",
    "wilson",
]
