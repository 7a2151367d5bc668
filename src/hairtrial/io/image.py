"""Image files: one reader that dispatches on the suffix, one deterministic writer.

Calibration travels with an image in one of two ways: a sidecar file
``<image name>.calibration.json`` holding ``{"um_per_px": F}``, or TIFF resolution tags in
centimetres (``ResolutionUnit`` = 3). Dots-per-inch values in JPEG and PNG headers are
ignored on purpose: cameras write 72 or 96 dpi whatever the optics, and a wrong
calibration is worse than none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError, check_image, check_um_per_px

_PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
SUPPORTED_SUFFIXES = tuple(sorted(_PIL_SUFFIXES | _TIFF_SUFFIXES))
CALIBRATION_SUFFIX = ".calibration.json"


@dataclass(frozen=True)
class ImageData:
    """Pixels read from a file, with the calibration the file carried.

    Parameters
    ----------
    pixels : (M, N) or (M, N, 3) ndarray
        Greyscale or RGB pixels, dtype as stored (uint8 or uint16 usually).
    path : Path
        The file read.
    um_per_px : float or None, µm/px
        Calibration from a sidecar or TIFF tags; ``None`` when the file carries none.
    n_pages : int
        Number of pages in the file (TIFF stacks); `pixels` holds the page asked for.
    """

    pixels: NDArray[Any]
    path: Path
    um_per_px: float | None
    n_pages: int = 1


def calibration_sidecar(path: str | Path) -> Path:
    """Return the path of the calibration sidecar of image `path`."""
    path = Path(path)
    return path.with_name(path.name + CALIBRATION_SUFFIX)


def _read_sidecar(path: Path) -> float | None:
    sidecar = calibration_sidecar(path)
    if not sidecar.exists():
        return None
    try:
        content = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{sidecar}: calibration sidecar is not valid JSON ({exc})") from None
    if not isinstance(content, dict) or "um_per_px" not in content:
        raise InputError(f'{sidecar}: expected a JSON object with "um_per_px"')
    return check_um_per_px(content["um_per_px"], path=sidecar)


def _to_rgb_or_grey(pixels: NDArray[Any], path: Path) -> NDArray[Any]:
    if pixels.ndim == 3 and pixels.shape[2] == 4:  # RGBA: composite on white, as viewers do
        rgb = pixels[..., :3].astype(np.float64)
        alpha = pixels[..., 3:4].astype(np.float64) / np.iinfo(pixels.dtype).max
        white = float(np.iinfo(pixels.dtype).max)
        pixels = np.round(rgb * alpha + white * (1 - alpha)).astype(pixels.dtype)
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] == 2:  # grey + alpha
        pixels = pixels[..., 0]
    check_image(pixels, path=path)
    return pixels


def _read_pil(path: Path) -> NDArray[Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            img: Image.Image = opened
            if img.mode in ("CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
                img = img.convert("RGBA" if "A" in img.mode else "RGB")
            elif img.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(img, dtype=np.uint16)
            elif img.mode == "I":
                return np.asarray(img).astype(np.int64).clip(0, 65535).astype(np.uint16)
            elif img.mode == "1":
                img = img.convert("L")
            elif img.mode == "F":
                return np.asarray(img, dtype=np.float32)
            return np.asarray(img)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image (unrecognised or corrupt data)") from None
    except OSError as exc:  # truncated files and decoder errors
        raise InputError(f"{path}: could not decode image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image is too large to read safely ({exc})") from None


def _read_tiff(path: Path, page: int) -> tuple[NDArray[Any], float | None, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            if n_pages == 0:
                raise InputError(f"{path}: TIFF file holds no image")
            if not 0 <= page < n_pages:
                raise InputError(f"{path}: page {page} requested, file has {n_pages}")
            tiff_page = tif.pages[page]
            pixels = tiff_page.asarray()
            um_per_px = None
            tags = tiff_page.tags  # type: ignore[union-attr]
            if "XResolution" in tags and "ResolutionUnit" in tags:
                unit = int(tags["ResolutionUnit"].value)
                num, den = tags["XResolution"].value
                if unit == 3 and num > 0 and den > 0:  # pixels per centimetre
                    um_per_px = 1e4 * den / num
    except InputError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError) as exc:
        raise InputError(f"{path}: could not decode TIFF ({exc})") from None
    if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
        pixels = np.moveaxis(pixels, 0, -1)  # planar configuration
    return pixels, um_per_px, n_pages


def read_image(path: str | Path, *, page: int = 0) -> ImageData:
    """Read an image file and the calibration it carries.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, BMP or TIFF file (TIFF may hold several pages).
    page : int
        Page of a multi-page TIFF to return.

    Returns
    -------
    ImageData
        Pixels as greyscale ``(M, N)`` or RGB ``(M, N, 3)`` (alpha composited on white,
        CMYK and palette converted to RGB), calibration from a sidecar or TIFF tags.

    Raises
    ------
    InputError
        If the file is missing, empty, of an unsupported format, truncated or corrupt;
        the message names the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if suffix not in _PIL_SUFFIXES | _TIFF_SUFFIXES:
        raise InputError(
            f"{path}: unsupported image format {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    n_pages = 1
    tag_um_per_px: float | None = None
    if suffix in _TIFF_SUFFIXES:
        pixels, tag_um_per_px, n_pages = _read_tiff(path, page)
    else:
        if page != 0:
            raise InputError(f"{path}: page {page} requested, {suffix} files hold one image")
        pixels = _read_pil(path)
    pixels = _to_rgb_or_grey(pixels, path)
    sidecar = _read_sidecar(path)
    return ImageData(
        pixels=pixels,
        path=path,
        um_per_px=sidecar if sidecar is not None else tag_um_per_px,
        n_pages=n_pages,
    )


def write_image(
    path: str | Path,
    image: NDArray[Any],
    *,
    jpeg_quality: int = 92,
    um_per_px: float | None = None,
) -> Path:
    """Write an image deterministically (same array, same bytes).

    Parameters
    ----------
    path : str or Path
        Destination; the suffix chooses PNG, JPEG or TIFF.
    image : (M, N) or (M, N, 3) ndarray of uint8 (uint16 allowed for PNG and TIFF)
        Pixels.
    jpeg_quality : int
        JPEG quality in [1, 100] (ignored for other formats).
    um_per_px : float, optional, µm/px
        When given, written into TIFF resolution tags or a calibration sidecar.

    Returns
    -------
    Path
        The path written.
    """
    from PIL import Image

    path = Path(path)
    arr = check_image(image, path=path)
    suffix = path.suffix.lower()
    if suffix in _TIFF_SUFFIXES:
        import tifffile

        resolution = None
        if um_per_px is not None:
            px_per_cm = 1e4 / check_um_per_px(um_per_px, path=path)
            resolution = (px_per_cm, px_per_cm)
        tifffile.imwrite(
            path,
            arr,
            photometric="rgb" if arr.ndim == 3 else "minisblack",
            resolution=resolution,
            resolutionunit="CENTIMETER" if resolution else None,
            datetime=False,
            software=False,
        )
        return path
    if suffix not in _PIL_SUFFIXES:
        raise InputError(f"{path}: unsupported image format {suffix!r}")
    if arr.dtype != np.uint8 and not (suffix == ".png" and arr.dtype == np.uint16):
        raise InputError(f"{path}: expected uint8 pixels for {suffix}, got {arr.dtype}")
    img = Image.fromarray(arr)
    if suffix in (".jpg", ".jpeg"):
        if not 1 <= int(jpeg_quality) <= 100:
            raise InputError(f"{path}: jpeg_quality must be in [1, 100], got {jpeg_quality}")
        img.save(path, format="JPEG", quality=int(jpeg_quality), optimize=False)
    else:
        img.save(path, format="PNG" if suffix == ".png" else "BMP")
    if um_per_px is not None:
        sidecar = calibration_sidecar(path)
        payload = {"um_per_px": check_um_per_px(um_per_px, path=path)}
        sidecar.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    return path
