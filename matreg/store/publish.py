"""What publishing a run decides with: the check its rows pass (`PublishCheck`), what it leaves out and why
(`Dropped`, `Unwritten`), and the SQL and Arrow steps that compare a run's files with the store (`Store.publish_run`
runs them)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import duckdb
import numpy
import pyarrow
import pyarrow.compute
import pyarrow.parquet as pq

from matreg.journal import RunJournal
from matreg.schema import (
    TableSpec,
    arrow_schema,
    canonical_method,
    children_of,
    conformed,
    load_tables,
    table_spec,
    value_conditions,
)
from matreg.store.files import atomic_write, store_file_writer
from matreg.store.sql import (
    COMMIT,
    current_rows_sql,
    dismissed_sql,
    equal,
    latest_rows_sql,
    readmitted_alone,
    reads_again_sql,
    still_quarantined_sql,
    stored_sql,
    whole_scope_sql,
)

# what a stored value a run did not read describes: kept only while the run reads these as stored (`Store._keep_stored`)
SAME_MATERIAL = {"formula": "formula", "nsites": "sites", "spacegroup_number": "space group"}
NOT_KEPT = "not_kept"  # `stored_values`'s column: the row's stored values were not kept
PUBLISH_BUCKET_ROWS = 50_000  # rows of a run's files DuckDB compares with the store at a time (`buckets`)
QUARANTINE = "quarantine"  # the table of rejected input, published last: it receives the rows a check withholds
READ = "read"  # the staged column numbering the run's reads (items read before): a record's later read, a larger one


class ValueKey(NamedTuple):
    """The key of a value a run keeps as stored (`PublishCheck.kept_values`): its record, property, method and
    conditions (the schema's, in its order: `value_conditions`); None where they could not be read: then any stored
    value of the property and method that the run does not give."""

    record_id: str
    property: str
    method: str | None
    conditions: tuple[float | None, ...] | None


class PublishCheck(Protocol):
    """How the rows of a run are checked as the run is published."""

    def admit(self, name: str, batch: pyarrow.Table) -> pyarrow.Table:
        """The rows of `batch` (of table `name`) to publish; raise to refuse the whole run."""

    def withheld(self) -> list[dict]:
        """Quarantine rows for the rows `admit` has withheld so far."""

    def withheld_keys(self) -> dict[str, list]:
        """Keys, by table, of the rows withheld whole: none of the run's rows with these keys (or belonging to
        them) is published, whichever batch they came in."""

    def kept_values(self) -> list[ValueKey]:
        """Keys of values whose stored value the run keeps (`Store._keep_stored_values`): of a record the run writes,
        values of a part of it the run rejected (a row of a lab file's measurement series, a cell of a row)."""

    def rows_moved(self) -> bool:
        """True when the run's record ids, which name places (a file's rows), no longer name what they named: what
        the run lacks is then no record its scope dropped, and nothing is withdrawn."""

    def refuse_run(self) -> None:
        """Raise to refuse the whole run for what the store holds now (a name or a scope another run took since this
        one started): called under the store's lock, before anything of the run is decided there."""

    def refuse_removals(self, removed: Removed) -> None:
        """Raise to refuse the whole run for the stored values its write would remove (`Removed`): called under the
        store's lock, once what the run writes is decided, before anything is published."""

    def reads_store(self) -> bool:
        """True when what `admit` decides depends on what the store holds: the run's rows are then checked again,
        under the store's lock, when a commit was published since they were checked."""

    def restart(self) -> None:
        """Forget what `admit` and `withheld` found (and counted), to check the run's rows again."""


class Dropped(NamedTuple):
    """The rows of one table that publishing a run did not write: unchanged (as stored), withheld (by the check),
    superseded (the store holds a later read of their record), earlier (of a read of a key, or of a record, that the
    run read again on another page: only a record's last read is written). Each row is counted once, under the first
    of withheld, earlier, unchanged and superseded that applies."""

    unchanged: int = 0
    withheld: int = 0
    superseded: int = 0
    earlier: int = 0


Kind = tuple[str, str | None]  # a value's property and method


@dataclass(frozen=True)
class Removed:
    """The stored values publishing a run removes: of the records it writes, those no value of the run gives again
    (its source no longer gives them, or its field map no longer reads them), by property and method (`Kind`): how
    many (`counts`) and of which records (`records`)."""

    counts: dict[Kind, int] = field(default_factory=dict)
    records: dict[Kind, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, str | None, str, int]]) -> Removed:
        """From (property, method, record id, how many values) rows (`removed_values_sql`)."""
        counts: dict[Kind, int] = {}
        records: dict[Kind, set[str]] = {}
        for prop, method, record_id, count in rows:
            counts[prop, method] = counts.get((prop, method), 0) + count
            records.setdefault((prop, method), set()).add(record_id)
        return cls(counts, {kind: frozenset(ids) for kind, ids in records.items()})

    @property
    def values(self) -> dict[str, int]:
        """How many values of each property are removed, by property name."""
        values: dict[str, int] = {}
        for (prop, _), count in self.counts.items():
            values[prop] = values.get(prop, 0) + count
        return dict(sorted(values.items()))

    def of(self, kinds: Iterable[Kind]) -> Removed:
        """The values removed of these kinds."""
        wanted = set(kinds)
        chosen = [kind for kind in self.counts if kind in wanted]
        return Removed({kind: self.counts[kind] for kind in chosen}, {kind: self.records[kind] for kind in chosen})

    def total(self) -> tuple[int, int]:
        """How many values are removed, and of how many records."""
        return sum(self.counts.values()), len(frozenset().union(*self.records.values()))


