"""A codec's part of a search space: its section of the YAML, and the trial parameters it adds.

Each codec class carries one ``CodecOptions`` (``Codec.options``). The search asks it, at each site
(model, input size, split) of its place, for parameters: ``suggest`` (define-by-run, Optuna),
``grid`` (every parameter set, for the grid sampler), ``references`` (the parameter sets a study
always scores). A codec with trained instances tied to one site (a learned bottleneck) lists them
with ``variants``; the search offers each as a named choice at its site (see _space).

Trial parameter names are the codec's own and stay stable across versions: studies resume and old
studies' parameters map back to configurations. Codecs without a section (float16, the class id)
are offered wherever their place is; codecs with one only when the space has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from optimizer.codecs._fit import Site

if TYPE_CHECKING:  # the deployed halves import codecs without the config layer's YAML reader
    from optimizer.config import Reader

__all__ = ["CodecOptions", "ReferenceOptions", "Suggester"]


class Suggester(Protocol):
    """The part of an Optuna trial the options use (a Trial, FixedTrial or FrozenTrial replay)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class CodecOptions:
    """A codec with no parameters and no section: offered at every site of its place."""

    section: ClassVar[str | None] = None  # the search space's key for this codec's choices
    trial_keys: ClassVar[tuple[str, ...]] = ()  # trial parameters it suggests (besides the codec choice)
    placed: ClassVar[bool] = False  # offered as trained instances tied to sites (variants), not by parameters

    def parse(self, reader: Reader) -> Any:
        """The section, checked (a UserError names file, field and rule)."""
        return None

    def offered(self, raw: Any, reader: Reader | None) -> tuple[bool, Any]:
        """(whether the space offers the codec, its choices): a codec with a section is offered when
        the space has it (``reader`` reads it; None: absent), one without a section always."""
        if self.section is None:
            return True, None
        if reader is None:
            return False, None
        return True, self.parse(reader)

    def suggest(self, trial: Suggester, choices: Any, site: Site) -> dict[str, Any]:
        """The codec's parameters (without ``kind``) for one trial at ``site``."""
        return {}

    def grid(self, choices: Any, site: Site) -> list[dict[str, Any]]:
        """Every trial-parameter set :meth:`suggest` can return at ``site``."""
        return [{}]

    def references(self, choices: Any, site: Site) -> list[dict[str, Any]]:
        """Trial-parameter sets scored in every study (the search places them; see search)."""
        return []

    def variants(self, choices: Any, site: Site) -> list[str]:
        """Names of trained instances that exist for exactly this site (most codecs: none)."""
        return []

    def variant(self, choices: Any, name: str) -> dict[str, Any]:
        """The codec parameters (without ``kind``) of one named variant."""
        raise KeyError(name)

    def from_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        """The codec parameters a trial's parameters name (a failed trial has no stored params)."""
        return {key: params[key] for key in self.trial_keys if key in params}


class ReferenceOptions(CodecOptions):
    """A codec with no parameters that every study scores at its place (float16, the class id)."""

    def references(self, choices: Any, site: Site) -> list[dict[str, Any]]:
        return [{}]
