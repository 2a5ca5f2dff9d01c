"""The SQL of the store's views (`view_definitions`: what `matreg sql` and matreg's own reads see) and of reads of
its stored rows: SQL text built from the declared tables, read by DuckDB over the commits' Parquet files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from matreg.formula import CRYSTAL
from matreg.schema import UNCERTAINTY, load_tables, load_vocabulary, table_spec, value_conditions, wide_column

CURATION_RUN_PREFIX = "curation:"  # run id of rows a curation entry writes ('curation:<entry_id>')
SNAPSHOT = "matreg_snapshot"  # the DuckDB variable naming the newest commit the views read (`Store._pin`)
COMMIT = "commit_no"  # the number of a stored row's commit (a compacted folder's files store it by row)
COMPACTED_THROUGH = "matreg_compacted"  # the DuckDB variable naming the newest compacted folder (`Store._pin`)
PART_COLUMN = "temperature_K"  # a record's rows at its write's scope_temperature_K: the part of it that write reads


def views_named(sql: str, definitions: dict[str, str]) -> list[str]:
    """The views (of `definitions`) that `sql` names, each after the views its own SQL names: a word match (a column
    or file named as a view costs a view more, never misses one)."""
    named: list[str] = []

    def visit(text: str, seen: frozenset[str]) -> None:
        for word in dict.fromkeys(re.findall(r"\w+", text)):
            if word in definitions and word not in seen and word not in named:
                visit(definitions[word], seen | {word})
                named.append(word)

    visit(sql, frozenset())
    return named


def views_in_order() -> dict[str, str]:
    """The SQL of every view, by view name, each after the views it reads."""
    definitions = view_definitions()
    return {name: definitions[name] for name in views_named(" ".join(definitions), definitions)}


def view_definitions() -> dict[str, str]:
    """The SQL of every view of the DuckDB file, by view name."""
    views = {name: current_rows_sql(name) for name in load_tables()}
    writes = f"SELECT * EXCLUDE ({COMMIT}) FROM {stored_sql('materials')}"  # each write of a record
    return views | {
        "materials": _shown_materials_sql(),
        "properties_wide": _wide_view_sql(),
        "material_writes": writes,
        "open_quarantine": _open_quarantine_sql(),
        "run_failures": _run_failures_sql(),
    }


def _run_failures_sql() -> str:
    """Every failed attempt of every run: the fetch_runs row each failure committed (a resume keeps the run's id, so
    its `fetch_runs` row, the run's latest, shows only the last), never rewritten; a row once (a compacted folder's
    covered folders, where they are read too, give it again)."""
    columns = "run_id, source, query, started_at, finished_at AS failed_at, n_fetched, error"
    return f"SELECT DISTINCT {columns} FROM {stored_sql('fetch_runs')} WHERE status = 'failed'"


# What a properties_wide row is of: its record (these columns of `materials`), then its values' provenance, method
# and conditions (`_wide_values`)
_WIDE_RECORD = ("record_id", "source", "formula", "formula_original")


def _wide_values() -> list[str]:
    """The columns of `properties` a properties_wide row is of: provenance, method and each condition the schema
    declares (`value_conditions`)."""
    return ["provenance", "method", *value_conditions()]


def _view_notes() -> dict[str, str]:
    """What each view of the DuckDB file other than the tables' shows, as `matreg schema` lists them."""
    key = ", ".join(f"`{column}`" for column in (*_WIDE_RECORD, *_wide_values()))
    return {
        "properties_wide": f"One row per record, provenance, method and conditions ({key}), then one column per "
        "property of the vocabulary, in its canonical unit (a molar value per mole of `formula_original`), each "
        "followed by `<property>_uncertainty`: its values' standard uncertainties, empty where none is stated.",
        "material_writes": "Every write of every record: the `materials` columns of each run's row; join on "
        "`record_id` and `run_id` for the citation, licence and database version a value was written with.",
        "open_quarantine": "The `quarantine` rows still to deal with: not readmitted, not dismissed, and still given "
        "so by their file or source.",
        "run_failures": "Every failed attempt of every run (`run_id`, `source`, `query`, `started_at`, `failed_at`, "
        "`n_fetched`, `error`): a run continued by --resume keeps its id, and its `fetch_runs` row shows its latest "
        "attempt only.",
    }


