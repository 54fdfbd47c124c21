"""ssassoc.core: the pure science of single-frame Solar System association.

No Kafka, files or logging set-up here: functions of tables and configs.
"""

from .association_task import (
    SsSingleFrameAssociationConfig,
    SsSingleFrameAssociationResult,
    SsSingleFrameAssociationTask,
)
from .exposure import Exposure, ExposureError
from .version import __version__

__all__ = [
    "Exposure",
    "ExposureError",
    "SsSingleFrameAssociationConfig",
    "SsSingleFrameAssociationResult",
    "SsSingleFrameAssociationTask",
    "__version__",
]
