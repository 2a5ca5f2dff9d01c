"""Which staged run a --resume continues, why a resume is refused, and what `matreg status` advises of an interrupted
run.

A run is resumed only with its source, parameters and endpoint (`_of_query`, `_latest_interrupted`), by a process
that claims it, and only where its pages left would be mapped as its committed pages were (`fetch_runs.mapped_with`:
`_refuse_remapped`). Where there is nothing to resume, the error says why and names the interrupted runs of the same
source with what continues or drops each; `matreg status` says the same of every interrupted run (`resume_refused`,
`resume_base_url`), and `matreg drop` drops one (`drop_interrupted`). The `matreg drop` each prints gives the --store
the command printing it was given (`store_given`: `drop_command`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matreg.catalog import Catalog
from matreg.errors import ConfigError, MatregError, StoreError, UnknownName, listed
from matreg.fieldmap import FieldMap, catalog_mapping, field_map_file
from matreg.http import public_url
from matreg.runs import (
    LIMIT_KEY,
    RunReport,
    new_run_id,
    parameters_json,
    report_from_row,
    run_info,
    run_options,
    run_selection,
)
from matreg.schema import provenances
from matreg.sources import base_url_now
from matreg.sources.base import Attribution, Connector, RunInfo
from matreg.store import Store


def run_to_resume(connector: Connector, store: Store, limit: int | None = None) -> dict[str, Any] | None:
    """The last staged fetch_runs row of the interrupted run that a resume of this fetch (`run_ingest` with `limit`
    and `resume`) would continue: what a fetch stopped by an interruption or by its failing source left, to be named
    in its error; None where there is none (no page committed)."""
    info = run_info(connector, limit)
    return _latest_interrupted(store, info, _of_query(connector, info, store.staged_runs()))


class NothingToResume(StoreError):
    """A run asked to resume has no interrupted run of its source, parameters and endpoint to continue."""


def drop_command(run_id: str, store_given: str) -> str:
    """The `matreg drop` of a run, with `store_given`, the --store the command printing it was given ('' where it is
    the default: `cli._where_given`)."""
    return " ".join(word for word in ("matreg drop", shlex.quote(run_id), store_given) if word)


def started_or_resumed(
    connector: Connector, store: Store, info: RunInfo, resume: bool, resume_or_start: bool, store_given: str
) -> RunReport:
    """The staged run with the same source, parameters and endpoint when resuming (`resume`; `resume_or_start` where
    there is one), else a fresh run (dropping the interrupted runs of the same query, wherever they read). Where there
    is none to resume, or it is refused, the error's `matreg drop`s give `store_given` (`drop_command`).

    Runs another process is still writing are neither resumed nor dropped; the run chosen is claimed for this one.
    What killed writers left is removed first (`Store.remove_leftovers`).
    """
    store.remove_leftovers()
    not_resumed = None
    if resume or resume_or_start:
        try:
            return _resumed(connector, store, info, resume_or_start, store_given)
        except NothingToResume as exc:
            if not resume_or_start:
                raise
            not_resumed = str(exc)
    of_query = _of_query(connector, info, store.staged_runs())
    dropped = [run_id for run_id in of_query if store.drop_unless_running(run_id)]
    source = connector.attribution.source
    started = _started_instead(not_resumed, dropped) if not_resumed else None
    report = RunReport(new_run_id(source), source, datetime.now(UTC), not_resumed=started)
    report.dropped = [
        f"{run_id} ({of_query[run_id]['n_fetched']} read at {of_query[run_id]['endpoint']})" for run_id in dropped
    ]
    report.mapped_with = _mapped_with(connector)
    store.claim_run(report.run_id)
    return report


def note_dropped(exc: BaseException, report: RunReport) -> None:
    """Note on the error or interruption that stopped a fresh run (`BaseException.add_note`: `matreg fetch` says it
    with what the run committed) the interrupted runs of its query it dropped as it started, if any: stopped before
    its first commit, it leaves neither its pages nor theirs."""
    if dropped := dropped_as_started(report):
        exc.add_note(dropped)


def dropped_as_started(report: RunReport) -> str | None:
    """The interrupted runs of its query that a fresh run dropped as it started, in words (None: none): `matreg fetch`
    says them once the run is published, and with the error or interruption that stopped it (`note_dropped`)."""
    if not report.dropped:
        return None
    runs = "run" if len(report.dropped) == 1 else "runs"
    return f"as it started, this fetch dropped the interrupted {runs} of the same query: " + ", ".join(report.dropped)


def _started_instead(not_resumed: str, dropped: list[str]) -> str:
    """Why a run asked to resume or start started afresh, and the interrupted runs of its query it dropped (read at
    another server: one read at its own would have been resumed)."""
    if not dropped:
        return f"{not_resumed}: started a fresh fetch"
    runs = ", ".join(dropped)
    return f"{not_resumed}: started a fresh fetch, which dropped the interrupted run {runs} read at another server"


def _resumed(connector: Connector, store: Store, info: RunInfo, resume_or_start: bool, store_given: str) -> RunReport:
    """The interrupted run of this source, parameters and endpoint, claimed for this process, as staged;
    NothingToResume if there is none (a fresh fetch of the same query may drop it until it is claimed, and another
    process may claim it first: it is then still running there, as a look a moment later would find it); ConfigError
    where its pages were mapped otherwise (`_refuse_remapped`)."""
    interrupted = _interrupted_run(connector, store, info, resume_or_start, store_given)
    run_id = interrupted["run_id"]
    try:
        store.claim_run(run_id)
    except StoreError:
        raise NothingToResume(
            f"nothing to resume: run {run_id} is still running in another process, which claimed it meanwhile"
        ) from None
    row = store.staged_runs().get(run_id)  # read again once claimed: a fresh fetch may have dropped it meanwhile
    if row is None:
        store.release_run(run_id)
        raise NothingToResume(f"nothing to resume: run {run_id} was dropped by a fresh fetch of the same query")
    report = report_from_row(row)
    report.reasons = store.staged_reasons(run_id)  # the reasons of the pages committed before the interruption
    return report


def dry_resumed(
    connector: Connector, store: Store, info: RunInfo, resume_or_start: bool, store_given: str
) -> RunReport | None:
    """The interrupted run a resume would continue, for a dry run; None where there is none and `resume_or_start`
    (a fresh run's dry run), NothingToResume otherwise; ConfigError where a resume would refuse it
    (`_refuse_remapped`). The error's `matreg drop`s give `store_given` (`drop_command`)."""
    try:
        interrupted = _interrupted_run(connector, store, info, resume_or_start, store_given)
    except NothingToResume:
        if not resume_or_start:
            raise
        return None
    return report_from_row(interrupted)


def _mapped_with(connector: Connector) -> str:
    """What a run's rows are mapped with (`fetch_runs.mapped_with`), as canonical JSON: the attribution its source's
    catalog entry gives every row, and the sha256 of its field map as loaded (None without one: a lab file's). Asked
    before a page is read (the Materials Project's database version is then its catalog entry's)."""
    return _mapping_json(connector.attribution, connector.field_map)


def _mapping_json(attribution: Attribution, field_map: FieldMap | None) -> str:
    """`fetch_runs.mapped_with` of rows mapped with this attribution and field map (`_mapped_with`)."""
    digest = None if field_map is None else _digest(field_map)
    return json.dumps({"attribution": dataclasses.asdict(attribution), "field_map": digest}, sort_keys=True)


def _digest(field_map: FieldMap) -> str:
    """The sha256 of a field map as loaded (`fetch_runs.mapped_with`'s `field_map`)."""
    return hashlib.sha256(json.dumps(field_map.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _same_field_map(digest: str | None, field_map: FieldMap | None) -> bool:
    """Whether pages whose field map's digest is `digest` were mapped with `field_map`: the same map, or one differing
    in its map-level provenance alone, which decides nothing (optimade.yaml named one until matreg warned of it: a
    run staged before is resumed)."""
    if field_map is None or digest is None:
        return digest is None and field_map is None
    candidates = {field_map.provenance, None, *provenances()}
    return digest in {_digest(field_map.model_copy(update={"provenance": provenance})) for provenance in candidates}


def _refuse_remapped(
    connector: Connector, interrupted: dict[str, Any], resume_or_start: bool, store_given: str
) -> None:
    """ConfigError where the pages the interrupted run committed were mapped with another attribution (its source's
    catalog entry) or field map than the run's pages would be now (`_mapped_with`): resumed, the run would publish
    rows mapped both ways. Saying what changed, and what to do (its `matreg drop` giving `store_given`). A run an
    older matreg staged, which recorded none, is resumed as before."""
    if interrupted.get("mapped_with") is None:
        return
    where = field_map_file(connector.field_map.source) if connector.field_map else None
    changed = _mapping_changes(interrupted["mapped_with"], _mapped_with(connector), connector.field_map, where)
    if not changed:
        return
    run_id = interrupted["run_id"]
    scheduled = (
        "; --resume-or-start neither resumes nor drops it: a scheduled fetch would mix the two or silently drop what "
        "was read"
        if resume_or_start
        else ""
    )
    mixed = "its pages left would be mapped otherwise than those, and the run published with rows of both"
    dropped = f"`{drop_command(run_id, store_given)}` and fetch again"
    raise ConfigError(_changed_since(changed, f"run {run_id}", mixed, dropped) + scheduled)


def _changed_since(changed: list[str], run: str, refused: str, dropped: str) -> str:
    """What changed of what a staged run's pages were mapped with (`changed`: `_mapping_changes`) since `run`
    committed them, what follows (`refused`), and the two ways on: restore it (them), or drop the run (`dropped`)."""
    them = "them" if len(changed) > 1 else "it"
    return (
        f"{' and '.join(changed)} changed since {run} committed its pages: {refused}; restore {them} to resume the "
        f"run, or {dropped}"
    )


def _mapping_changes(
    before: str, now: str, field_map: FieldMap | None, field_map_file: Path | None, catalog_file: Path | None = None
) -> list[str]:
    """What changed, in words, from what a staged run's pages were mapped with (`before`: `fetch_runs.mapped_with`)
    to what its pages left would be mapped with (`now`, with `field_map`): the keys of its source's catalog entry (in
    `catalog_file`, where named) that differ, and its field map (read from `field_map_file`: `_same_field_map`)."""
    before_json, now_json = json.loads(before), json.loads(now)
    source = now_json["attribution"]["source"]
    keys = [key for key, value in now_json["attribution"].items() if before_json["attribution"].get(key) != value]
    in_file = f" in {catalog_file}" if catalog_file else ""
    changed = [f"the catalog entry of '{source}'{in_file} ({', '.join(keys)})"] if keys else []
    if not _same_field_map(before_json["field_map"], field_map):
        whose = "its field map" if changed else f"the field map of '{source}'"
        changed.append(f"{whose} ({field_map_file})")
    return changed


def resume_refused(row: dict[str, Any], catalog: Catalog | None, store_given: str) -> str | None:
    """Why a --resume of a staged fetch (its last row: `Store.staged_runs`) would be refused now (`_refuse_remapped`),
    and what to do (its `matreg drop` giving `store_given`: `drop_command`), in words: its source's catalog entry in
    `catalog`, or its field map as read here, changed since
    the run committed its pages (`_mapping_changes`); None where neither did, where the run recorded neither (an
    older matreg's), or where that is not known (no catalog, or none of its source). Its pages left would be mapped
    as a connector of the source maps them (`catalog_mapping`), with the run's own part of each record (its scope)."""
    if catalog is None or row.get("mapped_with") is None:
        return None
    try:
        source = catalog.source(row["source"])
        field_map, attribution = catalog_mapping(source.connector, row["source"], source)
    except MatregError:
        return None
    before = json.loads(row["mapped_with"])["attribution"]  # (JANAF's temperature: as the run's request made it)
    scope = {"scope": before.get("scope", ""), "scope_temperature_K": before.get("scope_temperature_K")}
    now = _mapping_json(dataclasses.replace(attribution, **scope), field_map)
    changed = _mapping_changes(row["mapped_with"], now, field_map, field_map_file(source.connector), catalog.file)
    if not changed:
        return None
    return _changed_since(changed, "it", "--resume refuses it", f"{drop_command(row['run_id'], store_given)} drops it")


def _interrupted_run(
    connector: Connector, store: Store, info: RunInfo, resume_or_start: bool, store_given: str
) -> dict[str, Any]:
    """The last staged row of the latest interrupted run of this source, parameters and endpoint; NothingToResume if
    none (its cursor may name the endpoint's own next page: a run is resumed only where it was read). ConfigError
    where its pages were mapped otherwise than its pages left would be (`_refuse_remapped`), or, where there is none,
    those of the run that this same fetch started (`_of_this_fetch`: a field map asks the source for other fields).
    Each error's `matreg drop` gives `store_given` (`drop_command`)."""
    staged = store.staged_runs()
    of_query = _of_query(connector, info, staged)
    if interrupted := _latest_interrupted(store, info, of_query):
        _refuse_remapped(connector, interrupted, resume_or_start, store_given)
        return interrupted
    if started := _of_this_fetch(connector, store, info, staged):
        _refuse_remapped(connector, started, resume_or_start, store_given)
    source = connector.attribution.source
    if any(row["endpoint"] == info.endpoint for row in of_query.values()):
        why = " (one is still running in another process)"
    elif of_query:
        run_id = max(of_query)
        why = f" at {info.endpoint} ({_read_elsewhere(run_id, of_query[run_id], store_given)})"
    else:
        raise NothingToResume(_none_of_these_parameters(connector, store, info, staged, store_given))
    raise NothingToResume(f"nothing to resume: no interrupted run of '{source}' with these parameters{why}")


def _of_this_fetch(connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict]) -> dict[str, Any] | None:
    """The last row of the latest interrupted run, not one of these parameters, that this same fetch started: the same
    source, selection as typed (`fetch_runs.arguments`), options and endpoint; its parameters then differ by what
    changed in between (the fields a field map asks OQMD or the Materials Project for). None where there is none."""
    if connector.arguments is None:  # (a connector `matreg fetch` did not build)
        return None
    options, source = run_options(connector, info), connector.attribution.source
    started = [
        run_id
        for run_id, row in staged.items()
        if (row["source"], row.get("arguments"), row.get("options"), row["endpoint"])
        == (source, connector.arguments, options, info.endpoint)
        and not store.is_running(run_id)
    ]
    return staged[max(started)] if started else None


def _read_elsewhere(run_id: str, row: dict[str, Any], store_given: str) -> str:
    """Where an interrupted run of the same query as a resume was read (another endpoint), with the --base-url that
    continues it (`fetch_runs.base_url`: the run's, not the endpoint its connector derived) and how to drop it
    (`drop_command`, given `store_given`)."""
    base_url = row.get("base_url")  # (none in a run staged by an older matreg)
    give = f"give --base-url {shlex.quote(base_url)}" if base_url else "give the --base-url it was read at"
    dropped = drop_command(run_id, store_given)
    return f"run {run_id} read {row['endpoint']}: {give} with --resume to continue it, or drop it: {dropped}"


def resume_base_url(row: dict[str, Any], catalog: Catalog | None) -> str | None:
    """The --base-url option that a resume of a staged fetch (its last row: `Store.staged_runs`) gives besides its
    options (`fetch_runs.options`, which name none), where the base URL it read (`fetch_runs.base_url`) is not the one
    a fetch reads without it now (`sources.base_url_now`, of `catalog`); None where it needs none, or where that is
    not known (no catalog, or none of the run's source)."""
    try:
        now = base_url_now(catalog, row["source"]) if catalog is not None else None
    except MatregError:
        return None
    return _base_url_option(row, now)


def _base_url_option(row: dict[str, Any], current_base_url: str | None) -> str | None:
    """--base-url with the base URL a staged fetch read (`fetch_runs.base_url`), where its options
    (`fetch_runs.options`) name none and a fetch without --base-url reads another now (`current_base_url`; None
    where that is not known)."""
    read = row.get("base_url")  # (none in a run staged by an older matreg)
    if current_base_url is None or read is None or "--base-url" in (row.get("options") or "").split():
        return None
    return None if public_url(current_base_url) == read else f"--base-url {shlex.quote(read)}"


def _latest_interrupted(store: Store, info: RunInfo, of_query: dict[str, dict]) -> dict[str, Any] | None:
    """Of the staged runs of a query (`_of_query`), the last row of the latest one read at `info`'s endpoint that no
    process is writing; None where there is none."""
    here = [run_id for run_id, row in of_query.items() if row["endpoint"] == info.endpoint]
    interrupted = [run_id for run_id in here if not store.is_running(run_id)]
    return of_query[max(interrupted)] if interrupted else None


def _none_of_these_parameters(
    connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict], store_given: str
) -> str:
    """Why no staged run has the parameters of a run asked to resume: its last run was published, or none committed a
    page; then the interrupted runs of its selection read with other options, else those of its source's other
    selections, and how to resume or drop each (`_interrupted_listed`, given `store_given`)."""
    source = connector.attribution.source
    otherwise = _interrupted_listed(connector, store, info, staged, store_given, same_selection=True)
    if published := _published_last(store, info, source):
        return (
            f"nothing to resume: the last run of '{source}' with these parameters at {info.endpoint}, {published}, "
            f"was published: what it read is stored (a fetch without --resume reads the source again){otherwise}"
        )
    if otherwise:
        why = ""
    elif others := _interrupted_listed(connector, store, info, staged, store_given, same_selection=False):
        why = others
    elif not any(row["source"] == source for row in staged.values()):
        why = " (a run is resumable once it has committed pages, every --commit-every records: fetch without --resume)"
    else:
        why = ""
    return f"nothing to resume: no interrupted run of '{source}' with these parameters{why}{otherwise}"


_RUNS_LISTED = 3  # the interrupted runs a resume's error names, each with what continues it; then 'and N more'


def _interrupted_listed(
    connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict], store_given: str, same_selection: bool
) -> str:
    """The interrupted runs of `info`'s source and selection (whatever their --limit) read with other options (page
    size, --limit, server), or with `same_selection` False those of its other selections: the first _RUNS_LISTED,
    each with what continues it (`_resumed_with`) and the command that drops it (`drop_command`, given `store_given`),
    then how many more; '' if none."""
    selection, source = run_selection(parameters_json(info), (LIMIT_KEY,)), connector.attribution.source
    run_ids = sorted(
        run_id
        for run_id, row in staged.items()
        if row["source"] == source
        and (run_selection(row["parameters"], (LIMIT_KEY,)) == selection) == same_selection
        and not store.is_running(run_id)
    )
    if not run_ids:
        return ""
    runs = [_continued_or_dropped(run_id, staged[run_id], connector, store_given, same_selection) for run_id in run_ids]
    shown = listed(runs, _RUNS_LISTED, "; ")
    if same_selection:
        were = (
            "an interrupted run of this selection was" if len(runs) == 1 else "interrupted runs of this selection were"
        )
        return f"; {were} read with other options: {shown}"
    have = f"an interrupted run of '{source}' has" if len(runs) == 1 else f"interrupted runs of '{source}' have"
    return f"; {have} another selection: {shown}"