def views_markdown() -> str:
    """Markdown list of the views of the DuckDB file, for `matreg schema`: each table's, then the others."""
    tables = ", ".join(f"`{name}`" for name in load_tables())
    notes = [
        f"* Each table's view ({tables}) shows its current rows: the newest write of each key. `materials` leaves out "
        "the records withdrawn (a lab file re-imported without them, no other file or readmit giving them a value).",
        *(f"* `{name}`: {note}" for name, note in _view_notes().items()),
    ]
    return "\n".join(["## Views (what `matreg sql` and DuckDB clients query)", "", *notes, ""]) + "\n"


def _shown_materials_sql() -> str:
    """Each record's current materials row (`current_rows_sql`), less the records withdrawn (`_withdrawn_sql`)."""
    link = table_spec("materials").primary_key[0]
    return f"SELECT * FROM ({current_rows_sql('materials')}) AS m WHERE {link} NOT IN ({_withdrawn_sql()})"


def _withdrawn_sql() -> str:
    """SQL: the ids of the records withdrawn: whose latest write gave no value (a lab file re-imported without the
    record, `Store._add_withdrawals`), or was a steward's readmit of a whole record (stale once its file gives the
    row otherwise, `_readmits_in_force_sql`), and which have no value shown any more (none that another file or
    scope, or a steward's readmit in force, gave). Every record a run admits has a value, so only a withdrawal or a
    stale readmit leaves a record without one; its rows stay, as history (`material_writes`). Costs a scan of the
    record ids and runs of materials and properties, and the current values of the few records found (a record's
    whole view costs more)."""
    link = table_spec("materials").primary_key[0]
    writes, values = stored_sql("materials"), stored_sql("properties")
    shown = current_rows_sql("properties", where=f"s.{link} IN (SELECT {link} FROM emptied)")
    return (
        f"WITH latest AS (SELECT {link}, arg_max(run_id, {COMMIT}) AS run_id FROM {writes} GROUP BY {link}), "
        f"emptied AS (SELECT {link} FROM latest AS l WHERE starts_with(l.run_id, '{CURATION_RUN_PREFIX}') "
        f"OR NOT EXISTS (SELECT 1 FROM {values} AS p WHERE p.{link} = l.{link} AND p.run_id = l.run_id)) "
        f"SELECT {link} FROM emptied WHERE {link} NOT IN (SELECT {link} FROM ({shown}))"
    )


def _open_quarantine_sql() -> str:
    """Quarantine rows still to deal with: those the source still gives as they were rejected
    (`still_quarantined_sql`) that a steward neither readmitted nor dismissed (a dismissal holds for the row's id
    unless a later entry reopened it: the same input rejected again stays dismissed, a changed one is a new row)."""
    return (
        f"SELECT * FROM ({still_quarantined_sql('SELECT * FROM quarantine')}) "
        f"WHERE quarantine_id NOT IN (SELECT quarantine_id FROM ({settling_entries_sql()}))"
    )


def settling_entries_sql() -> str:
    """SQL: of each quarantine row a steward settled, the entry that settles it now (`quarantine_id`, `entry_id`,
    `action`): its readmit, else its last dismissal unless a reopen came after it. The rows not listed are open."""
    last = "arg_max({}, CASE WHEN action = 'readmit' THEN '1' ELSE '0' END || entry_id)"  # a readmit wins
    return (
        f"SELECT quarantine_id, {last.format('entry_id')} AS entry_id, {last.format('action')} AS action "
        "FROM curation_log WHERE action IN ('readmit', 'dismiss', 'reopen') AND quarantine_id IS NOT NULL "
        f"GROUP BY quarantine_id HAVING {last.format('action')} <> 'reopen'"
    )