# (last staged fetch_runs row, dropped rows by table, records withdrawn, values removed) -> the run's fetch_runs row
# as published
RunFinisher = Callable[[dict, dict[str, Dropped], int, Removed], dict]


class WholeScope(NamedTuple):
    """What a run that reads its scope whole (a lab file) read: its source and scope, where it read it (`endpoint`, the
    file's path, and `relative_path`, its path from the folder holding the store: `Store.relative_path`), the paths
    earlier imports read it at (`places`: `Store.places`), and the places of where the steward says the file was
    moved from (`moved_from`: `import --moved-from`)."""

    source: str
    scope: str
    endpoint: str
    relative_path: str | None
    places: tuple[str, ...]
    moved_from: tuple[str, ...] = ()


class LastReads(NamedTuple):
    """Of the records a run read more than once (on two pages: a source that shifted as the run paged, an entry it
    lists twice), a Parquet file of their ids with their last read (`records`, READ) and one of that read's rows of
    each table that belongs to them (`rows`, by table): written by `Store._last_reads`."""

    records: Path
    rows: dict[str, Path]

    def parameters(self, names: list[str]) -> dict[str, str]:
        """The SQL parameters `earlier_read_sql` reads for the run's rows of these tables (none for tables whose
        rows belong to no record)."""
        rows = {f"last_read_{name}": str(self.rows[name]) for name in names if name in self.rows}
        return {"reread": str(self.records), **rows} if rows else {}


class CheckedRun(NamedTuple):
    """A staged run's files as the publishing check let its rows through (`Store._checked_run`): one Parquet file per
    table in `build`, the ids of its quarantine rows, and its last reads (`Store._last_reads`, written in `reads`)."""

    build: Path
    reads: Path
    quarantined: list[str]
    last_reads: LastReads | None

    def remove(self) -> None:
        """Delete the folders (what of them is left: `build` becomes the run's commit)."""
        shutil.rmtree(self.build, ignore_errors=True)
        shutil.rmtree(self.reads, ignore_errors=True)


class Unwritten(NamedTuple):
    """What decides which of a run's rows publishing leaves out, by table: keys the check withheld whole, keys the
    store holds from a later read, the records that changed (None: the store holds no record yet), and the last reads
    of the records the run read more than once (None: it read each once)."""

    withheld: dict[str, list]
    superseded: dict[str, list]
    changed: dict[str, list | None]
    last_reads: LastReads | None


def publishing_order() -> list[str]:
    """The tables of a run in the order they are published: as declared (materials, whose rows the others hang on,
    first), quarantine last (it receives the rows withheld from the others); fetch_runs apart, when all are done."""
    return sorted((name for name in load_tables() if name != "fetch_runs"), key=lambda name: name == QUARANTINE)


def last_writes_in_scope_sql() -> str:
    """Each record's last write in the scope `$scope` of the source `$source` (a lab file's rows)."""
    key = ", ".join(table_spec("materials").primary_key)
    return (
        f"SELECT * FROM {stored_sql('materials')} "
        f"WHERE source = $source AND scope = $scope "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {COMMIT} DESC) = 1"
    )


