"""In-silico hair-growth trials: follicle populations, treatment, rendering, exact truth.

- :mod:`~hairtrial.simulate.population` — follicles cycling and miniaturising day by day.
- :mod:`~hairtrial.simulate.treatment` — injection schedules and the stimulus they cause.
- :mod:`~hairtrial.simulate.render` — physically motivated trichoscopy images with truth.
- :mod:`~hairtrial.simulate.trial` — a whole trial: subjects, sites, visits, files.
- :mod:`~hairtrial.simulate.config` — presets (TOML files a user can copy and edit).
"""

from hairtrial.simulate.config import Preset, list_presets, load_preset
from hairtrial.simulate.trial import SimulatedTrial, simulate_trial, write_trial

__all__ = [
    "Preset",
    "SimulatedTrial",
    "list_presets",
    "load_preset",
    "simulate_trial",
    "write_trial",
]
