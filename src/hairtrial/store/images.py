"""The content-addressed image store and checksummed reads.

A copied image lives at ``<image_root>/ab/cdef….jpg``, named by the SHA-256 of its bytes
(first two hex digits as a folder), so the same content is stored once and a file can
never be silently replaced by other content. Every read verifies the checksum.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.io.image import ImageData, read_image
from hairtrial.store.engine import Store
from hairtrial.store.models import Image

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or Path
        File to hash (read in 1 MiB chunks).

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_path(image_root: Path, sha256: str, suffix: str) -> Path:
    """Return where content `sha256` with file suffix `suffix` lives under `image_root`."""
    return image_root / sha256[:2] / (sha256[2:] + suffix.lower())


def copy_into_store(source: Path, *, image_root: Path, sha256: str) -> str:
    """Copy `source` into the content-addressed store, verifying the copy.

    The copy is written to a temporary file in the target folder, checked against
    `sha256` and then renamed into place, so a crash never leaves a partial file under a
    content name. Content already present (and intact) is not copied again.

    Parameters
    ----------
    source : Path
        Image file to copy.
    image_root : Path
        Root folder of the image store (created if missing).
    sha256 : str
        Expected digest of `source`.

    Returns
    -------
    str
        The stored path relative to `image_root` (POSIX separators).

    Raises
    ------
    InputError
        If `source` changed since it was hashed, or a stored file with this name holds
        other content (it is never overwritten).
    """
    target = content_path(image_root, sha256, source.suffix)
    relative = target.relative_to(image_root).as_posix()
    if target.exists():
        if sha256_file(target) != sha256:
            raise InputError(
                f"{target}: stored image does not match its checksum {sha256}; "
                "the image store is corrupt (file left untouched)"
            )
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        if sha256_file(tmp) != sha256:
            raise InputError(f"{source}: file changed while being ingested; ingest it again")
        tmp.chmod(0o444)  # stored content is never edited in place
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return relative


def stored_file(image: Image, *, image_root: Path | None) -> Path:
    """Return the file of an image row (store copy under `image_root`, or in place)."""
    if image.storage == "in_place":
        return Path(image.stored_path)
    if image_root is None:
        raise InputError(
            f"image {image.id}: stored in the image store but no image_root is configured; "
            "pass image_root to open_store"
        )
    return image_root / image.stored_path


def verify_image_file(image: Image, *, image_root: Path | None) -> Path:
    """Check that an image's file exists and matches its stored SHA-256.

    Parameters
    ----------
    image : Image
        Image row.
    image_root : Path or None
        Root of the image store.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    InputError
        Naming the file when it is missing or its content does not match.
    """
    path = stored_file(image, image_root=image_root)
    if not path.is_file():
        raise InputError(f"{path}: stored image {image.id} is missing")
    found = sha256_file(path)
    if found != image.sha256:
        raise InputError(
            f"{path}: checksum mismatch for image {image.id} (expected sha256 "
            f"{image.sha256}, found {found}); the file was modified or corrupted"
        )
    return path


def read_stored_image(*, store: Store, image_id: int, session: Session | None = None) -> ImageData:
    """Read a stored image after verifying its checksum.

    Parameters
    ----------
    store : Store
        Open trial database.
    image_id : int
        Image row id.
    session : Session, optional
        Session to look the row up in (a new one otherwise).

    Returns
    -------
    ImageData
        Pixels and file calibration as :func:`hairtrial.io.read_image` returns them; the
        calibration to use for measurement is the row's ``um_per_px``.

    Raises
    ------
    InputError
        If the image is unknown, its file is missing, or the file's SHA-256 differs from
        the one recorded at ingest (the message names the file).
    """
    if session is None:
        with store.session() as own:
            return read_stored_image(store=store, image_id=image_id, session=own)
    image = session.get(Image, image_id)
    if image is None:
        raise InputError(f"image_id {image_id}: no such image in {store.describe()}")
    return read_image(verify_image_file(image, image_root=store.image_root))


def verify_images(*, store: Store) -> list[str]:
    """Check every stored image file against its SHA-256 (for ``hairtrial status``).

    Parameters
    ----------
    store : Store
        Open trial database.

    Returns
    -------
    list of str
        One message per missing or altered file (naming it); empty when all are intact.
    """
    from sqlalchemy import select

    problems = []
    with store.session() as session:
        for image in session.scalars(select(Image).order_by(Image.id)):
            try:
                verify_image_file(image, image_root=store.image_root)
            except InputError as exc:
                problems.append(str(exc))
    return problems
