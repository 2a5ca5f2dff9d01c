"""Locate the declarative files (schemas/, connectors/, catalog.yaml): shipped with matreg, or a project's own."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped declarative file: inside the wheel (`matreg/_data`) or the source tree."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent / name


def project_path(name: str) -> Path:
    """Path of a declarative file as a project gives it in the working directory (`connectors/oqmd.yaml`), else the
    one shipped with matreg."""
    local = Path.cwd() / name
    return local if local.is_file() else resource_path(name)


def project_files(names: list[str]) -> list[str]:
    """Those of the declarative files `names` a project gives in the working directory (read instead of matreg's)."""
    local = {name: Path.cwd() / name for name in names}
    return [name for name, path in local.items() if path.is_file() and path.resolve() != resource_path(name).resolve()]
