"""Space group numbers derived from stored structures (linking's rule 1, for a record that states none): spglib
through pymatgen's SpacegroupAnalyzer at emmet's tolerance, each structure document analysed once and remembered in
the user's cache folder, so that the exports, releases and `matreg conflicts` of a store of many lab structures
analyse them at their first call only.

The cache is `spacegroups.parquet` in `$MATREG_CACHE_DIR`, else the platform's cache folder of matreg
(`~/.cache/matreg` on Linux; pint keeps its parsed units beside it, in `~/.cache/pint`): a row per structure document
(the SHA-256 of its text with the tolerance and pymatgen's and spglib's versions) and its space group number, null
where spglib finds no symmetry. It holds nothing else of a store and may be deleted at any time; where the folder
cannot be written, nothing is remembered. The store's own files are never written by a read (an export's included).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

import platformdirs
import pyarrow
import pyarrow.compute
import pyarrow.parquet as pq
import spglib
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError

from matreg.errors import StoreError
from matreg.store import atomic_write
from matreg.structure import read_structure

logger = logging.getLogger(__name__)
SYMPREC = 0.1  # emmet's symmetry tolerance (the Materials Project's space groups)
CACHE_DIR_ENV = "MATREG_CACHE_DIR"
CACHE_FILE = "spacegroups.parquet"
ANALYSED_BY = f"pymatgen {version('pymatgen')}, spglib {spglib.__version__}"  # a cached number is theirs: in its key
_CACHE_SCHEMA = pyarrow.schema([("key", pyarrow.binary(32)), ("spacegroup_number", pyarrow.int16())])


class StructureDocument:
    """One stored structure document (pymatgen Structure JSON), parsed when first needed: the records of one
    document (a material each file of a dataset gives) share it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.key = hashlib.sha256(f"{SYMPREC} {ANALYSED_BY}\n{text}".encode()).digest()

    @functools.cached_property
    def structure(self) -> Structure:
        return read_structure(self.text)


def spacegroup_numbers(documents: Iterable[StructureDocument]) -> dict[bytes, int | None]:
    """Each document's space group number (None where spglib finds no symmetry: atoms too close, a broken cell) by
    its key: those the cache remembers read from it, the others analysed and added to it."""
    distinct = {document.key: document for document in documents}
    path = cache_dir() / CACHE_FILE
    cached = _cached(path)
    numbers = _numbers_of(cached, list(distinct))
    analysed = {key: _spacegroup_number(document.structure) for key, document in distinct.items() if key not in numbers}
    if analysed:
        _remember(path, cached, analysed)
    return numbers | analysed


def cache_dir() -> Path:
    """The folder of matreg's cache: `$MATREG_CACHE_DIR`, else the platform's user cache folder of matreg."""
    return Path(os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("matreg"))


def _spacegroup_number(structure: Structure) -> int | None:
    """The structure's space group number; None where spglib finds none."""
    try:
        return SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_number()
    except SymmetryUndeterminedError:
        return None


def _cached(path: Path) -> pyarrow.Table:
    """The cache's rows; none where it is missing or unreadable (it is then written anew)."""
    try:
        return pq.read_table(path, schema=_CACHE_SCHEMA)
    except (OSError, pyarrow.ArrowException) as exc:
        if path.exists():
            logger.info("the space group cache %s cannot be read (%s): it is written anew", path, exc)
        return _CACHE_SCHEMA.empty_table()


def _numbers_of(cached: pyarrow.Table, keys: list[bytes]) -> dict[bytes, int | None]:
    """The cached numbers of these keys."""
    rows = cached.filter(pyarrow.compute.is_in(cached["key"], pyarrow.array(keys, _CACHE_SCHEMA.field("key").type)))
    return dict(zip(rows["key"].to_pylist(), rows["spacegroup_number"].to_pylist(), strict=True))


def _remember(path: Path, cached: pyarrow.Table, numbers: dict[bytes, int | None]) -> None:
    """Add `numbers` (none of them `cached`) to the cache (rewritten whole under a temp name, then renamed: a reader
    never sees half a file; of two processes adding at once, one's additions are lost, to be analysed again)."""
    new = pyarrow.table([list(numbers), list(numbers.values())], schema=_CACHE_SCHEMA)
    table = pyarrow.concat_tables([cached, new])
    try:
        atomic_write(path, lambda temp: pq.write_table(table, temp))
    except (OSError, StoreError) as exc:  # (StoreError: a folder stands where the file goes)
        logger.info("space groups not remembered: %s cannot be written (%s)", path, exc)
