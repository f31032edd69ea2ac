"""Datasets as class-indexed image tensors, class splits, the few-shot target and task sampler."""

from __future__ import annotations

from metaaug.data.sources import (
    digits,
    fashion_mnist,
    image_folder_flat,
    imagefolder,
    mnist,
    omniglot,
)
from metaaug.data.split import ClassSplit, split_classes
from metaaug.data.target import Target, select_targets
from metaaug.data.tasks import Task, TaskSampler

__all__ = [
    "ClassSplit",
    "Target",
    "Task",
    "TaskSampler",
    "digits",
    "fashion_mnist",
    "image_folder_flat",
    "imagefolder",
    "mnist",
    "omniglot",
    "select_targets",
    "split_classes",
]