def stored_values_of_scope_sql() -> str:
    """SQL: the values of the records `$records` the store shows from their last write in the scope `$scope` of the
    source `$source` (a lab file; a value a steward readmitted since is not one), of keys the run's values
    (`$properties`) do not give, where the run's row of the record (`$materials`) is of the formula unit that write
    was, however written (a molar value is per mole of it: Al2O3 and `Al2 O3` are one, Al4O6 another): each with the
    run's id."""
    spec, of_records = table_spec("properties"), "s.record_id IN (SELECT unnest($records::VARCHAR[]))"
    shown = current_rows_sql("properties", where=of_records, in_scope="$scope")
    columns = ", ".join("m.run_id" if name == "run_id" else f"c.{name}" for name in arrow_schema("properties").names)
    written = "SELECT DISTINCT record_id, run_id, formula, atoms_per_formula_unit FROM read_parquet($materials)"
    unit = "m.formula = l.formula AND m.atoms_per_formula_unit = l.atoms_per_formula_unit"  # however written
    return (
        f"WITH last AS ({last_writes_in_scope_sql()}) SELECT {columns} FROM ({shown}) AS c "
        "JOIN last AS l ON l.record_id = c.record_id AND l.run_id = c.run_id "
        f"JOIN ({written}) AS m ON m.record_id = c.record_id AND {unit} "
        f"WHERE NOT EXISTS (SELECT 1 FROM read_parquet($properties) AS n WHERE {equal(spec.primary_key, 'n', 'c')})"
    )


def of_keys(values: pyarrow.Table, keys: list[ValueKey]) -> pyarrow.Table:
    """Those of `values` (properties rows) under one of `keys`: the same record, property and method (as the method
    vocabulary names it: a mapping may spell it otherwise), and conditions, any where the key's could not be read."""
    exact = {(key.record_id, key.property, key.method, key.conditions) for key in keys}
    loose = {(key.record_id, key.property, key.method) for key in keys if key.conditions is None}
    rows = zip(*(values[column].to_pylist() for column in ValueKey._fields[:3]), strict=True)
    conditions = zip(*(values[condition].to_pylist() for condition in value_conditions()), strict=True)
    kept = []
    for (record_id, prop, method), at in zip(rows, conditions, strict=True):
        named = (record_id, prop, canonical_method(method))
        kept.append((*named, at) in exact or named in loose)
    return values.filter(pyarrow.array(kept, pyarrow.bool_()))


def runs_at_sql() -> str:
    """The ids of the runs that read a lab file at one of the paths `$places` (`WholeScope.places`)."""
    places = "(SELECT unnest($places::VARCHAR[]))"
    return f"SELECT run_id FROM {stored_sql('fetch_runs')} WHERE endpoint IN {places}"


def runs_elsewhere_sql() -> str:
    """The ids of the runs that did not read a lab file where it is now: at its path `$endpoint` and its path from
    the folder holding the store `$relative_path` both (by its path alone where either recorded none: a run of an
    older matreg, a file on another Windows drive)."""
    here = "endpoint = $endpoint AND coalesce(relative_path = $relative_path, true)"
    return f"SELECT run_id FROM {stored_sql('fetch_runs')} WHERE NOT coalesce({here}, false)"


def rereads_resolving_sql() -> str:
    """SQL of `Store._rereads_resolving`: of the `$candidates` records, those with a row of a run that read a selection
    (not a whole scope), open or readmitted (not dismissed), that a write of the run's scope (`$materials`' rows)
    resolves, unless the run `$quarantined` it again."""
    selections = f"SELECT run_id FROM fetch_runs WHERE {whole_scope_sql()} IS NULL"
    run_scope = "(SELECT any_value(coalesce(scope, '')) FROM read_parquet($materials))"
    rows = "SELECT * FROM quarantine WHERE record_id IN (SELECT unnest($candidates::VARCHAR[]))"
    return (
        f"SELECT DISTINCT record_id FROM ({still_quarantined_sql(rows)}) "
        f"WHERE run_id IN ({selections}) AND ({run_scope} = '' OR scope = {run_scope}) "
        "AND quarantine_id NOT IN (SELECT unnest($quarantined::VARCHAR[])) "
        f"AND quarantine_id NOT IN ({dismissed_sql()})"
    )