def decided_versions_sql() -> str:
    """SQL: every stored version of the quarantine rows of source `$source` and scope `$scope` (a row of a store older
    than scopes: of its run's) that a curation entry names, the row with the oldest latest entry first: its id, item
    and payload, the parameters of the run that quarantined it so (NULL where that run is not stored) and the id of
    the latest entry naming it (`latest`)."""
    runs = f"SELECT run_id, parameters, {whole_scope_sql()} AS whole_scope FROM fetch_runs"
    latest = (
        "SELECT quarantine_id, max(entry_id) AS latest FROM curation_log WHERE quarantine_id IS NOT NULL GROUP BY ALL"
    )
    return (
        f"SELECT q.quarantine_id, q.item, q.raw, r.parameters, e.latest FROM {stored_sql('quarantine')} q "
        f"JOIN ({latest}) e USING (quarantine_id) LEFT JOIN ({runs}) r USING (run_id) "
        f"WHERE q.source = $source AND coalesce(q.scope, r.whole_scope) = $scope ORDER BY e.latest, q.{COMMIT}"
    )


def dismissed_sql() -> str:
    """SQL: the ids of the quarantine rows a steward dismissed, not reopened since nor readmitted."""
    return f"SELECT quarantine_id FROM ({settling_entries_sql()}) WHERE action = 'dismiss'"


def still_quarantined_sql(rows: str) -> str:
    """SQL: of the quarantine rows that the SELECT `rows` gives, those the source still gives as they were rejected
    (whatever a steward decided):
    - of a run that read its scope whole (a lab file): while the latest complete run of some scope of that source
      quarantined the row too (the files as they are now, wherever they were read: a row no file has any more, or
      every file now admits or rejects otherwise, is no longer given; two files may reject one row alike), or while
      the latest run of the row's own scope did not list what it quarantined (a run of an older matreg: the file
      was not imported again since);
    - of any other run (a fetch of a selection): unless a run wrote the row's record as it read it after the last
      run that quarantined the row had finished (the source now gives the record or value otherwise: valid, rejected
      otherwise or not at all), reading all of the record or what the row's run read of it (`scope`: JANAF at one
      temperature resolves nothing at others). A read that finds such a record as stored writes it all the same
      (`Store._rereads_resolving`); a run of an older matreg (it lists no quarantine ids) resolves nothing, nor is a
      row without its record (an input mapped to none, an older row) ever resolved.
    Reads the writes of the rows' records only."""
    runs = (
        f"SELECT run_id, source, status, finished_at, quarantined, {whole_scope_sql()} AS whole_scope "
        f"FROM ({current_rows_sql('fetch_runs')})"
    )
    latest = (
        "SELECT source, whole_scope, quarantined FROM runs WHERE status = 'complete' AND whole_scope IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY source, whole_scope ORDER BY finished_at DESC, run_id DESC) = 1"
    )
    # the ids as rows, joined (a list searched for each quarantine row costs rows x ids)
    still = "SELECT DISTINCT source, unnest(quarantined) AS quarantine_id FROM latest"
    unlisted = "SELECT source, whole_scope FROM latest WHERE quarantined IS NULL"
    last_listed = (
        "SELECT quarantine_id, max(finished_at) AS at FROM (SELECT finished_at, unnest(quarantined) AS quarantine_id "
        "FROM runs WHERE status = 'complete') GROUP BY quarantine_id"
    )
    # each record's latest read that a run listing its quarantine rows wrote, by what the run read of it (scope)
    last_written = (
        "SELECT w.record_id, coalesce(w.scope, '') AS scope, max(w.fetched_at) AS at "
        f"FROM {stored_sql('materials')} w "
        "JOIN runs r USING (run_id) WHERE r.status = 'complete' AND r.quarantined IS NOT NULL "
        "AND w.record_id IN (SELECT record_id FROM q) GROUP BY ALL"
    )
    # of a row's record, the latest such read that read what the row's run did (all of the record, or that scope)
    reread = (
        f"SELECT q.quarantine_id, max(w.at) AS at FROM q JOIN ({last_written}) w "
        "ON w.record_id = q.record_id AND (w.scope = '' OR w.scope = q.scope) GROUP BY q.quarantine_id"
    )
    in_scope_still = "s.quarantine_id IS NOT NULL OR u.source IS NOT NULL"
    written_since = "coalesce(w.at > greatest(r.finished_at, l.at), false)"  # (greatest skips NULLs)
    return (
        f"WITH q AS ({rows}), runs AS ({runs}), latest AS ({latest}) SELECT q.* FROM q LEFT JOIN runs r USING (run_id) "
        f"LEFT JOIN ({still}) s ON s.source = r.source AND s.quarantine_id = q.quarantine_id "
        f"LEFT JOIN ({unlisted}) u ON u.source = r.source AND u.whole_scope = r.whole_scope "
        f"LEFT JOIN ({last_listed}) l ON l.quarantine_id = q.quarantine_id "
        f"LEFT JOIN ({reread}) w ON w.quarantine_id = q.quarantine_id "
        f"WHERE CASE WHEN r.whole_scope IS NULL THEN NOT {written_since} ELSE {in_scope_still} END"
    )


