"""Multi-task training and fine-tuning of SevenNet models.

:func:`train` runs a config (:class:`TrainConfig`, usually a YAML file read
by :func:`load_train_config`); :func:`append_tasks` and
:func:`selective_l2` are the two pieces of the SevenNet-Omni recipe that
are useful on their own.
"""

from .config import TrainConfig, TrainConfigError, load_train_config
from .dataset import DatasetError
from .loop import TrainResult, train
from .regularization import selective_l2
from .tasks import append_tasks, interaction_task_weights, task_masks

__all__ = [
    "DatasetError",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "append_tasks",
    "interaction_task_weights",
    "load_train_config",
    "selective_l2",
    "task_masks",
    "train",
]