def run_rows_sql(
    spec: TableSpec,
    name: str = "n",
    parameter: str = "path",
    where: str = "true",
    earlier_read: str = "false",
    ranked: bool = True,
) -> str:
    """SQL: the run's rows of a table (CTE `name`, from the file `$parameter`, as `r`; those `where` selects), each
    ranked among the rows of its key (newest 1: the row the run writes), a row of an earlier read of its record
    (`earlier_read`, from `earlier_read_sql`) after all. Not `ranked`: rows that hold each key once (`keys_repeat`),
    each the newest of its key, with no window over the file."""
    rank = "1"
    if ranked:
        rank = f"row_number() OVER (PARTITION BY {', '.join(spec.primary_key)} ORDER BY file_row_number DESC)"
    return (
        f"{name} AS (SELECT *, CASE WHEN {earlier_read} THEN 2 ELSE {rank} END AS newest "
        f"FROM read_parquet(${parameter}, file_row_number = true) AS r WHERE {where})"
    )


def earlier_read_sql(name: str, last_reads: LastReads | None) -> str:
    """SQL: the run's row `r` of table `name` is of an earlier read of its record than the last (`last_reads`): that
    read has no row with the same content, key and values (a key whose row of the last read the publishing check
    withheld is no longer the record's either). `false` when the run read each record once, and for a table whose
    rows belong to no record."""
    if last_reads is None or name not in last_reads.rows:
        return "false"
    spec = table_spec(name)
    link = table_spec(spec.belongs_to).primary_key[0]
    return (
        f"(r.{link} IN (SELECT {link} FROM read_parquet($reread)) AND NOT EXISTS (SELECT 1 FROM "
        f"read_parquet($last_read_{name}) AS l WHERE {equal(spec.content_columns, 'l', 'r')}))"
    )


def read_twice(con: duckdb.DuckDBPyConnection, path: Path, link: str) -> bool:
    """True when a run's file of records (materials) holds a record more than once (read on two pages); counted a
    part (`buckets`) at a time."""
    return any(keys_repeat(con, path, [link], bucket) for bucket in buckets([path], link))


def keys_repeat(con: duckdb.DuckDBPyConnection, path: Path, key: list[str], bucket: str) -> bool:
    """True when the rows of a run's file that `bucket` selects (`buckets`) hold a key more than once: its rows then
    need ranking (`run_rows_sql`). Counting the distinct keys costs a third of ranking them (a window over 232,500
    value rows: 55 against 190 ms of CPU); their hashes would cost less, but DuckDB 2.0 fails counting the distinct
    hashes of a column holding NaN ('Perfect hash aggregate ... exceeded total groups')."""
    query = f"SELECT count(*) > count(DISTINCT ({', '.join(key)})) FROM read_parquet($path) WHERE {bucket}"
    return con.execute(query, {"path": str(path)}).fetchall()[0][0]


def staged_rows(
    journal: RunJournal, name: str, sizes: dict[str, int], columns: list[str] | None = None
) -> pyarrow.RecordBatchReader:
    """A table's staged rows (those `columns` of them) with the read each came from (READ; -1 where a matreg that did
    not number reads staged it, before a resume: earlier than the resume's), streamed from the journal (`sizes`: its
    committed lengths)."""
    schema = arrow_schema(name)
    schema = pyarrow.schema([schema.field(column) for column in columns or schema.names])
    schema = schema.append(pyarrow.field(READ, pyarrow.int64()))

    def batches() -> Iterator[pyarrow.RecordBatch]:
        for table in journal.tables(name, sizes):
            if READ in table.column_names:
                reads = table.column(READ)
            else:
                reads = pyarrow.array(numpy.full(table.num_rows, -1, dtype=numpy.int64))
            yield from conformed(name, table, columns).append_column(READ, reads).to_batches()

    return pyarrow.RecordBatchReader.from_batches(schema, batches())


def changed_records_sql(owner: str, link: str, in_run: set[str], bucket: str, last_reads: LastReads | None) -> str:
    """SQL of `Store._changed_records` for the records `bucket` selects (`in_run`: the tables the run has files of,
    each the parameter of its file's path; the owner's is always one; `last_reads`: of the records read more than
    once, for `earlier_read_sql`)."""
    of_run = _of_run_sql(owner, link, bucket)
    run_scope = f"(SELECT any_value(coalesce(scope, '')) FROM read_parquet(${owner}))"
    runs, queries = [], []
    for name in [owner, *children_of(owner)]:
        table = table_spec(name)
        stored = f"({current_rows_sql(name, of_run, in_scope=run_scope)})"
        content = equal([column for column in table.content_columns if column not in table.primary_key])
        if name in in_run:
            earlier_read = earlier_read_sql(name, last_reads)
            runs.append(run_rows_sql(table, f"n_{name}", name, where=bucket, earlier_read=earlier_read))
            queries.append(  # new or different rows
                f"SELECT n.{link} FROM n_{name} AS n LEFT JOIN {stored} AS s ON {equal(table.primary_key)} "
                f"AND {content or 'true'} WHERE n.newest = 1 AND s.{link} IS NULL"
            )
        if name != owner:  # stored rows the run reads again and no longer has
            queries.append(f"SELECT {link} FROM ({_not_given_again_sql(name, owner, link, of_run, in_run)})")
    return f"WITH {', '.join(runs)} " + " UNION ".join(queries)


