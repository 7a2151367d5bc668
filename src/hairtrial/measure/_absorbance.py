"""From raw pixels to an absorptance image in which hairs are ridges.

A hair shaft attenuates the light coming back from the skin; the attenuation, measured as
absorptance ``1 - I / I_skin`` (for faint shafts the optical density) against a local
estimate of bare skin, is the same for a hair on pale or dark skin, in the bright centre or
the dark corner of a vignetted field. Melanin absorbs across the whole visible spectrum, so
the per-channel absorptances are combined by their minimum: a pen mark, a red measuring
circle or blue text absorbs in one or two channels only and drops out, while a brown or
black shaft stays.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

#: Smallest background level (sensor floor), avoids division by zero.
_MIN_LEVEL = 1.0 / 512.0


def to_float_channels(image: NDArray[Any]) -> F32:
    """Return `image` as float32 ``(M, N, C)`` scaled to [0, 1] (a new array).

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        Integer or float pixels; floats with a maximum above 1 are scaled by their maximum.

    Returns
    -------
    (M, N, C) ndarray of float32
        C is 1 for greyscale input, 3 for RGB.
    """
    arr = image if image.ndim == 3 else image[:, :, None]
    if arr.dtype.kind in "ui":
        scale = float(np.iinfo(arr.dtype).max)
    else:
        peak = float(arr.max()) if arr.size else 1.0
        scale = peak if peak > 1.0 else 1.0
    out = arr.astype(np.float32, copy=True)
    out *= np.float32(1.0 / scale)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def overlay_mask(channels: F32) -> NDArray[np.bool_]:
    """Mask device overlays: status bars and flat, uniform-colour boxes at the top or bottom.

    Real skin under a microscope is never flat to within JPEG noise over a 7x7 window, an
    on-screen label box is. Only boxes touching the top or bottom band of the image are
    taken, so a smooth synthetic background is not masked.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].

    Returns
    -------
    (M, N) ndarray of bool
        True on overlay boxes (their bounding rectangles, slightly dilated).
    """
    m, n = channels.shape[:2]
    grey = (
        np.asarray(cv2.cvtColor(channels, cv2.COLOR_RGB2GRAY), np.float32)
        if channels.shape[2] == 3
        else channels[:, :, 0]
    )
    mean = cv2.blur(grey, (7, 7))
    var = cv2.blur(grey * grey, (7, 7)) - mean * mean
    flat = (var < (0.6 / 255.0) ** 2).astype(np.uint8)
    mask = np.zeros((m, n), dtype=bool)
    # a status bar ends in a straight horizontal edge across a third or more of the width
    # (its label boxes); no hair or scale-bar line runs that far along one pixel row
    band = max(4, round(0.08 * m))
    edge_rows = (np.abs(np.diff(grey, axis=0)) > 20.0 / 255.0).mean(axis=1) >= 0.33
    top = np.nonzero(edge_rows[:band])[0]
    if top.size:
        mask[: int(top.max()) + 3] = True
    bottom = np.nonzero(edge_rows[m - 1 - band :])[0]
    if bottom.size:
        mask[max(0, m - 1 - band + int(bottom.min()) - 2) :] = True
    if not flat.any():
        return mask
    count, _, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        touches_band = y <= band or y + h >= m - band
        if area >= 150 and touches_band and h <= 0.2 * m and w >= 12:
            mask[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] = True
    return mask


def skin_background(channels: F32, *, size_px: float, hair_px: float, dark: bool = True) -> F32:
    """Estimate the bare-skin intensity per channel with a large robust filter.

    The image is reduced so that the widest shaft is ~3 px, a small grey closing removes
    dark shafts (opening for bright ones), a median of `size_px` removes the rest, and the
    result is smoothed and brought back to full size.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    size_px : float, px
        Size of the median filter at full resolution.
    hair_px : float, px
        Widest shaft diameter at full resolution.
    dark : bool
        True to remove dark shafts before the median, False for bright ones.

    Returns
    -------
    (M, N, C) ndarray of float32
        Background intensity, at least the sensor floor.
    """
    m, n, c = channels.shape
    factor = max(1.0, hair_px / 3.0)
    sm = max(2, round(m / factor))
    sn = max(2, round(n / factor))
    small = cv2.resize(channels, (sn, sm), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = small[:, :, None]
    ksize = int(size_px / factor) | 1
    ksize = max(3, min(ksize, (min(sm, sn) - 1) | 1 if min(sm, sn) > 3 else 3))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    meds = []
    for ch in range(c):
        plane = np.ascontiguousarray(small[:, :, ch])
        op = cv2.MORPH_CLOSE if dark else cv2.MORPH_OPEN
        plane = cv2.morphologyEx(plane, op, kernel)
        as8 = np.clip(plane * 255.0 + 0.5, 0, 255).astype(np.uint8)
        med = cv2.medianBlur(as8, ksize).astype(np.float32) / 255.0
        meds.append(cv2.GaussianBlur(med, (0, 0), ksize / 4.0))
    # all channels brought back to full size in one pass (channels interpolate apart)
    out = np.asarray(
        cv2.resize(cv2.merge(meds), (n, m), interpolation=cv2.INTER_LINEAR), np.float32
    ).reshape(m, n, c)
    np.maximum(out, _MIN_LEVEL * 4, out=out)
    return out


def absorptance(channels: F32, background: F32, *, dark: bool = True) -> F32:
    """Return the combined absorptance of hair over skin, ``1 - I / I_skin``, one channel.

    Absorptance is bounded in [0, 1] and, for a faint shaft, equals its optical density;
    unlike the density it does not amplify sensor noise inside an opaque shaft, so crests
    stay single.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    background : (M, N, C) ndarray of float32
        Bare-skin estimate from :func:`skin_background`.
    dark : bool
        True for shafts darker than skin, False for brighter shafts (``I / I_skin - 1``,
        clipped to [0, 1], averaged over the channels).

    Returns
    -------
    (M, N) ndarray of float32, in [0, 1]
        Smallest per-channel absorptance, the part common to all channels: broadband
        absorbers (melanin) keep most of theirs, narrow-band ink (red circles, blue text)
        and the blue Tyndall shadow of the shaft under the skin drop out. For bright
        shafts (`dark` False), the mean per-channel brightening.
    """
    # per channel, in place on one plane at a time: a 12-Mpx RGB image stays within budget
    out: F32 | None = None
    for ch in range(channels.shape[2]):
        a = channels[:, :, ch] / background[:, :, ch]
        if dark:
            np.subtract(1.0, a, out=a)
        else:
            a -= 1.0
        np.clip(a, 0.0, 1.0, out=a)
        if dark:
            out = a if out is None else np.minimum(out, a, out=out)
        else:
            out = a if out is None else np.add(out, a, out=out)
    assert out is not None
    if not dark:
        # a white shaft brightens most the channels the skin absorbs most (blue on
        # fair skin), so the smallest-channel rule would lose it: average instead, and
        # let the caller reject coloured (ink) traces by their own colour
        out *= np.float32(1.0 / channels.shape[2])
    return out.astype(np.float32, copy=False)


def blue_shift(channels: F32, background: F32) -> F32:
    """Red-minus-blue absorptance: positive where something dark lies under the skin.

    Pigment seen through the epidermis and dermis looks blue-grey (Tyndall scattering
    returns blue light before the pigment can absorb it), so the shaft's path inside the
    skin, beyond its exit, absorbs more red than blue; a shadow cast on the surface absorbs
    all channels alike.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    background : (M, N, C) ndarray of float32
        Bare-skin estimate.

    Returns
    -------
    (M, N) ndarray of float32
        ``a_red - a_blue`` (zeros for greyscale images).
    """
    if channels.shape[2] < 3:
        return np.zeros(channels.shape[:2], dtype=np.float32)
    red = 1.0 - channels[:, :, 0] / background[:, :, 0]
    blue = 1.0 - channels[:, :, 2] / background[:, :, 2]
    return (red - blue).astype(np.float32)
