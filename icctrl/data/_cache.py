"""On-disk dataset cache keyed by a hash of the generation spec (plant, arguments, package version)."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from icctrl._io import json_default
from icctrl.data._dataset import SequenceDataset
from icctrl.errors import DataError

ENV_VAR = "ICCTRL_CACHE_DIR"


def cache_dir() -> Path:
    """`$ICCTRL_CACHE_DIR`, else ~/.cache/icctrl/datasets."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "icctrl" / "datasets"


def spec_key(spec: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a generation spec."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def plant_fingerprint(plant: Any) -> dict[str, Any]:
    """Class and every plain parameter (numbers, strings, numeric arrays) of a plant, class and instance."""
    cls = type(plant)
    params: dict[str, Any] = {}
    scopes = [vars(c) for c in reversed(cls.__mro__) if c is not object] + [getattr(plant, "__dict__", {})]
    for scope in scopes:
        for k, v in scope.items():
            if k.startswith("_") or isinstance(getattr(cls, k, None), (property, cached_property)):
                continue
            plain = _plain_param(v)
            if plain is not None:
                params[k] = plain
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}


def function_fingerprint(fn: Callable | None) -> dict[str, Any] | None:
    """Name and source hash of a target function (closures over different values need cache=False)."""
    if fn is None:
        return None
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = None
    digest = hashlib.sha256(source.encode()).hexdigest() if source is not None else None
    return {"name": name, "source_sha256": digest}


def cache_path(plant_name: str, key: str) -> Path:
    """File of a cached dataset."""
    return cache_dir() / f"{plant_name}-{key[:24]}.npz"


def load_cached(path: Path, key: str) -> SequenceDataset | None:
    """The cached dataset at `path` if present, intact and of this spec; a bad file is warned about."""
    if not path.exists():
        return None
    try:
        ds = SequenceDataset.load(path)
    except DataError as exc:
        warnings.warn(f"ignoring and regenerating a bad cached dataset: {exc}", stacklevel=3)
        return None
    if ds.meta.get("spec_key") != key:
        warnings.warn(f"cached dataset {str(path)!r} belongs to another spec; regenerating", stacklevel=3)
        return None
    return ds


def _plain_param(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str, np.integer, np.floating)):
        return json_default(v) if isinstance(v, np.generic) else v
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return v.tolist()
    if isinstance(v, (tuple, list)) and all(isinstance(e, (bool, int, float, str)) for e in v):
        return list(v)
    return None
