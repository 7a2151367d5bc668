"""The phototrichogram step of a batch: anagen fraction of every measured re-image pair.

After the measurement loops, :func:`ready_pairs` finds each phototrichogram re-image
(kind ``clipped-regrowth``) whose clipped image and itself have a done run for this
package version × measurement config and that has no stored result for this key yet;
:func:`phototrichogram_task` (one Dask task per pair, ~1 s) reads both images and their
stored hairs, runs :func:`hairtrial.track.phototrichogram.phototrichogram` on them (growth
traced along each clipped hair on both images) and stores the result with
:func:`hairtrial.store.phototrichograms.save_phototrichogram` (one transaction; saving
again is a no-op).

The key stored with a result is the SHA-256 of the measurement config hash, the
:class:`~hairtrial.track.TrackConfig` hash and the anagen growth threshold: the result
depends on all three.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hairtrial.measure import ImageMeasurement, MeasureConfig
    from hairtrial.records import HairRecord
    from hairtrial.store import Store
    from hairtrial.store.phototrichograms import PhotoPair
    from hairtrial.track import TrackConfig

log = logging.getLogger(__name__)

#: Growth at or above which a hair is anagen, µm/day.
ANAGEN_MIN_UM_PER_DAY = 100.0


def phototrichogram_key(
    measure_hash: str, track_config: TrackConfig, anagen_min_um_per_day: float
) -> str:
    """Return the key stored with results: sha256 of the parameters they depend on.

    Parameters
    ----------
    measure_hash : str
        :meth:`MeasureConfig.config_hash` of the measurement.
    track_config : TrackConfig
        Registration parameters.
    anagen_min_um_per_day : float, µm/day
        Anagen growth threshold.

    Returns
    -------
    str
        64 hex digits.
    """
    text = (
        f"measure={measure_hash};track={track_config.config_hash()};"
        f"anagen_min_um_per_day={anagen_min_um_per_day!r}"
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ready_pairs(
    *,
    store: Store,
    version: str,
    measure_config: MeasureConfig,
    config: TrackConfig | None = None,
    anagen_min_um_per_day: float = ANAGEN_MIN_UM_PER_DAY,
) -> list[PhotoPair]:
    """Return the pairs whose two images have done runs and that have no stored result.

    Parameters
    ----------
    store : Store
        Open trial database.
    version : str
        Package version of the runs (and of the results).
    measure_config : MeasureConfig
        Measurement parameters of the runs.
    config : TrackConfig, optional
        Registration parameters (default ``TrackConfig()``).
    anagen_min_um_per_day : float, µm/day
        Anagen growth threshold.

    Returns
    -------
    list of PhotoPair
    """
    from hairtrial.store.phototrichograms import phototrichogram_pairs, stored_phototrichograms
    from hairtrial.track import TrackConfig

    cfg = config if config is not None else TrackConfig()
    measure_hash = measure_config.config_hash()
    key = phototrichogram_key(measure_hash, cfg, anagen_min_um_per_day)
    with store.session() as session:
        pairs = phototrichogram_pairs(session=session, version=version, config_hash=measure_hash)
        done = stored_phototrichograms(session=session, version=version, key=key)
    return [
        p
        for p in pairs
        if p.regrowth_image_id not in done
        and p.regrowth_run_id is not None
        and p.clipped_run_id is not None
    ]


def _as_measurement(
    hairs: list[HairRecord], um_per_px: float, shape: tuple[int, int], config: MeasureConfig
) -> ImageMeasurement:
    """Wrap stored hairs as an :class:`ImageMeasurement` (endpoints recomputed)."""
    from hairtrial.measure import ImageMeasurement
    from hairtrial.records import summarize_hairs

    area = shape[0] * shape[1] * um_per_px * um_per_px * 1e-8
    return ImageMeasurement(
        hairs=tuple(hairs),
        summary=summarize_hairs(hairs, area_cm2=area, classes=config.classes),
        histogram_counts=(),
        histogram_edges_um=(),
        # stored with each hair since store revision 0004; 0.5 (no preference) before
        exit_confidence=tuple(float(h.extra.get("exit_confidence", 0.5)) for h in hairs),
        um_per_px=um_per_px,
        shape=shape,
        area_cm2=area,
        psf_sigma_um=0.0,
        config_hash=config.config_hash(),
    )


def phototrichogram_from_store(
    *,
    store: Store,
    pair: PhotoPair,
    version: str,
    measure_config: MeasureConfig,
    config: TrackConfig,
    anagen_min_um_per_day: float = ANAGEN_MIN_UM_PER_DAY,
) -> bool:
    """Compute one pair's phototrichogram from the store and save it (one transaction).

    Parameters
    ----------
    store : Store
        Open trial database (with its image store).
    pair : PhotoPair
        Both runs done.
    version : str
        Package version of the runs and of the result.
    measure_config : MeasureConfig
        Measurement parameters of the runs (and of the absorptance maps).
    config : TrackConfig
        Registration parameters.
    anagen_min_um_per_day : float, µm/day
        Anagen growth threshold.

    Returns
    -------
    bool
        True when stored, False when it had been stored before.
    """
    from hairtrial._validate import InputError
    from hairtrial.store import read_stored_image
    from hairtrial.store.phototrichograms import save_phototrichogram
    from hairtrial.store.tracks import hairs_of_run
    from hairtrial.track.phototrichogram import phototrichogram

    if pair.clipped_run_id is None or pair.regrowth_run_id is None:
        raise InputError(f"image {pair.regrowth_image_id}: the pair is not measured yet")
    with store.session() as session:
        before = hairs_of_run(session=session, run_id=pair.clipped_run_id)
        after = hairs_of_run(session=session, run_id=pair.regrowth_run_id)
    first_image = read_stored_image(store=store, image_id=pair.clipped_image_id).pixels
    second_image = read_stored_image(store=store, image_id=pair.regrowth_image_id).pixels
    first = _as_measurement(before, pair.um_per_px[0], first_image.shape[:2], measure_config)
    second = _as_measurement(after, pair.um_per_px[1], second_image.shape[:2], measure_config)
    result = phototrichogram(
        first, second, days=pair.days, images=(first_image, second_image),
        anagen_min_um_per_day=anagen_min_um_per_day, config=config,
        measure_config=measure_config,
    )  # fmt: skip
    if not result.registration.ok:
        log.warning(
            "image %d: phototrichogram not registered (%s)",
            pair.regrowth_image_id, result.registration.reason,
        )  # fmt: skip
    key = phototrichogram_key(measure_config.config_hash(), config, anagen_min_um_per_day)
    with store.session() as session:
        return save_phototrichogram(
            session=session, pair=pair, version=version, key=key, result=result.to_json()
        )


def phototrichogram_task(
    pair: PhotoPair,
    *,
    db_url: str,
    image_root: str | None,
    version: str,
    measure_config: MeasureConfig,
    config: TrackConfig | None = None,
) -> str | None:
    """Compute one pair in a worker (own database connection); return an error or None.

    A failure is returned as ``"image N: reason"`` rather than raised, so that one pair
    never stops the others; the pair is tried again by the next batch. A pair whose
    fields cannot be registered is not a failure: its result says so (no fraction).

    Parameters
    ----------
    pair : PhotoPair
        The pair, both runs done.
    db_url : str
        Database URL.
    image_root : str or None
        Image store folder.
    version : str
        Package version of the runs and of the result.
    measure_config : MeasureConfig
        Measurement parameters of the runs.
    config : TrackConfig, optional
        Registration parameters (default ``TrackConfig()``).

    Returns
    -------
    str or None
    """
    from hairtrial.store import open_store
    from hairtrial.track import TrackConfig

    cfg = config if config is not None else TrackConfig()
    try:
        with open_store(db_url, image_root=image_root, migrate=False) as store:
            phototrichogram_from_store(
                store=store, pair=pair, version=version, measure_config=measure_config,
                config=cfg,
            )  # fmt: skip
    except Exception as exc:  # one pair's failure must not stop the others
        text = f"image {pair.regrowth_image_id}: {type(exc).__name__}: {exc}"
        log.warning("phototrichogram failed: %s", text)
        return text
    return None
