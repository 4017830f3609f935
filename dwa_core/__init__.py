"""dwa_core: continual learning with dynamic weight allocation (DWA), HAT, EWC and friends."""

__version__ = "0.1.0"

from dwa_core.config import ConfigError, ExperimentConfig, TrainConfig  # noqa: E402
from dwa_core.experiment import run_experiment  # noqa: E402
from dwa_core.results import Results  # noqa: E402

__all__ = ["ConfigError", "ExperimentConfig", "TrainConfig", "Results", "run_experiment", "__version__"]
