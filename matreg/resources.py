"""Locate the declarative files (schemas/, connectors/, catalog.yaml): shipped with matreg, or a project's own."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped declarative file: inside the wheel (`matreg/_data`) or the source tree."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent / name


def working_directory() -> str | None:
    """The working directory, a project's folder; None where it no longer exists (deleted while a shell was in it):
    then there is no project folder, and matreg's own declarative files are read."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return None


def project_path(name: str) -> Path:
    """Path of a declarative file as a project gives it in the working directory (`connectors/oqmd.yaml`), else the
    one shipped with matreg."""
    folder = working_directory()
    local = None if folder is None else Path(folder) / name
    return local if local is not None and local.is_file() else resource_path(name)


def project_files(names: list[str]) -> list[str]:
    """Those of the declarative files `names` a project gives in the working directory (read instead of matreg's)."""
    folder = working_directory()
    if folder is None:
        return []
    local = {name: Path(folder) / name for name in names}
    return [name for name, path in local.items() if path.is_file() and path.resolve() != resource_path(name).resolve()]