def _continued_or_dropped(
    run_id: str, row: dict[str, Any], connector: Connector, store_given: str, same_selection: bool
) -> str:
    """A staged run's id and how much it read, with its query in words where its selection is another and was not
    recorded as typed (`fetch_runs.arguments`: a run of an older matreg); what continues it; what drops it
    (`drop_command`, given `store_given`)."""
    query = "" if same_selection or row.get("arguments") is not None else f"{row['query']}; "
    continued = _resumed_with(row, connector.base_url_read, selection_too=not same_selection)
    return f"{run_id} ({query}{row['n_fetched']} read): {continued}, or drop it: {drop_command(run_id, store_given)}"


def _resumed_with(row: dict[str, Any], current_base_url: str | None, selection_too: bool) -> str:
    """What continues a staged fetch with --resume: the options it was read with (`fetch_runs.options`, None where an
    older matreg ran it), with the base URL it read where that is not `current_base_url` (`_base_url_option`), and with
    `selection_too` its selection: as typed (`fetch_runs.arguments`), else 'that selection'."""
    options, typed = row.get("options"), row.get("arguments")
    if options is None:
        selection = "that selection and " if selection_too else ""
        return f"give {selection}the --page-size, --limit and --base-url it was read with, and --resume, to continue it"
    options = " ".join(option for option in (options, _base_url_option(row, current_base_url)) if option)
    if selection_too:
        given = f"{typed} {options}".strip() if typed else " and ".join(filter(None, ("that selection", options)))
        return f"give {given} with --resume to continue it"
    if not options:
        return "give --resume without --page-size, --limit or --base-url to continue it"
    return f"give {options} with --resume to continue it"


