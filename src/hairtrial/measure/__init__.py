"""Measurement: find, trace and measure every hair in a trichoscopy image.

The functional core is :func:`measure_image`; its parameters live in one validated,
frozen :class:`MeasureConfig`; scoring against annotations lives apart in
:mod:`hairtrial.measure.metrics`; :func:`calibrate_from_grid` measures µm per pixel from
a stage-micrometer image.
"""

from hairtrial.measure.calibrate import Calibration, calibrate_from_grid
from hairtrial.measure.config import MeasureConfig
from hairtrial.measure.core import ImageMeasurement, absorptance_image, measure_image

__all__ = [
    "Calibration",
    "ImageMeasurement",
    "MeasureConfig",
    "absorptance_image",
    "calibrate_from_grid",
    "measure_image",
]
