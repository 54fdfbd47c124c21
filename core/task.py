"""Task machinery in the style of the LSST Science Pipelines (``lsst.pipe.base.Task``).

A :class:`Task` owns a validated :class:`TaskConfig`, a hierarchical name
(``top.sub``), a metadata store and its subtasks. Subtasks are declared in a
config with :meth:`Task.makeField` (a :class:`ConfigurableField`, retargetable
to another task class) and built with :meth:`Task.makeSubtask`.

Metadata of a whole task tree is gathered by :meth:`Task.getFullMetadata`; its
keys are ``"<top>:<sub>.<item>"``, the task's full name with ``.`` replaced by
``:``, then ``.``, then the item (``ssSingleFrameAssociation:ephemerisQuery.nObjects``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ConfigurableField",
    "Task",
    "TaskConfig",
    "TaskError",
    "TaskMetadata",
]


class TaskError(RuntimeError):
    """A task was used in a way its contract does not allow."""


class TaskConfig(BaseModel):
    """Base class of task configs: typed, documented, validated on assignment too."""

    model_config = ConfigDict(
        validate_assignment=True,
        extra="forbid",
        arbitrary_types_allowed=True,
        use_attribute_docstrings=True,
    )


ConfigT = TypeVar("ConfigT", bound=TaskConfig)


class ConfigurableField(Generic[ConfigT]):
    """A config entry that names the task class of a subtask and holds its config.

    Attribute reads and writes that are not ``target``/``ConfigClass``/``value``
    go through to the subtask's config, as in LSST
    (``config.ephemerisQuery.storePath = "..."``).
    """

    __slots__ = ("ConfigClass", "doc", "target", "value")

    def __init__(self, target: type[Task], doc: str, ConfigClass: type[ConfigT] | None = None):
        self.target = target
        self.doc = doc
        self.ConfigClass: type[TaskConfig] = ConfigClass or target.ConfigClass
        self.value: TaskConfig = self.ConfigClass()

    def retarget(self, target: type[Task], ConfigClass: type[TaskConfig] | None = None) -> None:
        """Use another task class (and its config class) for this subtask."""
        self.target = target
        self.ConfigClass = ConfigClass or target.ConfigClass
        self.value = self.ConfigClass()

    def apply(self, **kwargs: Any) -> Task:
        """Build the subtask with this field's config."""
        return self.target(config=self.value, **kwargs)

    def copy(self) -> ConfigurableField[Any]:
        new: ConfigurableField[Any] = ConfigurableField(self.target, self.doc, self.ConfigClass)
        new.value = self.value.model_copy(deep=True)
        return new

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails (i.e. for config fields).
        if name in ConfigurableField.__slots__:
            raise AttributeError(name)
        return getattr(self.value, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ConfigurableField.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.value, name, value)

    def __repr__(self) -> str:
        return f"ConfigurableField(target={self.target.__name__}, value={self.value!r})"


class TaskMetadata:
    """Flat, ordered metadata of one task; values are scalars or lists of scalars."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self._items[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def add(self, key: str, value: Any) -> None:
        """Append ``value`` to the list stored at ``key`` (created if missing)."""
        current = self._items.get(key)
        if current is None:
            self._items[key] = [value]
        elif isinstance(current, list):
            current.append(value)
        else:
            self._items[key] = [current, value]

    def names(self) -> list[str]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    def to_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __repr__(self) -> str:
        return f"TaskMetadata({self._items!r})"


class FullMetadata(Mapping[str, Any]):
    """Metadata of a task tree; ``md["top:sub.item"]`` or ``md["top:sub"]`` (a TaskMetadata)."""

    def __init__(self, per_task: dict[str, TaskMetadata]):
        self._per_task = per_task

    def __getitem__(self, key: str) -> Any:
        if key in self._per_task:
            return self._per_task[key]
        task_key, sep, item = key.partition(".")
        if sep and task_key in self._per_task:
            return self._per_task[task_key][item]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        for task_key, md in self._per_task.items():
            for item in md:
                yield f"{task_key}.{item}"

    def __len__(self) -> int:
        return sum(len(md) for md in self._per_task.values())

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{"top:sub.item": value}`` dict, ready for a structured log line."""
        return {key: self[key] for key in self}


