"""Image files, served by id from the store: a client never names a path."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse, Response

from hairtrial._validate import InputError
from hairtrial.store.images import verify_image_file
from hairtrial.store.models import Image
from hairtrial.web.deps import Reader, SessionDep, StoreDep

router = APIRouter(tags=["images"])


@router.get("/images/{image_id}/file")
def image_file(
    principal: Reader, db: SessionDep, store: StoreDep, image_id: int = Path(ge=1, le=2**62)
) -> Response:
    """Send the file of image `image_id` (checksum verified); 404 if unknown or missing."""
    image = db.get(Image, image_id)
    if image is None:
        raise HTTPException(status_code=404, detail="no such image")
    try:
        path = verify_image_file(image, image_root=store.image_root)
    except (InputError, OSError):
        raise HTTPException(status_code=404, detail="image file missing or changed") from None
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not media.startswith("image/"):
        raise HTTPException(status_code=404, detail="not an image")
    # No file name in the response: it could reveal the visit.
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=600"})