def _readmits_in_force_sql() -> str:
    """SQL: the run ids ('curation:<entry_id>') of the steward's readmits still in force. A readmit applies to the
    read it was made on: while the source still gives its quarantine row's input as it was rejected
    (`still_quarantined_sql`), and the record is still the material that read was of: its formula and state in the
    latest write that read what the row's run did (`compared_sql`: of the row's scope, of the whole record; another
    lab file's write of the record is not that read); a readmit of an older matreg, which does not keep the formula
    (or the state), is of any. Once a later read of the record gives the value otherwise (valid, rejected otherwise,
    or not at all), or the record is another material (H2O(l) now H2O(g)), the readmit is stale: the views no longer
    show its rows."""
    readmits = current_rows_sql("curation_log", where="s.action = 'readmit'")
    rows = current_rows_sql("quarantine", where="s.quarantine_id IN (SELECT quarantine_id FROM readmits)")
    read_scope = "coalesce(q.scope, '')"  # (none in rows of older stores: any write)
    # the state a write states (`material_state`, as logged), never NULL: arg_max skips NULLs, and a write stating
    # none (a crystal) must not leave the state of an earlier write stating one
    state = f"CASE WHEN trim(m.phase) <> '' THEN m.phase ELSE '{CRYSTAL}' END"
    materials = (  # of each readmit, the formula and state of the latest write of its record its row's read compares
        f"SELECT r.entry_id, arg_max(m.formula, m.{COMMIT}) AS formula, arg_max({state}, m.{COMMIT}) AS state "
        f"FROM readmits r JOIN readmitted q USING (quarantine_id) JOIN {stored_sql('materials')} m "
        f"ON m.record_id = r.record_id AND {compared_sql('m.scope', read_scope)} GROUP BY r.entry_id"
    )
    # a state unknown is any: one not logged (an older matreg), or of no write found (a readmit of an older matreg
    # naming no record, which is of any formula too)
    same_material = "(r.formula IS NULL OR r.formula = f.formula) AND coalesce(r.phase = f.state, true)"
    return (
        f"WITH readmits AS ({readmits}), readmitted AS ({rows}) "
        f"SELECT '{CURATION_RUN_PREFIX}' || r.entry_id AS run_id FROM readmits r "
        f"LEFT JOIN ({materials}) f USING (entry_id) "
        f"WHERE r.quarantine_id IN (SELECT quarantine_id FROM ({still_quarantined_sql('SELECT * FROM readmitted')})) "
        f"AND {same_material}"
    )


def whole_scope_sql() -> str:
    """A fetch_runs row's `whole_scope`; for a lab import by a matreg older than the column, the scope it read, from
    its parameters as `LabConnector` names it: the name it was imported as, else the file's, and the sheet if not
    the first."""
    name = "coalesce(json_extract_string(parameters, '$.name'), json_extract_string(parameters, '$.file'))"
    first_sheet = "coalesce(json_extract(parameters, '$.mapping.sheet')::VARCHAR, '0') = '0'"  # the number 0, not '0'
    sheet = "json_extract_string(parameters, '$.mapping.sheet')"
    derived = f"CASE WHEN {first_sheet} THEN {name} ELSE {name} || '[' || {sheet} || ']' END"
    is_lab_import = "json_exists(parameters, '$.file') AND json_exists(parameters, '$.mapping')"
    return f"coalesce(whole_scope, CASE WHEN {is_lab_import} THEN {derived} END)"