def drop_interrupted(store: Store, run_id: str) -> dict[str, Any]:
    """Drop an interrupted run (`matreg drop`): its staged pages deleted (`Store.drop_unless_running`); its last
    staged fetch_runs row. UnknownName where the store has no such run staged, StoreError where another process
    writes it."""
    row = store.staged_runs().get(run_id)
    if row is None:
        raise UnknownName(f"no interrupted run {run_id} in the store")
    if not store.drop_unless_running(run_id):
        raise StoreError(f"run {run_id} is being written by another process (it is not interrupted): not dropped")
    return row


def _published_last(store: Store, info: RunInfo, source: str) -> str | None:
    """The id of the last run of this source, parameters and endpoint if it was published (a run stopped between
    publishing and removing its journal too), else None."""
    if not store.exists():
        return None
    last = store.read(
        "SELECT run_id, status FROM fetch_runs WHERE source = ? AND parameters = ? AND endpoint = ? "
        "ORDER BY started_at DESC, finished_at DESC LIMIT 1",
        [source, parameters_json(info), info.endpoint],
    )
    return last["run_id"].iloc[0] if len(last) and last["status"].iloc[0] == "complete" else None


def _of_query(connector: Connector, info: RunInfo, staged: dict[str, dict]) -> dict[str, dict]:
    """Of the staged runs, those of this source and parameters (at any endpoint), by run id."""
    parameters = parameters_json(info)
    return {
        run_id: row
        for run_id, row in staged.items()
        if row["source"] == connector.attribution.source and row["parameters"] == parameters
    }