def removed_values_sql(in_run: set[str], bucket: str) -> str:
    """SQL of `Store._removed_values`: of the records `bucket` selects of a run's files as they are published (`in_run`:
    the tables it has files of, materials always), the stored values their write removes (`_not_given_again_sql`),
    as (property, method, record id, how many) rows."""
    owner, name = "materials", "properties"
    link = table_spec(owner).primary_key[0]
    runs = [run_rows_sql(table_spec(table), f"n_{table}", table, bucket) for table in (owner, name) if table in in_run]
    removed = _not_given_again_sql(name, owner, link, _of_run_sql(owner, link, bucket), in_run)
    return f"WITH {', '.join(runs)} SELECT property, method, {link}, count(*) FROM ({removed}) GROUP BY ALL"


def _of_run_sql(owner: str, link: str, bucket: str) -> str:
    """SQL: a stored row is of a record of the run's file of `owner` that `bucket` selects."""
    return f"{link} IN (SELECT {link} FROM read_parquet(${owner}) WHERE {bucket})"


def _not_given_again_sql(name: str, owner: str, link: str, of_run: str, in_run: set[str]) -> str:
    """SQL: the current rows of table `name`, whose rows belong to `owner`, of the run's records (`of_run`) that the
    run's write of their record (its last read, `n_<owner>`) reads again and that the run's rows (`n_<name>`, where
    `name` is `in_run`) no longer give with their key, values a steward readmitted alone aside: what the write removes
    from the views."""
    table = table_spec(name)
    missing = "true"
    if name in in_run:
        missing = f"NOT EXISTS (SELECT 1 FROM n_{name} AS n WHERE n.newest = 1 AND {equal(table.primary_key)})"
    read_again = reads_again_sql(name, "s", "s.write_scope", "coalesce(o.scope, '')", "o.scope_temperature_K")
    return (
        f"SELECT s.* FROM ({current_rows_sql(name, of_run, with_scope=True)}) AS s "
        f"JOIN n_{owner} AS o ON o.{link} = s.{link} AND o.newest = 1 AND (s.write_scope IS NULL OR {read_again}) "
        f"WHERE NOT {readmitted_alone(owner, link, 's')} AND {missing}"
    )


