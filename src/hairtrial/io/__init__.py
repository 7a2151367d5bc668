"""Reading and writing images, calibration and manifests.

``read_image`` dispatches on the file suffix (PNG, JPEG, TIFF including multi-page) and
returns the pixels with whatever calibration the file carries.
"""

from hairtrial.io.image import ImageData, read_image, write_image
from hairtrial.io.manifest import MANIFEST_COLUMNS, read_manifest, write_manifest

__all__ = [
    "MANIFEST_COLUMNS",
    "ImageData",
    "read_image",
    "read_manifest",
    "write_image",
    "write_manifest",
]
