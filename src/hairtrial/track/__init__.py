"""Tracking: the same follicles across visits, hair to hair.

- :func:`register_visits` — each visit's image onto the first, from hair exit points
  (image features as a fallback), with a quality score and an explicit refusal.
- :func:`match_hairs` — one-to-one hair matching between two registered images;
  :func:`match_pair` registers and matches a phototrichogram pair.
- :func:`track_site` — follicle ids across all visits of a site (kept through gaps),
  giving :class:`SiteTracks` with the trajectory table, change endpoints and JSON.
- :mod:`hairtrial.track.metrics` — scoring against simulator truth, apart from the
  algorithm.
"""

from hairtrial.track.config import TrackConfig
from hairtrial.track.match import HairMatch, PairMatch, match_hairs, match_pair
from hairtrial.track.register import Registration, register_visits
from hairtrial.track.site import SiteTracks, track_site

__all__ = [
    "HairMatch",
    "PairMatch",
    "Registration",
    "SiteTracks",
    "TrackConfig",
    "match_hairs",
    "match_pair",
    "register_visits",
    "track_site",
]