def current_rows_sql(name: str, where: str = "true", with_scope: bool = False, in_scope: str | None = None) -> str:
    """Rows of a table as the store holds them now: each key's latest row (`latest_rows_sql`, `where` as there), and
    of a table whose rows belong to another's only rows still current: written with their owner's latest row of
    their write's scope when that row was written whole, unless a later whole write of another scope read them
    again (`reads_again_sql`: a JANAF fetch of all temperatures, or of 298.15 K only, reads again what the other
    wrote at 298.15 K; two lab files never read each other's), or by a curation entry that readmitted a value alone
    (one that readmitted a whole record counts as that record's write); a readmit's rows only while it is in force
    (`_readmits_in_force_sql`). A value its source no longer gives is so no longer shown; one that a write of another
    scope did not read stays. A key's latest row is taken among current
    rows: a file re-imported without a value leaves shown the value another file gives with that key. Rows of
    writes without a scope (stores written before scopes) follow their owner's latest write of any scope.
    `with_scope` adds each row's write scope as `write_scope` (NULL: none); `in_scope` (an SQL expression: a run's
    scope) keeps only rows of the writes that run compares its rows with (`compared_sql`), before each key's latest
    row is taken."""
    spec = table_spec(name)
    if spec.belongs_to is None:
        scoped = f" AND {compared_sql('s.scope', in_scope)}" if in_scope is not None else ""
        return latest_rows_sql(name, spec.primary_key, where + scoped)
    link = table_spec(spec.belongs_to).primary_key[0]
    writes = (  # every write of an owner row: which run, scope and part, whole or not (one row per commit file)
        f"SELECT {link}, run_id, scope AS write_scope, scope_temperature_K AS part, "
        f"coalesce(written_whole, false) AS whole, {COMMIT} "
        f"FROM {stored_sql(spec.belongs_to)} AS s WHERE {where}"
    )
    latest_write = (
        f"arg_max(run_id, {COMMIT}) AS owner_run, arg_max(whole, {COMMIT}) AS owner_whole, max({COMMIT}) AS owner_at"
    )
    rows = f"SELECT * FROM {stored_sql(name, positions=True)} AS s WHERE {where}"
    # the writes of other scopes that may read a row again: the latest of the whole record, of the part holding it
    readers = {"e": f"o AS e ON e.{link} = c.{link} AND e.write_scope = ''"}
    if PART_COLUMN in spec.columns:
        readers["p"] = f"parts AS p ON p.{link} = c.{link} AND p.part = c.{PART_COLUMN}"
    read_again = " OR ".join(
        f"coalesce({x}.owner_whole AND {x}.owner_at > o.owner_at "
        f"AND {reads_again_sql(name, 'c', 'w.write_scope', f'{x}.write_scope', f'{x}.part')}, false)"
        for x in readers
    )
    current = (  # in its write's scope, else (no scope) in its record
        "CASE WHEN w.write_scope IS NULL THEN r.owner_whole IS NOT TRUE OR r.owner_run = c.run_id "
        f"ELSE (o.owner_whole IS NOT TRUE OR o.owner_run = c.run_id) AND NOT ({read_again}) END"
    )
    key = spec.primary_key
    given_again = (  # readmitted rows whose key a later write of a source gave again: from then on history
        f"SELECT DISTINCT {', '.join(f'a.{k}' for k in key)}, a.{COMMIT} FROM ({rows}) AS a JOIN ({rows}) AS b ON "
        f"{equal(key, 'b', 'a')} AND b.{COMMIT} > a.{COMMIT} AND NOT starts_with(b.run_id, '{CURATION_RUN_PREFIX}') "
        f"WHERE starts_with(a.run_id, '{CURATION_RUN_PREFIX}')"
    )
    still_readmitted = f"NOT EXISTS (SELECT 1 FROM g WHERE g.{COMMIT} = c.{COMMIT} AND {equal(key, 'g', 'c')})"
    in_force = f"(NOT starts_with(c.run_id, '{CURATION_RUN_PREFIX}') OR c.run_id IN (SELECT run_id FROM f))"
    kept = f"({current} OR ({readmitted_alone(spec.belongs_to, link, 'c')} AND {still_readmitted})) AND {in_force}"
    if in_scope is not None:
        kept = f"({kept}) AND {compared_sql('w.write_scope', in_scope)}"
    return (
        f"WITH w_all AS ({writes}), w AS (SELECT DISTINCT {link}, run_id, write_scope FROM w_all), "
        f"o AS (SELECT {link}, write_scope, arg_max(part, {COMMIT}) AS part, {latest_write} "
        f"FROM w_all GROUP BY {link}, write_scope), "
        f"parts AS (SELECT {link}, part, arg_max(write_scope, {COMMIT}) AS write_scope, {latest_write} "
        f"FROM w_all WHERE part IS NOT NULL GROUP BY {link}, part), "
        f"r AS (SELECT {link}, {latest_write} FROM w_all GROUP BY {link}), g AS ({given_again}), "
        f"f AS ({_readmits_in_force_sql()}) "
        f"SELECT c.* EXCLUDE ({COMMIT}, file_row_number){', w.write_scope' if with_scope else ''} FROM ({rows}) AS c "
        f"LEFT JOIN w USING ({link}, run_id) LEFT JOIN o ON o.{link} = c.{link} AND o.write_scope = w.write_scope "
        f"LEFT JOIN r ON r.{link} = c.{link} {' '.join(f'LEFT JOIN {join}' for join in readers.values())} "
        f"WHERE {kept} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(f'c.{k}' for k in spec.primary_key)} "
        f"ORDER BY c.{COMMIT} DESC, c.file_row_number DESC) = 1"
    )