class Task:
    """Base class of tasks: config, name hierarchy, metadata, subtasks and timers."""

    ConfigClass: ClassVar[type[TaskConfig]] = TaskConfig
    _DefaultName: ClassVar[str] = ""
    canMultiprocess: ClassVar[bool] = True

    def __init__(
        self,
        config: TaskConfig | None = None,
        *,
        name: str | None = None,
        parentTask: Task | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if config is None:
            config = self.ConfigClass()
        elif not isinstance(config, self.ConfigClass):
            raise TypeError(f"{type(self).__name__} needs a {self.ConfigClass.__name__}, got {type(config).__name__}")
        self.config = config
        if parentTask is None:
            self._name = name or self._DefaultName
            if not self._name:
                raise TaskError(f"{type(self).__name__} has no _DefaultName; pass name=")
            self._fullName = self._name
            self._taskDict: dict[str, Task] = {}
        else:
            if not name:
                raise TaskError("a subtask needs a name")
            self._name = name
            self._fullName = f"{parentTask._fullName}.{name}"
            self._taskDict = parentTask._taskDict
        self._taskDict[self._fullName] = self
        self.metadata = TaskMetadata()
        self.log = log or logging.getLogger(f"ssassoc.{self._fullName}")

    # -- names -------------------------------------------------------------
    def getName(self) -> str:
        """The task's own name (last part of the full name)."""
        return self._name

    def getFullName(self) -> str:
        """Dotted name from the top task, e.g. ``ssSingleFrameAssociation.ephemerisQuery``."""
        return self._fullName

    def getTaskDict(self) -> dict[str, Task]:
        """All tasks of the tree this task belongs to, by full name."""
        return dict(self._taskDict)

    # -- subtasks ------------------------------------------------------------
    @classmethod
    def makeField(cls, doc: str) -> ConfigurableField[Any]:
        """A config field whose default target is this task class."""
        return ConfigurableField(target=cls, doc=doc)

    def makeSubtask(self, name: str, **kwargs: Any) -> Task:
        """Build the subtask configured by ``self.config.<name>`` and set ``self.<name>``."""
        field = getattr(self.config, name, None)
        if not isinstance(field, ConfigurableField):
            raise TaskError(f"config of {self._fullName} has no ConfigurableField {name!r}")
        subtask = field.apply(name=name, parentTask=self, **kwargs)
        setattr(self, name, subtask)
        return subtask

    # -- metadata ------------------------------------------------------------
    def emptyMetadata(self) -> None:
        """Clear the metadata of every task in the tree."""
        for task in self._taskDict.values():
            task.metadata.clear()

    def getFullMetadata(self) -> FullMetadata:
        """Metadata of this task and all tasks below it, keys ``top:sub.item``."""
        prefix = self._fullName
        per_task = {
            full_name.replace(".", ":"): task.metadata
            for full_name, task in self._taskDict.items()
            if full_name == prefix or full_name.startswith(prefix + ".")
        }
        return FullMetadata(per_task)

    def timer(self, name: str, logLevel: int = logging.DEBUG) -> _Timer:
        """Context manager recording ``<name>StartUtc/EndUtc`` (ISO),
        ``<name>Start/EndCpuTime`` (s), ``<name>Start/EndWallTime`` (monotonic s) and
        ``<name>DurationSeconds``."""
        return _Timer(self, name, logLevel)


class _Timer:
    """A class, not a generator context manager: a streaming event runs five timers, and
    this is a few microseconds cheaper each."""

    __slots__ = ("_keys", "_level", "_name", "_start", "_task")

    def __init__(self, task: Task, name: str, level: int) -> None:
        self._task, self._name, self._level = task, name, level
        self._keys = _timer_keys(name)

    def __enter__(self) -> None:
        md, keys = self._task.metadata._items, self._keys  # the dict itself: no __setitem__ call
        md[keys[0]] = datetime.now(UTC).isoformat()
        md[keys[1]] = time.process_time()
        self._start = md[keys[2]] = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        end = time.perf_counter()
        md, keys = self._task.metadata._items, self._keys  # the dict itself: no __setitem__ call
        md[keys[3]] = end
        md[keys[4]] = time.process_time()
        md[keys[5]] = datetime.now(UTC).isoformat()
        md[keys[6]] = end - self._start
        log = self._task.log
        if log.isEnabledFor(self._level):
            log.log(self._level, "%s.%s took %.6f s", self._task._fullName, self._name, end - self._start)


@cache
def _timer_keys(name: str) -> tuple[str, ...]:
    suffixes = ("StartUtc", "StartCpuTime", "StartWallTime", "EndWallTime", "EndCpuTime", "EndUtc", "DurationSeconds")
    return tuple(name + suffix for suffix in suffixes)