def buckets(paths: list[Path], column: str) -> list[str]:
    """SQL conditions that split a run's files into parts of about PUBLISH_BUCKET_ROWS rows (of the largest) by a hash
    of `column` (a key column: every row of a key, and of a record, falls in one part), so that DuckDB's memory
    stays flat."""
    rows = max(pq.ParquetFile(path).metadata.num_rows for path in paths)
    n_buckets = -(-rows // PUBLISH_BUCKET_ROWS)
    if n_buckets <= 1:
        return ["true"]
    return [f"hash({column}) % {n_buckets} = {bucket}" for bucket in range(n_buckets)]


def stored_rows_of_run_sql(name: str, spec: TableSpec) -> str:
    """SQL: the stored rows (`s`) of the keys of the run's rows (`n`)."""
    return latest_rows_sql(name, spec.primary_key, f"EXISTS (SELECT 1 FROM n WHERE {equal(spec.primary_key)})")


def owners() -> list[str]:
    """The tables whose rows others belong to (materials): a record of them is written whole or not at all."""
    return list(dict.fromkeys(spec.belongs_to for spec in load_tables().values() if spec.belongs_to))


def stored_values(
    con: duckdb.DuckDBPyConnection, path: Path, columns: tuple[str, ...], start: int, stop: int
) -> pyarrow.Table:
    """Of the rows start..stop-1 of a run's materials file whose record the store holds, in file order: the row's
    position (`file_row_number`), the values to write in `columns` and notes, and whether stored values were not kept
    (NOT_KEPT). The stored values, where the row is the same material as stored (`SAME_MATERIAL`); else the run's, its
    notes saying which stored values (`kept_columns`) are not kept and what changed."""
    spec = table_spec("materials")
    same = equal(list(SAME_MATERIAL))
    lost = " OR ".join(f"s.{column} IS NOT NULL" for column in kept_columns(columns)) or "false"
    not_kept = f"NOT ({same}) AND ({lost})"
    notes = f"CASE WHEN {same} THEN {'s' if 'notes' in columns else 'n'}.notes ELSE n.notes END"
    noted = f"CASE WHEN {not_kept} THEN concat_ws('; ', {notes}, {_not_kept_note_sql(columns)}) ELSE {notes} END"
    written = [f"CASE WHEN {same} THEN s.{column} ELSE n.{column} END AS {column}" for column in kept_columns(columns)]
    run_rows = (
        "n AS (SELECT * FROM read_parquet($path, file_row_number = true) "
        "WHERE file_row_number >= $start AND file_row_number < $stop)"
    )
    sql = (
        f"WITH {run_rows}, s AS ({stored_rows_of_run_sql('materials', spec)}) "
        f"SELECT n.file_row_number, {', '.join([*written, noted])} AS notes, {not_kept} AS {NOT_KEPT} "
        f"FROM n JOIN s ON {equal(spec.primary_key)} ORDER BY n.file_row_number"
    )
    return con.sql(sql, params={"path": str(path), "start": start, "stop": stop}).to_arrow_table()


def kept_columns(columns: tuple[str, ...]) -> list[str]:
    """Of the columns a run did not read, those whose stored values a note names when they are not kept (notes aside:
    they are the note's place)."""
    return [column for column in columns if column != "notes"]


def _not_kept_note_sql(columns: tuple[str, ...]) -> str:
    """SQL: the note of a run's row (`n`) whose stored row (`s`) is another material: 'stored structure not kept: not
    read by this run, and the record changed since (formula Ac -> Th)'."""
    lost = ", ".join(f"CASE WHEN s.{column} IS NOT NULL THEN '{column}' END" for column in kept_columns(columns))
    changes = ", ".join(
        f"CASE WHEN s.{column} IS DISTINCT FROM n.{column} THEN '{name} ' || coalesce(CAST(s.{column} AS VARCHAR), "
        f"'none') || ' -> ' || coalesce(CAST(n.{column} AS VARCHAR), 'none') END"
        for column, name in SAME_MATERIAL.items()
    )
    return (
        f"'stored ' || concat_ws(', ', {lost}) || ' not kept: not read by this run, and the record changed since (' "
        f"|| concat_ws(', ', {changes}) || ')'"
    )


def with_values(rows: pyarrow.Table, stored: pyarrow.Table, start: int) -> pyarrow.Table:
    """`rows` (from position `start` of a file) with the values of `stored` (`stored_values`) in its columns."""
    if not stored.num_rows:
        return rows
    mask = numpy.zeros(rows.num_rows, dtype=bool)
    mask[stored["file_row_number"].to_numpy() - start] = True
    for column in stored.column_names[1:]:
        values = stored[column].combine_chunks().cast(rows.schema.field(column).type)
        replaced = pyarrow.compute.replace_with_mask(rows[column].combine_chunks(), pyarrow.array(mask), values)
        rows = rows.set_column(rows.schema.get_field_index(column), column, replaced)
    return rows


def rewrite_with(path: Path, rows: pyarrow.Table, schema: pyarrow.Schema) -> None:
    """Rewrite a Parquet file with `rows` after its own, a row group at a time (no file yet: `rows` alone), in place
    at once (`atomic_write`)."""

    def write(temp: Path) -> None:
        with store_file_writer(temp, schema) as writer:
            if path.exists():
                with contextlib.closing(pq.ParquetFile(path)) as source:
                    for group in range(source.num_row_groups):
                        writer.write_table(source.read_row_group(group).cast(schema))
            writer.write_table(rows.cast(schema))

    atomic_write(path, write)


def rewrite_without(path: Path, positions: numpy.ndarray, schema: pyarrow.Schema) -> None:
    """Rewrite a Parquet file without the rows at `positions` (sorted), a row group at a time (none left: no file)."""
    source = pq.ParquetFile(path)
    temp = path.with_suffix(".rewrite")
    writer, start = None, 0
    try:
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)
            keep = numpy.ones(table.num_rows, dtype=bool)
            inside = positions[(positions >= start) & (positions < start + table.num_rows)]
            keep[inside - start] = False
            start += table.num_rows
            if keep.any():
                writer = writer or store_file_writer(temp, schema)
                writer.write_table(table.filter(keep))
    finally:
        if writer is not None:
            writer.close()
        source.close()
    if writer is None:
        path.unlink()
    else:
        os.replace(temp, path)
