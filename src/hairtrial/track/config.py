"""One validated, frozen configuration object for registration, matching and tracking.

Every distance is in µm of skin (converted once with each image's ``um_per_px``), every
angle in degrees, so that the same configuration holds at any magnification.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hairtrial._validate import InputError, check_positive, check_range
from hairtrial.records import HairClasses


@dataclass(frozen=True)
class TrackConfig:
    """Parameters of visit registration, hair matching and follicle tracking.

    Parameters
    ----------
    model : {'similarity', 'affine'}
        Transform estimated between visits. ``'affine'`` refines the similarity found by
        the robust search with a least-squares affine fit on its inliers.
    neighbours : int
        Exit-point pairs formed per hair for the invariant pair descriptors.
    min_pair_um : float, µm
        Shortest pair used for descriptors (shorter pairs, e.g. hairs of one follicular
        unit, give unstable angles).
    max_scale_change : float
        Largest accepted ``|ln(scale)|`` of a visit against the first after calibration
        (0.2 ≈ ±20 %); against another registered visit, plus that visit's own.
    max_rotation_deg : float, degrees
        Largest accepted rotation of a visit against the first; against another
        registered visit (when the first's field barely overlaps), plus that visit's own
        rotation.
    inlier_um : float, µm
        Distance within which a transformed exit counts as agreeing with a reference exit.
    min_inliers : int
        Fewest agreeing exits for a registration to be accepted.
    min_score : float
        Lowest accepted registration score in [0, 1] (inlier share of the overlap).
    min_score_precise : float
        Lowest accepted score for a precise fit: at least 8 agreeing exits, ≥ 75 % of them
        within half of ``inlier_um`` (chance agreement spreads over the whole disc). Lets
        a true registration through when detection recall is low.
    ambiguity_ratio : float
        A registration is refused when a clearly different transform has at least this
        share of the best transform's inliers (repeating patterns, chance alignments).
    max_hypotheses : int
        Transform hypotheses refined and verified by inlier counting.
    match_gate_um : float, µm
        Largest exit distance (after registration) of a matched hair pair.
    direction_gate_deg : float, degrees
        Largest difference of hair direction of a matched pair (when both are known).
    along_stretch : float
        Along the hair's direction, the final pass's (narrowed) distance gate is this
        many times longer, at most ``match_gate_um``: a measured exit is misjudged along
        its own shaft (a trace stopped short of the opening, or run past it), seldom
        across it. 1 keeps the gate round.
    diameter_sigma_um : float, µm
        Diameter difference that costs as much as a distance of ``match_gate_um / 2``;
        diameters change between visits (treatment, new anagen), so this is a soft cue.
    direction_weight, diameter_weight, unit_weight : float
        Weights of direction, diameter and follicular-unit-size terms in the match cost
        (the distance term has weight 1).
    unit_radius_um : float, µm
        Exits closer than this are taken as one follicular unit (shared ostium).
    local_radius_um : float, µm
        Radius of the neighbourhood whose median residual displacement corrects each
        hair's registered position before the final assignment (skin is not rigid).
    field_margin_um : float, µm
        Follicles within this distance of a field's edge are not judged present or absent
        there (their hair could be just outside the field).
    classes : HairClasses
        Diameter limits for vellus / intermediate / terminal.
    recheck : bool
        When the images are given, look in each image for the shaft of every tracked
        follicle that has no detected hair there (a missed detection reads as a shed
        hair); a clear shaft becomes a *recovered* observation, counted by the count
        endpoints. Off by default: on the measured benchmark it changes the count-change
        error by less than its seed-to-seed spread (``docs/track.md``).
    swapped_ends : bool
        A hair's exit end is judged from one image and is sometimes the wrong end. The
        exit stays put between visits while the tip moves with growth, so hairs left
        unmatched are tried again: one whose *tip* lies at an unmatched follicle's exit
        (direction reversed) is that follicle's hair with its ends swapped; one whose
        exit lies at an unmatched follicle's mean tip is that follicle's hair, its
        earlier hairs having been swapped (their history is turned round). Reported as
        ``SiteTracks.ends_swapped``.
    recheck_position_um : float, µm
        Largest distance between the expected exit (projected from the nearest visit
        where the follicle was detected) and the shaft searched for.
    recheck_angle_deg : float, degrees
        Largest difference between the expected and the searched shaft direction.
    recheck_min_length_um : float, µm
        Length over which the shaft must be dark and continuous (the measurement reports
        no shorter hair: ``MeasureConfig.min_length_um``).
    recheck_contrast_share : float
        Shaft contrast required, as a share of the follicle's own shaft contrast
        (absorptance against the flanking skin) at the visit it is projected from.
    recheck_min_contrast : float, absorptance
        Shaft contrast (``1 - I / I_skin``) required in any case; about the faintest
        shaft the detector follows (``MeasureConfig.ridge_low_od``).
    recheck_width_ratio : float
        The fitted shaft diameter must lie within this factor of the follicle's diameter
        at the visit it is projected from (shafts thin or thicken between cycles).
    recheck_min_visits : int
        Only follicles detected at this many visits or more are recovered; a follicle
        seen once (possibly a misplaced exit or an artefact) is only checked for the
        bare-skin report.
    recheck_bare_share : float
        A location where no line reaches this share of the follicle's own contrast (nor
        ``recheck_min_contrast``) is reported as bare skin (nothing is removed).
    """

    model: Literal["similarity", "affine"] = "similarity"
    neighbours: int = 6
    min_pair_um: float = 120.0
    max_scale_change: float = 0.2
    max_rotation_deg: float = 45.0
    inlier_um: float = 40.0
    min_inliers: int = 6
    min_score: float = 0.4
    min_score_precise: float = 0.25
    ambiguity_ratio: float = 0.6
    max_hypotheses: int = 60
    match_gate_um: float = 80.0
    direction_gate_deg: float = 50.0
    along_stretch: float = 2.0
    diameter_sigma_um: float = 20.0
    direction_weight: float = 0.5
    diameter_weight: float = 0.3
    unit_weight: float = 0.1
    unit_radius_um: float = 150.0
    local_radius_um: float = 1000.0
    field_margin_um: float = 30.0
    classes: HairClasses = field(default_factory=HairClasses)
    recheck: bool = False
    swapped_ends: bool = True
    recheck_position_um: float = 30.0
    recheck_angle_deg: float = 20.0
    recheck_min_length_um: float = 100.0
    recheck_contrast_share: float = 0.5
    recheck_min_contrast: float = 0.05
    recheck_width_ratio: float = 2.0
    recheck_min_visits: int = 2
    recheck_bare_share: float = 0.25

    def __post_init__(self) -> None:
        if self.model not in ("similarity", "affine"):
            raise InputError(
                f"TrackConfig.model: {self.model!r} is not one of {{similarity, affine}}"
            )
        for name in ("neighbours", "min_inliers", "max_hypotheses", "recheck_min_visits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"TrackConfig.{name}: expected an integer ≥ 1, got {value!r}")
        for name in (
            "min_pair_um",
            "inlier_um",
            "match_gate_um",
            "diameter_sigma_um",
            "unit_radius_um",
            "local_radius_um",
        ):
            check_positive(getattr(self, name), name=f"TrackConfig.{name}")
        check_range(self.max_scale_change, name="TrackConfig.max_scale_change", low=0, high=1)
        check_range(self.max_rotation_deg, name="TrackConfig.max_rotation_deg", low=0, high=180)
        check_range(self.min_score, name="TrackConfig.min_score", low=0, high=1)
        check_range(self.min_score_precise, name="TrackConfig.min_score_precise", low=0, high=1)
        check_range(self.ambiguity_ratio, name="TrackConfig.ambiguity_ratio", low=0, high=1)
        check_range(self.direction_gate_deg, name="TrackConfig.direction_gate_deg", low=0,
                    high=180)  # fmt: skip
        check_range(self.field_margin_um, name="TrackConfig.field_margin_um", low=0, high=1e4)
        check_range(self.along_stretch, name="TrackConfig.along_stretch", low=1, high=100)
        for name in ("direction_weight", "diameter_weight", "unit_weight"):
            check_range(getattr(self, name), name=f"TrackConfig.{name}", low=0, high=1e3)
        if not isinstance(self.recheck, bool):
            raise InputError(f"TrackConfig.recheck: expected a bool, got {self.recheck!r}")
        for name in ("recheck_position_um", "recheck_min_length_um"):
            check_positive(getattr(self, name), name=f"TrackConfig.{name}")
        check_range(self.recheck_angle_deg, name="TrackConfig.recheck_angle_deg", low=0, high=90)
        for name in ("recheck_contrast_share", "recheck_min_contrast", "recheck_bare_share"):
            check_range(getattr(self, name), name=f"TrackConfig.{name}", low=0, high=1)
        check_range(self.recheck_width_ratio, name="TrackConfig.recheck_width_ratio", low=1,
                    high=100)  # fmt: skip
        if not isinstance(self.classes, HairClasses):
            raise InputError(
                f"TrackConfig.classes: expected a HairClasses, got {type(self.classes).__name__}"
            )

    def config_hash(self) -> str:
        """Return a short stable hash of the parameters (stored with every result).

        Returns
        -------
        str
            First 16 hex digits of the SHA-256 of the sorted JSON parameters.
        """
        data: dict[str, Any] = asdict(self)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


DEFAULT_CONFIG = TrackConfig()


def resolve_config(config: Any) -> TrackConfig:
    """Return `config`, or the defaults for ``None``; refuse anything else.

    Parameters
    ----------
    config : TrackConfig or None
        The configuration passed to a public function.

    Returns
    -------
    TrackConfig
    """
    if config is None:
        return DEFAULT_CONFIG
    if not isinstance(config, TrackConfig):
        raise InputError(f"config: expected a TrackConfig or None, got {type(config).__name__}")
    return config