def compared_sql(written: str, scope: str) -> str:
    """SQL: a run of scope `scope` compares its rows with those of a write of scope `written`, to find them as stored:
    one of its own scope, of the whole record ('') or of none; any when it reads the whole record."""
    return f"({written} IS NULL OR {written} = '' OR {scope} IN ('', {written}))"


def reads_again_sql(name: str, row: str, written: str, reading: str, part: str) -> str:
    """SQL: a whole write of scope `reading` (its part: the record's values at the temperature `part`, when that is
    not NULL) reads again the row `row` of table `name` (whose rows belong to a record) that a write of scope
    `written` made, and so replaces it: a row of its own scope; of any scope when it reads the whole record ('');
    of the whole record when the row is in its part (a table without temperatures has no row in one). A lab file's
    write reads again only its own rows. (Rows of no scope, in stores written before scopes: callers decide.)"""
    in_part = f"{row}.{PART_COLUMN} = {part}" if PART_COLUMN in table_spec(name).columns else "false"
    return f"({reading} IN ('', {written}) OR ({written} = '' AND {in_part}))"


def readmitted_alone(owner: str, link: str, row: str) -> str:
    """SQL: the stored row aliased `row` is a value a curation entry readmitted alone (that entry wrote no row of
    `owner` of its record; one that readmitted a whole record wrote it as any run does)."""
    return (
        f"(starts_with({row}.run_id, '{CURATION_RUN_PREFIX}') AND NOT EXISTS (SELECT 1 FROM "
        f"{stored_sql(owner)} AS m WHERE starts_with(m.run_id, "
        f"'{CURATION_RUN_PREFIX}') AND m.{link} = {row}.{link} AND m.run_id = {row}.run_id))"
    )


def equal(columns: list[str], left: str = "s", right: str = "n") -> str:
    """SQL: the rows `left` and `right` (by default the stored row `s` and the run's row `n`) agree on these columns
    (NULL equals NULL)."""
    return " AND ".join(f"{left}.{column} IS NOT DISTINCT FROM {right}.{column}" for column in columns)


def aliased(alias: str, columns: Sequence[str]) -> str:
    """SQL naming these columns of the rows aliased `alias`: 'p.temperature_K, p.pressure_Pa'."""
    return ", ".join(f"{alias}.{column}" for column in columns)


