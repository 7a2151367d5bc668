"""The tracking step of a batch: follicles of every site whose visits are all measured.

After the measurement loops, :func:`ready_sites` finds the sites where every visit image
has a done run for this package version × measurement config and that have no stored
tracks for this version × tracking key yet; :func:`track_site_task` (one Dask task per
site, ~0.2-0.5 s each) loads their hairs, runs :func:`hairtrial.track.track_site` and
stores the follicles with :func:`hairtrial.store.save_tracks` (one transaction per site;
saving again is a no-op).

The tracking key stored as the follicles' ``config_hash`` is the SHA-256 of the
measurement config hash and the :class:`~hairtrial.track.TrackConfig` hash together:
tracks depend on both, so changing either gives new tracks, never a silent mix.

The reads (visit images per site, sites already tracked, hairs of a done run) are the
store's data functions in :mod:`hairtrial.store.tracks`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hairtrial.measure import MeasureConfig
    from hairtrial.store import Store
    from hairtrial.track import SiteTracks, TrackConfig

log = logging.getLogger(__name__)


def tracking_key(measure_hash: str, track_config: TrackConfig) -> str:
    """Return the key stored with tracks: sha256 of measure and track config hashes.

    Parameters
    ----------
    measure_hash : str
        :meth:`MeasureConfig.config_hash` of the measurement.
    track_config : TrackConfig
        Tracking parameters.

    Returns
    -------
    str
        64 hex digits.
    """
    text = f"measure={measure_hash};track={track_config.config_hash()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def observations(tracks: SiteTracks, image_ids: list[int]) -> list[dict[str, Any]]:
    """Turn tracks into :func:`hairtrial.store.save_tracks` observations.

    Parameters
    ----------
    tracks : SiteTracks
        Output of :func:`hairtrial.track.track_site`.
    image_ids : list of int
        Image row id of each visit, in visit order.

    Returns
    -------
    list of dict
        One per follicle × visit row of :meth:`SiteTracks.to_table`: ``follicle_id``,
        ``image_id``, ``x_um``, ``y_um`` (µm, first-visit frame), ``present``,
        ``diameter_um``, ``length_um`` (µm) and ``hair_id``.
    """
    table = tracks.to_table()
    um0 = tracks.um_per_px[0]
    by_day = dict(zip(tracks.visit_days, image_ids, strict=True))
    rows = []
    for rec in table.to_dict("records"):
        f = int(rec["follicle_id"])
        hair_id = rec["hair_id"]
        rows.append(
            {
                "follicle_id": f,
                "image_id": by_day[int(rec["visit_day"])],
                "x_um": float(tracks.position_px[f, 0]) * um0,
                "y_um": float(tracks.position_px[f, 1]) * um0,
                "present": bool(rec["present"]),
                "diameter_um": rec["diameter_um"],
                "length_um": rec["length_um"],
                "hair_id": None if hair_id is None or hair_id != hair_id else int(hair_id),
            }
        )
    return rows


def track_site_from_store(
    *, store: Store, site_id: int, version: str, measure_hash: str, config: TrackConfig
) -> int:
    """Track one site from its stored hairs and save the follicles (one transaction).

    Parameters
    ----------
    store : Store
        Open trial database.
    site_id : int
        Site row id; every visit image must have a done run for `version` × `measure_hash`.
    version : str
        Package version of the runs and of the tracks.
    measure_hash : str
        Measurement config hash of the runs.
    config : TrackConfig
        Tracking parameters.

    Returns
    -------
    int
        Follicles stored (0 when this site was tracked before with the same key).
    """
    from hairtrial._validate import InputError
    from hairtrial.store import save_tracks
    from hairtrial.store.tracks import hairs_of_run, site_visit_images
    from hairtrial.track import track_site

    with store.session() as session:
        visits = site_visit_images(session=session, version=version, config_hash=measure_hash).get(
            site_id, []
        )
        missing = [v.image_id for v in visits if v.run_id is None]
        if not visits or missing:
            raise InputError(f"site {site_id}: images {missing} have no done run to track")
        hairs = [
            hairs_of_run(session=session, run_id=v.run_id) for v in visits if v.run_id is not None
        ]
    tracks = track_site(
        hairs,
        visit_days=[v.day for v in visits],
        um_per_px=[v.um_per_px for v in visits],
        shapes=[v.shape for v in visits],
        image_names=[v.name for v in visits],
        config=config,
        hidden_rows=[v.hidden_rows for v in visits],
    )
    with store.session() as session:
        return save_tracks(
            session=session,
            site_id=site_id,
            version=version,
            config_hash=tracking_key(measure_hash, config),
            observations=observations(tracks, [v.image_id for v in visits]),
        )


def ready_sites(
    *, store: Store, version: str, measure_config: MeasureConfig, config: TrackConfig | None = None
) -> list[int]:
    """Return the sites whose visit images all have a done run and that lack tracks.

    Parameters
    ----------
    store : Store
        Open trial database.
    version : str
        Package version of the measurement runs (and of the tracks).
    measure_config : MeasureConfig
        Measurement parameters of the runs.
    config : TrackConfig, optional
        Tracking parameters (default ``TrackConfig()``).

    Returns
    -------
    list of int
        Site row ids, ascending.
    """
    from hairtrial.store.tracks import site_visit_images, tracked_site_ids
    from hairtrial.track import TrackConfig

    cfg = config if config is not None else TrackConfig()
    measure_hash = measure_config.config_hash()
    with store.session() as session:
        sites = site_visit_images(session=session, version=version, config_hash=measure_hash)
        done = tracked_site_ids(
            session=session, version=version, config_hash=tracking_key(measure_hash, cfg)
        )
    return [
        site_id
        for site_id, visits in sorted(sites.items())
        if site_id not in done and all(v.run_id is not None for v in visits)
    ]


def track_site_task(
    site_id: int,
    *,
    db_url: str,
    image_root: str | None,
    version: str,
    measure_config: MeasureConfig,
    config: TrackConfig | None = None,
) -> str | None:
    """Track one site in a worker (own database connection); return an error or None.

    A failure is returned as ``"site N: reason"`` rather than raised, so that one site
    never stops the others; the site is tried again by the next batch.

    Parameters
    ----------
    site_id : int
        Site row id.
    db_url : str
        Database URL.
    image_root : str or None
        Image store folder.
    version : str
        Package version of the runs and of the tracks.
    measure_config : MeasureConfig
        Measurement parameters of the runs.
    config : TrackConfig, optional
        Tracking parameters (default ``TrackConfig()``).

    Returns
    -------
    str or None
        The failure, or ``None`` when the site was tracked (or had been already).
    """
    from hairtrial.store import open_store
    from hairtrial.track import TrackConfig

    cfg = config if config is not None else TrackConfig()
    try:
        with open_store(db_url, image_root=image_root, migrate=False) as store:
            track_site_from_store(
                store=store, site_id=site_id, version=version,
                measure_hash=measure_config.config_hash(), config=cfg,
            )  # fmt: skip
    except Exception as exc:  # one site's failure must not stop the others
        text = f"site {site_id}: {type(exc).__name__}: {exc}"
        log.warning("tracking failed: %s", text)
        return text
    return None
