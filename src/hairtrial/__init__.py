"""hairtrial: hair-growth clinical trials from trichoscopy images to the trial's answer.

Subpackages (one per box of the architecture in DESIGN.md): ``io``, ``simulate``,
``measure``, ``track``, ``analyze``, ``store``, ``batch``, ``web`` and ``cli``.
Importing the top-level package stays light: heavy dependencies load only where used.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hairtrial")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