def sql_text(path: Path) -> str:
    """A path as an SQL string literal (a quote in a folder's name doubled), where DuckDB takes no parameter."""
    return "'" + str(path).replace("'", "''") + "'"


def _files(name: str) -> str:
    """The Parquet files of one table in every commit folder, relative to the store directory."""
    return f"data/c*/{name}.parquet"


def stored_sql(name: str, positions: bool = False) -> str:
    """SQL (a subquery): the rows of table `name` in the commits of the query's snapshot (`_in_snapshot_sql`), each
    with its commit's number (COMMIT) and, with `positions`, its `file_row_number` (rows of one commit are in one
    file, in the order written). A compacted folder (`Store.compact`) holds the rows of every commit before it, each
    with its commit's number; the folders it covers, until they are removed, are left out as the DuckDB variable
    COMPACTED_THROUGH says (`Store._pin`: a variable, not a listing of the files in the query, which would keep
    DuckDB from pushing a query's filters down to the files). Where it is not set (a DuckDB client other than
    matreg that does not set it, or set it before the newest compaction), the covered folders still there (ten
    minutes after a compaction) are read too: their rows come once more for each compaction since, as equal rows of
    the same commit (each key's latest row is the same; history, `material_writes`, shows them again)."""
    columns = "filename = true, file_row_number = true" if positions else "filename = true"
    number = r"TRY_CAST(regexp_extract(filename, '[/\\]c(\d+)[/\\][^/\\]+$', 1) AS BIGINT)"
    shown = f"{number} >= coalesce(getvariable('{COMPACTED_THROUGH}'), -1)"  # the compacted folder or a later one
    rows = (
        f"SELECT * EXCLUDE (filename) REPLACE (coalesce({COMMIT}, {number}) AS {COMMIT}) "
        f"FROM read_parquet('{_files(name)}', {columns}, union_by_name = true) WHERE {shown}"
    )
    return f"(SELECT * FROM ({rows}) WHERE {_in_snapshot_sql()})"


def _in_snapshot_sql() -> str:
    """SQL: the row is of a commit of the query's snapshot: numbered at most the DuckDB variable SNAPSHOT
    (`Store._pin`); of any commit when the variable is not set. DuckDB lists each table's files anew, so without it
    one query may see a commit in one table's files and not yet in another's."""
    return f"(getvariable('{SNAPSHOT}') IS NULL OR {COMMIT} <= getvariable('{SNAPSHOT}'))"


def latest_rows_sql(name: str, key: list[str], where: str = "true") -> str:
    """Rows of every commit of a table, keeping for each key the last row of the newest commit.

    `where` (SQL on the stored row `s`) selects whole keys first, e.g. only the keys of a run: the window then
    ranks only their rows instead of the whole table's.
    """
    return (
        f"SELECT * EXCLUDE ({COMMIT}, file_row_number) FROM {stored_sql(name, positions=True)} AS s WHERE {where} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY {COMMIT} DESC, file_row_number DESC) = 1"
    )


def _wide_view_sql() -> str:
    """One row per record, provenance, method and conditions (each value's own: two files may say of one record a
    measured and a computed value); one column per vocabulary property (canonical units; a molar value per mole of
    `formula_original`, which the reduced `formula` may halve: N2O4 is NO2), each followed by its values'
    uncertainties (`wide_column`: 'band_gap_uncertainty'; empty where none is stated)."""

    def of(name: str, column: str) -> str:
        return f"max(p.{column}) FILTER (WHERE p.property = '{name}')"

    columns = ",\n  ".join(
        f"{of(name, 'value')} AS {name}, {of(name, UNCERTAINTY)} AS {wide_column(name, UNCERTAINTY)}"
        for name in load_vocabulary().root
    )
    key = f"{aliased('m', _WIDE_RECORD)}, {aliased('p', _wide_values())}"
    return f"SELECT {key},\n  {columns}\nFROM materials m JOIN properties p USING (record_id)\nGROUP BY {key}"
