"""The codecs a search space offers, and the trial parameters that choose among them at a site.

A search space's codec sections (``pca:``, ``image:``, ``bottleneck:``, ...; every top-level key
that is not about the models or the data) are read by the registered codecs' options. At a site
(model, input size, split) the codecs of its place are offered:

1. each codec with trained instances at this site (``variants``: a learned bottleneck) first, as one
   categorical ``{kind}_{model}_{size}_k{k}`` over ``none`` and their names;
2. then the other offered codecs of the place: a categorical ``codec`` (``input_codec`` and
   ``output_codec`` at the other places) when there are several, then the chosen codec's own
   parameters (its ``options.suggest``).

The parameter names are the ones studies have always used (``codec`` over ``pca, float16``,
``bottleneck_...``, ``image_format``...), so older studies resume and read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.codecs._base import ACTIVATION, INPUT, OUTPUT, Codec
from optimizer.codecs._fit import Site
from optimizer.codecs._options import Suggester
from optimizer.codecs._registry import CODECS
from optimizer.errors import UserError

if TYPE_CHECKING:
    from optimizer.config import SearchSpace

__all__ = ["CodecChoices", "codec_of_trial", "selector_param", "variant_param"]

_SELECTOR = {INPUT: "input_codec", ACTIVATION: "codec", OUTPUT: "output_codec"}
NONE = "none"


def selector_param(place: str) -> str:
    """The trial parameter that picks among several codecs at a place."""
    return _SELECTOR[place]


def variant_param(kind: str, site: Site) -> str:
    """The trial parameter that picks a trained instance (or ``none``) at a site."""
    return f"{kind}_{site.model}_{site.input_size}_k{site.k}"


@dataclass(frozen=True)
class _Offer:
    codec: type[Codec]
    choices: Any


class CodecChoices:
    """The codecs a search space offers, with their parsed choices, in registry order."""

    def __init__(self, offers: list[_Offer]) -> None:
        self.offers = offers

    @classmethod
    def of(cls, space: SearchSpace) -> CodecChoices:
        """Read every codec section of ``space`` (a UserError names file, field and rule)."""
        from optimizer.config import Reader

        sections = {c.options.section: c for c in CODECS.values() if c.options.section}
        unknown = sorted(set(space.codecs) - set(sections))
        if unknown:
            raise UserError(
                f"{space.path}: field {unknown[0]}: unknown key (codec sections: {', '.join(sorted(sections))}; "
                "the others: name, description, dataset, models, input_sizes, cuts, weights, samples)"
            )
        offers = []
        for codec in CODECS.values():
            section = codec.options.section
            raw = space.codecs.get(section) if section else None
            reader = Reader(raw, Path(space.path), section) if section and raw is not None else None
            offered, choices = codec.options.offered(raw, reader)
            if offered:
                offers.append(_Offer(codec, choices))
        return cls(offers)

    def places(self) -> set[str]:
        """The places some offered codec codes at."""
        return {o.codec.place for o in self.offers}

    def _at(self, place: str) -> list[_Offer]:
        return [o for o in self.offers if o.codec.place == place]

    def _general(self, place: str) -> list[_Offer]:
        """The offered codecs of a place that are chosen by parameters, not by a trained instance."""
        return [o for o in self._at(place) if not o.codec.options.placed]

    def variants(self, site: Site) -> list[tuple[type[Codec], list[str]]]:
        """The trained instances at this site, per codec that has some."""
        found = [(o.codec, o.codec.options.variants(o.choices, site)) for o in self._at(site.place)]
        return [(codec, names) for codec, names in found if names]

    # --- one trial -----------------------------------------------------------------------------
    def suggest(self, trial: Suggester, site: Site) -> dict[str, Any]:
        """The codec parameters (with ``kind``) of one trial at ``site``."""
        for codec, names in self.variants(site):
            name = trial.suggest_categorical(variant_param(codec.kind, site), [NONE, *names])
            if name != NONE:
                offer = next(o for o in self.offers if o.codec is codec)
                return {"kind": codec.kind, **codec.options.variant(offer.choices, name)}
        offer = self._choose(trial, site.place)
        return {"kind": offer.codec.kind, **offer.codec.options.suggest(trial, offer.choices, site)}

    def _choose(self, trial: Suggester, place: str) -> _Offer:
        general = self._general(place)
        if not general:
            raise UserError(f"the search space offers no codec at the {place}; add a codec section for it")
        if len(general) == 1:
            return general[0]
        kind = trial.suggest_categorical(selector_param(place), [o.codec.kind for o in general])
        return next(o for o in general if o.codec.kind == kind)

    # --- every trial, and the reference points ------------------------------------------------
    def grid(self, site: Site) -> list[dict[str, Any]]:
        """Every trial-parameter set of the codecs at ``site`` (without the site's own parameters)."""
        out: list[dict[str, Any]] = []
        base: dict[str, Any] = {}
        for codec, names in self.variants(site):
            key = variant_param(codec.kind, site)
            out += [{**base, key: name} for name in names]
            base = {**base, key: NONE}
        general = self._general(site.place)
        for o in general:
            select = {selector_param(site.place): o.codec.kind} if len(general) > 1 else {}
            out += [{**base, **select, **params} for params in o.codec.options.grid(o.choices, site)]
        return out

    def references(self, site: Site) -> list[dict[str, Any]]:
        """The reference points of the parameter-chosen codecs at ``site`` (trained instances there
        are declined: each is a reference of its own, see :meth:`variant_references`)."""
        base = {variant_param(codec.kind, site): NONE for codec, _ in self.variants(site)}
        general = self._general(site.place)
        out = []
        for o in general:
            select = {selector_param(site.place): o.codec.kind} if len(general) > 1 else {}
            out += [{**base, **select, **params} for params in o.codec.options.references(o.choices, site)]
        return out

    def variant_references(self, site: Site) -> list[dict[str, Any]]:
        """Every trained instance at ``site``, once each."""
        return [{variant_param(codec.kind, site): name} for codec, names in self.variants(site) for name in names]


def codec_of_trial(params: dict[str, Any], place: str) -> dict[str, Any]:
    """The codec parameters (with ``kind``) a trial's parameters name, for a trial that failed before
    it stored them: the chosen trained instance's name, the selector's kind, or the codec whose
    trial parameters it has; ``{"kind": "?"}`` when nothing says."""
    for key, value in params.items():
        for name, codec in CODECS.items():
            if codec.options.placed and key.startswith(f"{name}_") and value != NONE:
                return {"kind": name, "name": value}
    chosen = params.get(selector_param(place))
    if chosen in CODECS:
        return {"kind": chosen, **CODECS[chosen].options.from_trial(params)}
    for codec in CODECS.values():
        if codec.place == place and any(key in params for key in codec.options.trial_keys):
            return {"kind": codec.kind, **codec.options.from_trial(params)}
    at_place = [c for c in CODECS.values() if c.place == place and c.options.section is None]
    return {"kind": at_place[0].kind} if len(at_place) == 1 and place != ACTIVATION else {"kind": "?"}
