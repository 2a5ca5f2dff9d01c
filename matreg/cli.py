"""The `matreg` command line: parses arguments, calls the library, prints. It checks what only the command line takes
(an export's --format against its --out, options of another format) and words what the library returns (counts, the
run a failed fetch left, what to run next); what a run, the store or a dataset decides is the library's.

Each command loads the library modules it calls (see `cli_options`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from matreg import __version__
from matreg.cli_ml import predict_command, train_command
from matreg.cli_options import (
    SHOWN,
    CatalogOpt,
    Commands,
    FormatOpt,
    ProgressOpt,
    StoreOpt,
    echo_stderr,
    exit_interrupted,
    open_store,
    progress_shown,
    read_catalog,
    reports_errors,
    show_library_warnings,
    stop_on_sigterm,
)
from matreg.cli_steward import (
    conflicts_command,
    diff_command,
    echo_decisions_to_redo,
    echo_unmatched_decisions,
    history_command,
    release_command,
    review_app,
)
from matreg.defaults import COMMIT_RECORDS, COMPACT_AFTER, DEFAULT_STORE, EXPORT_FORMATS, LAYOUTS, check_export_format
from matreg.errors import (
    ConfigError,
    DroppedFields,
    MatregError,
    NoSpace,
    SourceError,
    StoreError,
    clipped,
    listed,
    utf8_path,
)

if TYPE_CHECKING:
    import pandas as pd

    from matreg.catalog import Catalog
    from matreg.runs import RunReport
    from matreg.sources.base import Connector
    from matreg.store import Removed, Store

app = typer.Typer(
    help="matreg: materials-data ETL and curated dataset registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Commands,
)


_SELECT, _RUN, _CACHE = "What to fetch", "How to fetch", "HTTP cache"  # `fetch --help`'s panels of options


@app.command()
@reports_errors
def fetch(
    source: Annotated[str, typer.Argument(help="Source name from the catalog (e.g. janaf).")],
    ids: Annotated[
        list[str] | None, typer.Argument(help="Source record ids (e.g. JANAF table ids H-064 C-095).")
    ] = None,
    formula: Annotated[
        list[str] | None,
        typer.Option("--formula", "-f", help="Records of this formula (repeatable).", rich_help_panel=_SELECT),
    ] = None,
    elements: Annotated[
        list[str] | None,
        typer.Option(
            "--elements", "-e", help="Records made of exactly these elements (repeatable).", rich_help_panel=_SELECT
        ),
    ] = None,
    native_filter: Annotated[
        str | None,
        typer.Option(
            "--filter", help="A filter in the source's own query language, passed through.", rich_help_panel=_SELECT
        ),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every record the source lists.", rich_help_panel=_SELECT)
    ] = False,
    structures: Annotated[
        bool,
        typer.Option(
            "--structures",
            help="AFLOW: also each entry's structure, a request each (the other sources' pages carry structures).",
            rich_help_panel=_SELECT,
        ),
    ] = False,
    all_temperatures: Annotated[
        bool,
        typer.Option(
            "--all-temperatures", help="JANAF: every temperature row, not only 298.15 K.", rich_help_panel=_SELECT
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after this many records.", rich_help_panel=_SELECT)
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Override the catalog's base URL (a mirror, a local server, file://).",
            rich_help_panel=_RUN,
        ),
    ] = None,
    page_size: Annotated[
        int | None, typer.Option("--page-size", min=1, help="Records per page (per request).", rich_help_panel=_RUN)
    ] = None,
    commit_every: Annotated[
        int,
        typer.Option(
            "--commit-every",
            min=1,
            help="Commit the pages read once N records (or 10 s) went by since the last commit: what a kill loses.",
            rich_help_panel=_RUN,
        ),
    ] = COMMIT_RECORDS,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the first request and the total; map the first page; write nothing.",
            rich_help_panel=_RUN,
        ),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run of this same query.", rich_help_panel=_RUN)
    ] = False,
    resume_or_start: Annotated[
        bool,
        typer.Option(
            "--resume-or-start",
            help="Continue the interrupted run of this same query if there is one, else start a fresh fetch (one "
            "command for cron and requeued jobs); stderr says which it did.",
            rich_help_panel=_RUN,
        ),
    ] = False,
    allow_dropped_fields: Annotated[
        bool,
        typer.Option(
            "--allow-dropped-fields",
            help="Publish a run that removes stored values of mapped fields none of its records carried (the source "
            "dropped them); without it such a run is refused, exit 1, and stays staged (give it with --resume).",
            rich_help_panel=_RUN,
        ),
    ] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache",
            help="Keep HTTP answers in the store, each for the catalog's http.cache_expire_after_s (default a day) "
            "from when it was saved (default: the catalog's http.cache).",
            rich_help_panel=_CACHE,
        ),
    ] = None,
    refresh_cache: Annotated[
        bool,
        typer.Option(
            "--refresh-cache",
            help="Ask the source for every page again: its answers replace the cached (those an older matreg kept "
            "with no expiry too).",
            rich_help_panel=_CACHE,
        ),
    ] = False,
    store: StoreOpt = DEFAULT_STORE,
    catalog: CatalogOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Fetch records from a source into the store (one atomic, idempotent run)."""
    from matreg.ingest import run_ingest, tune_gc_for_fetch
    from matreg.resume import dropped_as_started
    from matreg.sources import FetchRequest, build_connector

    if resume and resume_or_start:
        raise ConfigError(
            "--resume and --resume-or-start: give one (--resume fails where there is nothing to resume; "
            "--resume-or-start then starts a fresh fetch)"
        )
    target = open_store(store)
    request = FetchRequest(
        ids=ids or [],
        formulas=formula or [],
        elements=elements or [],
        filter=native_filter,
        everything=everything,
        all_temperatures=all_temperatures,
        base_url=base_url,
        cache=cache,
        refresh_cache=refresh_cache,
        page_size=page_size,
        structures=structures,
        limit=limit,
    )
    cache_path = None if dry_run else target.cache_path  # a dry run writes nothing, no cache either
    connector = build_connector(source, read_catalog(catalog), request, cache_path=cache_path)
    show = progress_shown(progress)
    tune_gc_for_fetch()
    resuming = "--resume" if resume else "--resume-or-start" if resume_or_start else None
    where = _where_given(store, catalog)
    try:
        report = run_ingest(
            connector,
            target,
            limit=limit,
            dry_run=dry_run,
            progress=show,
            resume=resume,
            resume_or_start=resume_or_start,
            commit_every=commit_every,
            pause_gc=True,  # with `tune_gc_for_fetch`: the process is this fetch's
            allow_dropped_fields=allow_dropped_fields,
            store_given=_where_given(store, None),  # (`matreg drop` takes no catalog)
        )
    except KeyboardInterrupt as exc:
        exit_interrupted(
            "a dry run writes nothing" if dry_run else _committed(target, connector, limit, resuming, where, exc)
        )
    except (SourceError, NoSpace) as exc:  # the source failed, or the disk is full: what was read is committed
        if dry_run:
            raise
        left = _committed(target, connector, limit, resuming, where, exc)
        raise type(exc)(f"{exc}; {left}") from None  # (of its kind: its exit code)
    except DroppedFields as exc:  # not published: the command that publishes it as it is, and the runs it dropped
        from matreg.resume import run_to_resume

        left = run_to_resume(connector, target, limit)
        said = f"{exc}: {_resume_command(left, where)} --allow-dropped-fields" if left else str(exc)
        raise DroppedFields("; ".join([said, *getattr(exc, "__notes__", ())])) from None
    if resume_or_start and not dry_run:
        _echo_resumed_or_started(report)  # (with the runs it dropped, read at another server)
    elif dropped := dropped_as_started(report):
        echo_stderr(dropped)
    _finish(report, target, limit)


def _echo_resumed_or_started(report: RunReport) -> None:
    """Say on stderr what a fetch asked to resume or start did: the run it resumed, or why it started a fresh one."""
    if report.resumed:
        echo_stderr(f"resumed the interrupted run {report.run_id} (--resume-or-start)")
    else:
        echo_stderr(f"{report.not_resumed} (--resume-or-start)")


def _committed(
    store: Store, connector: Connector, limit: int | None, resuming: str | None, where: str, stopped: BaseException
) -> str:
    """What an interrupted fetch, or one its source failed, left (`_run_left`), and the interrupted runs of its query
    it dropped as it started (what `run_ingest` noted on what `stopped` it)."""
    return "; ".join([_run_left(store, connector, limit, resuming, where), *getattr(stopped, "__notes__", ())])


def _run_left(store: Store, connector: Connector, limit: int | None, resuming: str | None, where: str) -> str:
    """The run a resume of an interrupted or failed fetch continues (`run_to_resume`), how much it read, and the
    command that continues it: the same one where it was given the option that resumes (`resuming`), else with
    --resume (and `where`: the --store and --catalog the fetch was given, `_where_given`)."""
    from matreg.resume import run_to_resume

    left = run_to_resume(connector, store, limit)
    if left is None:
        return "no page was committed, there is nothing to resume"
    committed = f"run {left['run_id']} committed {left['n_fetched']} records read (staged, not published)"
    if resuming:
        return f"{committed}; the same command, with its {resuming}, continues it"
    return f"{committed}; the same command with --resume continues it: {_resume_command(left, where)}"


def _resume_command(row: dict, where: str) -> str:
    """The command that continues a staged fetch at the base URL it read, in the store and with the catalog
    `where` names (`_where_given`): `matreg fetch`, its source, its selection as typed (`fetch_runs.arguments`), the
    options it was read with (`_resume_options`) and --resume."""
    options = _resume_options(row, None, where)
    words = ["matreg fetch", shlex.quote(row["source"]), row.get("arguments"), options, "--resume"]
    return " ".join(word for word in words if word)


def _where_given(store: Path, catalog: Path | None) -> str:
    """The --store and --catalog a printed command gives, as a command was given them (by option or environment
    variable), each where it is not the default, quoted for a shell: '' where both are the defaults."""
    given = [("--store", None if store == DEFAULT_STORE else store), ("--catalog", catalog)]
    return " ".join(f"{option} {shlex.quote(str(path))}" for option, path in given if path is not None)


@app.command("import")
@reports_errors(interrupted="the import stored nothing; importing the file again reads it whole")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="Lab data file: .csv, .tsv, .txt (tab-separated, as Excel's Unicode Text), each also compressed "
            "(data.csv.gz, .bz2, .xz, .zst, .zip); .xlsx, .xls, .json; or a .zip archive holding one .csv, .tsv or "
            ".txt file. Text in UTF-8, or in UTF-16 or UTF-32 with a byte order mark."
        ),
    ],
    mapping: Annotated[
        Path,
        typer.Option(
            "--mapping", "-m", help="mapping.yaml: formula column, property columns and units, provenance, citation."
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="The file's name in the store (default: its file name): a later import under this name replaces "
            "what this one says. Give two files of one name from different folders different names.",
        ),
    ] = None,
    moved_from: Annotated[
        Path | None,
        typer.Option(
            "--moved-from",
            help="Where the file was imported from before it moved (nothing left there): the import also withdraws "
            "the records last written from there that the file no longer gives (rows deleted as it moved).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report, write nothing.")] = False,
    store: StoreOpt = DEFAULT_STORE,
    catalog: CatalogOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Import a lab dataset (its name no catalog source's); bad rows go to quarantine with the reason."""
    from matreg.catalog import default_catalog_path
    from matreg.ingest import run_ingest, tune_gc_for_fetch
    from matreg.sources.lab import LabConnector, load_mapping
    from matreg.store import refuse_long_names

    refuse_long_names(file, f"cannot read {file}")  # (the OS's error names neither the name nor the limit)
    connector = LabConnector(file, load_mapping(mapping, catalog or default_catalog_path()), name=name)
    show = progress_shown(progress)
    tune_gc_for_fetch()
    target = open_store(store)
    report = run_ingest(connector, target, dry_run=dry_run, progress=show, pause_gc=True, moved_from=moved_from)
    _finish(report, target)


def _finish(report: RunReport, store: Store, limit: int | None = None) -> None:
    """Print a run's validation report, and what it leaves to a steward (values readmitted of records it withdrew,
    review decisions to make again); exit 1 if nothing valid was found."""
    if report.dry_run and report.status == "complete":
        typer.echo(f"dry run: every page of run {report.run_id} is staged; --resume would publish:")
    elif report.dry_run:
        known = report.n_available is not None
        every = known and report.n_fetched >= report.n_available
        page = "next page (of the interrupted run)" if report.resumed else "every record" if every else "first page"
        available = f"{report.n_available} records available" if known else "the source does not say how many match"
        typer.echo(f"dry run: {report.request} ({available}); {page} mapped:")
    again = f" ({report.n_reread} read again: of each record, the last read kept)" if report.n_reread else ""
    typer.echo(
        f"{report.source}: read {report.n_fetched}{again}, {report.n_stored} valid records ({report.n_values} values): "
        f"{_outcome(report)}; quarantined {report.n_quarantined}  [run {report.run_id}]"
    )
    for reason, count in report.reasons.most_common(SHOWN):
        typer.echo(f"  {count:6d}  {reason}")
    if len(report.reasons) > SHOWN:
        where = f"matreg sql \"SELECT item, reasons FROM open_quarantine WHERE source = '{report.source}'\""
        typer.echo(f"  ... and {len(report.reasons) - SHOWN} more reasons" + ("" if report.dry_run else f": {where}"))
    if report.stopped_short(limit):
        typer.echo(f"  note: the source said {report.n_available} records match; it sent {_sent(report)}")
    if report.available_counts:
        typer.echo(f"  note: {_count_changed(report.available_counts)}")
    if report.database_versions:
        typer.echo(f"  note: {_versions_changed(report.database_versions)}")
    if report.n_cached_pages:
        typer.echo(f"  {_cached_pages(report)}")
    if report.not_read_again:
        typer.echo(f"  {_not_read_again(report)}")
    if report.unmapped:
        fields = listed([f"{name} ({count})" for name, count in report.unmapped.most_common()], SHOWN)
        typer.echo(f"  fields the field map does not know: {fields}")
    if report.removed and report.removed.values:
        typer.echo(f"  {_removed(report.removed)}")
    if report.absent:
        records = max(report.absent.values())  # (each is lacked by every record mapped)
        lacked = listed(sorted(report.absent), SHOWN)
        typer.echo(f"  mapped fields no record carried ({records} records; renamed or dropped?): {lacked}")
    if not report.dry_run and store.exists():
        echo_decisions_to_redo(store, report.source, report.run_id)
    if report.n_stored == 0:
        withdrawn = f" (the run is stored: it withdrew {report.n_withdrawn} record(s))" if report.n_withdrawn else ""
        echo_stderr(f"error: nothing valid was found{withdrawn}")
        raise typer.Exit(1)


def _removed(removed: Removed) -> str:
    """How many stored values a published run's write removed, of how many records, by property."""
    n_values, n_records = removed.total()
    return (
        f"removed {n_values} stored value(s) of {n_records} record(s), which no read of this run gives again: "
        f"{_by_property(removed.values)}"
    )


def _by_property(values: dict[str, int]) -> str:
    """Counts of values by property: 'band_gap 10, formation_energy_per_atom 10'."""
    return listed([f"{prop} {count}" for prop, count in values.items()], SHOWN)


def _count_changed(counts: list[int]) -> str:
    """What a resumed run's changed count of matching records (`RunReport.available_counts`) means."""
    return (
        f"the source's count changed from {' to '.join(map(str, counts))} while the run was interrupted: with offset "
        "pages, records may be missed or read twice; fetch again without --resume (and with --refresh-cache where the "
        "HTTP cache is on: it keeps the pages read before) for a whole read"
    )


def _versions_changed(versions: list[str]) -> str:
    """What a resumed run's rows of several database versions of its source (`RunReport.database_versions`) mean."""
    of = "both" if len(versions) == 2 else "each"
    return (
        f"the source's database version changed from {' to '.join(versions)} while the run was interrupted: it holds "
        f"rows of {of} (materials.database_version); fetch again without --resume for rows of one version"
    )


def _cached_pages(report: RunReport) -> str:
    """How many pages the HTTP cache gave, and when the source gave them."""
    first, last = (f"{moment:%Y-%m-%d %H:%M:%S} UTC" for moment in report.cached_read_at or ())
    when = f"at {first}" if first == last else f"between {first} and {last}"
    pages = "1 page" if report.n_cached_pages == 1 else f"{report.n_cached_pages} pages"
    return f"{pages} from the HTTP cache, read {when} (--refresh-cache reads again)"


def _not_read_again(report: RunReport) -> str:
    """The stored records of a run's query that the run did not read, a few named, and where the rest are."""
    from matreg.ingest import listed_records

    ids = report.not_read_again or []
    every = f"matreg sql \"SELECT unnest(not_read_again) FROM fetch_runs WHERE run_id = '{report.run_id}'\""
    return (
        "not in this run, stored from this query (the source may have removed them; nothing was withdrawn): "
        f"{listed_records(ids, SHOWN)}" + (f"; all: {every}" if len(ids) > SHOWN else "")
    )


def _sent(report: RunReport) -> str:
    """How many records a run read: its reads, and the distinct records among them where it read some again."""
    if not report.n_reread:
        return str(report.n_fetched)
    return f"{report.n_distinct} distinct records of {report.n_fetched} reads"


def _outcome(report: RunReport) -> str:
    """What a run did with its valid records: how many it wrote, and how many the store held unchanged already."""
    if report.dry_run:
        withdrawing = f"; it would withdraw {report.n_withdrawn} (no longer in the file)" if report.n_withdrawn else ""
        return f"none written (dry run){withdrawing}"
    unchanged = f", {report.n_unchanged} already stored unchanged" if report.n_unchanged else ""
    later = f", {report.n_superseded} held from a later read" if report.n_superseded else ""
    withdrawn = f", {report.n_withdrawn} withdrawn (no longer in the file)" if report.n_withdrawn else ""
    return f"{report.n_written} written{unchanged}{later}{withdrawn}"


@app.command()
@reports_errors
def sql(
    query: Annotated[
        str, typer.Argument(help="One SELECT over the views (materials, properties, quarantine, ...; see README).")
    ],
    fmt: FormatOpt = "table",
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Run a read-only SQL query on the store (writes are refused).

    A query that starts with an SQL comment goes after `--` (else it reads as an option), the options before it:
    matreg sql --format csv -- '-- a comment (newline) select ...'

    A table shows each value whole, NULL as NULL, and the first 10000 rows (and how many more, counted up to a million
    more); csv and json print every row as read.
    """
    from matreg.cli_format import BATCH_ROWS, echo_reader

    echo_reader(open_store(store).query_batches(query, BATCH_ROWS), fmt, "(no rows)")


@app.command()
@reports_errors(interrupted="the export wrote nothing (an export is written whole or not at all)")
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset name from the catalog.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output file, its suffix its format: .parquet, .csv, .jsonl (--format torch: a folder)."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=f"One of: {', '.join(EXPORT_FORMATS)}, torch (default: --out's suffix)."),
    ] = None,
    layout: Annotated[
        str | None, typer.Option("--layout", help=f"Files: one of {', '.join(LAYOUTS)} (default long).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="torch: composition (default), chemsys, random, provenance or predefined."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="torch: seed of the split (default 0).")] = None,
    assignment: Annotated[
        Path | None,
        typer.Option("--assignment", help="torch, predefined split: CSV of record_id,split or formula,split."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="torch: the target property (default: the dataset's first).")
    ] = None,
    release: Annotated[
        str | None,
        typer.Option("--release", help="Export this released version (the same bytes every time), not the store."),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    catalog: CatalogOpt = None,
) -> None:
    """Export a catalog dataset: a file with a .meta.json sidecar, or (--format torch) an ML-ready directory."""
    utf8_path(out, "--out")  # (Arrow opens it by its name, and the sidecar records it)
    torch_options = {"split": split, "seed": seed, "assignment": assignment, "target": target}
    fmt = _export_format(fmt, out)
    _refuse_options_of_other_formats(fmt, release, layout, torch_options)
    if release is not None:
        from matreg.curate.release import export_release

        meta = export_release(open_store(store), dataset, release, fmt, out, layout or "long")
        typer.echo(f"{dataset} {release}: {meta['format']} sha256 {meta['sha256']} -> {out}")
        return
    if fmt == "torch":
        from matreg.ml.dataset import export_torch, provenance_warning  # torch and the featurizers load only here
        from matreg.ml.splits import describe_leakage

        given = {name: value for name, value in torch_options.items() if value is not None}
        meta = export_torch(open_store(store), read_catalog(catalog), dataset, out, **given)
        sizes = ", ".join(f"{name} {n}" for name, n in meta["n_per_split"].items())
        typer.echo(
            f"{dataset} (the store now, unreleased): {meta['n']} records of {meta['target']['property']} "
            f"[{meta['target']['unit']}] -> {out} ({sizes})"
        )
        for record_id, reason in meta["left_out"].items():
            typer.echo(f"  left out {record_id}: {reason}")
        typer.echo(describe_leakage(meta["split"]["leakage"]))
        echo_stderr(provenance_warning(meta))
        echo_stderr(_left_out_by_prefer(meta))
        return
    from matreg.export import export_dataset

    meta = export_dataset(open_store(store), read_catalog(catalog), dataset, fmt, out, layout or "long")
    typer.echo(f"{dataset} (the store now, unreleased): {meta['rows']} rows ({meta['records']} records) -> {out}")
    echo_stderr(_left_out_by_prefer(meta))


def _left_out_by_prefer(meta: dict) -> str | None:
    """What `prefer` left out of an export (its sidecar's or meta.json's `prefer`), in words; None when it left out
    nothing."""
    prefer = meta.get("prefer")
    if not prefer or not prefer["left_out"]:
        return None
    return (
        f"note: prefer [{', '.join(prefer['order'])}] left out {prefer['left_out']} of {prefer['curated_values']} "
        f"curated values, in {prefer['left_out_groups']} group(s) that have values of a better-ranked provenance or "
        "method (`prefer` in the sidecar or meta.json records it)"
    )


def _export_format(fmt: str | None, out: Path) -> str:
    """The format of an export to `out`: a file's is its suffix's (.parquet, .csv, .jsonl), which --format, if given,
    must agree with (a reader goes by the suffix); torch's, a folder, is given. ConfigError otherwise."""
    if fmt is not None:
        check_export_format(fmt, formats=(*EXPORT_FORMATS, "torch"))
    if fmt == "torch":
        return fmt
    named = out.suffix.lower().removeprefix(".")
    if named not in EXPORT_FORMATS:
        suffixes = ", ".join(f".{name}" for name in EXPORT_FORMATS)
        raise ConfigError(
            f"--out {out.name}: a file export's name ends in its format's suffix, one of {suffixes} "
            "(a torch export is a folder: --format torch)"
        )
    if fmt is not None and fmt != named:
        raise ConfigError(f"--format {fmt} and --out {out.name} disagree: name the file .{fmt}, or drop --format")
    return named


def _refuse_options_of_other_formats(
    fmt: str, release: str | None, layout: str | None, torch_options: dict[str, object]
) -> None:
    """ConfigError for an export option the chosen format does not read (it would be silently ignored)."""
    given = [f"--{name}" for name, value in torch_options.items() if value is not None]
    if given and (fmt != "torch" or release is not None):
        raise ConfigError(f"{', '.join(given)}: only for --format torch from the store (not files, not --release)")
    if fmt == "torch" and layout is not None:
        raise ConfigError("--layout: only for file formats (a torch export has its own layout, see its meta.json)")
    if fmt == "torch" and release is not None:
        raise ConfigError(
            "--release: a release is exported as a file (--format parquet, csv or jsonl); a torch export is made from "
            "the store's dataset as it is now (drop --release), and its meta.json records the sources and hashes"
        )


@app.command()
@reports_errors
def validate(store: StoreOpt = DEFAULT_STORE) -> None:
    """Check every table of the store against the canonical schema and vocabulary (a batch of rows at a time)."""
    from matreg.validation import check_store_tables

    target = open_store(store)
    checked = check_store_tables(target)
    for problem in checked.problems:
        echo_stderr(f"invalid: {problem}")
    if checked.problems:
        raise typer.Exit(1)
    typer.echo("store is valid: " + ", ".join(f"{rows} {name}" for name, rows in checked.rows.items()))
    echo_unmatched_decisions(target)


@app.command()
@reports_errors
def status(store: StoreOpt = DEFAULT_STORE, catalog: CatalogOpt = None) -> None:
    """Counts of values by source, provenance and property, the quarantine rows left to deal with, the latest runs
    and the interrupted ones (what resumes each, as the catalog has its source now)."""
    target = open_store(store)
    staged = target.staged_runs()
    if target.exists() or not staged:  # (a first run interrupted: pages staged, nothing published)
        _echo_stored(target)
    else:
        typer.echo("no values stored yet")
    _echo_interrupted_runs(target, staged, catalog, _where_given(store, catalog), _where_given(store, None))
    _echo_compaction_hint(target)


def _echo_compaction_hint(target: Store) -> None:
    """A hint to compact the store once it has COMPACT_AFTER commits or more since it was last compacted."""
    commits = target.commits_since_compacted()
    if commits >= COMPACT_AFTER:
        typer.echo(
            f"\n{commits} commits since the store was last compacted (every read opens a file per commit and table): "
            "`matreg compact` merges them"
        )


@app.command()
@reports_errors
def drop(
    run_id: Annotated[str, typer.Argument(help="The interrupted run to drop (`matreg status` lists them).")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Drop an interrupted run: delete its staged pages (a run another process is writing is refused)."""
    from matreg.resume import drop_interrupted

    row = drop_interrupted(open_store(store), run_id)
    read = f"{row['n_fetched']} read; its staged pages deleted"
    typer.echo(f"dropped the interrupted run {run_id}: {row['query']} ({read})")


@app.command()
@reports_errors
def compact(store: StoreOpt = DEFAULT_STORE) -> None:
    """Merge the store's commits (one per import, fetch and review decision) into one file per table, so that reads
    open a few files instead of one per commit and table; what the store holds and shows is unchanged."""
    from matreg.store.compaction import COVERED_KEPT_S

    target = open_store(store)
    merged = target.compact()
    if not merged:
        typer.echo("nothing to compact: the store is one commit")
        return
    typer.echo(
        f"compacted {merged} commits into one; their folders are no longer read, and the first write "
        f"{COVERED_KEPT_S // 60} minutes from now or later removes them (a query already running may still read them)"
    )


_RUN_COUNTS = {
    "n_fetched": "read",
    "n_stored": "valid",
    "n_unchanged": "unchanged",
    "n_values": "values",
    "n_quarantined": "quarantined",
}  # fetch_runs' counts as `matreg status` heads them
_FAILURE_CHARS = 600  # how much of a failed run's error `matreg status` shows
# what `matreg status` says of the latest runs below their table (`_echo_failures`, `_echo_earlier_failures`,
# `_echo_values_removed`), or in their status (`_run_status`)
_NOT_IN_TABLE = ["error", "values_removed", "failed_before", "last_failed_at", "last_failure", "published_later"]


def _echo_stored(target: Store) -> None:
    """Values by source, provenance and property, the quarantine rows left to deal with, the latest runs."""
    counts = target.value_counts()
    typer.echo(counts.to_string(index=False) if len(counts) else "no values stored yet")
    total, still_open = target.quarantine_counts()
    if total:
        typer.echo(
            f"\nquarantine: {still_open} rows open, {total - still_open} resolved (readmitted, dismissed, or no longer "
            'given so by their file or source): matreg sql "SELECT * FROM open_quarantine"'
        )
    runs = target.latest_run_of_each_source().rename(columns=_RUN_COUNTS)
    runs["status"] = [_run_status(row) for row in runs.itertuples()]
    if len(runs):
        typer.echo(
            "\nlatest run of each source, the one that ended last first (times in UTC; counts of what it read; only a "
            "published run stored its valid records):"
        )
        shown = runs.drop(columns=_NOT_IN_TABLE).astype(object).fillna("-")  # (a failed run counted none unchanged)
        typer.echo(shown.to_string(index=False))
        _echo_failures(runs)
        _echo_earlier_failures(runs)
        _echo_values_removed(runs)
    _echo_not_read_again(target)


def _run_status(run: Any) -> str:
    """A latest run's status as `matreg status` shows it (`Store.latest_run_of_each_source`): whether it published
    anything, and when, where that was later than it ended (published by --resume after it failed once its last page
    was read: `published_later`)."""
    if run.status != "complete":
        return f"{run.status} (nothing published)"
    later = f" {run.published_later}" if isinstance(run.published_later, str) else ""  # (None, or NaN where all are)
    return f"complete (published{later})"


def _echo_failures(runs: pd.DataFrame) -> None:
    """The error each failed run among the latest runs of their sources (`Store.latest_run_of_each_source`) ended
    with, as its fetch said it: its lines after the first indented under it, a long one cut (the whole of it is
    `fetch_runs.error`)."""
    failed = runs[runs["error"].notna()]
    if len(failed):
        typer.echo("\nlatest runs that failed, with their error:")
    for row in failed.itertuples():
        typer.echo(f"  {row.source} {row.run_id}: {_error_shown(row.error)}")


def _echo_earlier_failures(runs: pd.DataFrame) -> None:
    """Of the latest runs of their sources (`Store.latest_run_of_each_source`), those whose attempts failed before
    they ended (each then resumed): how many, when the last failed and its error (`_error_shown`)."""
    resumed = runs[runs["failed_before"] > 0]
    if len(resumed):
        every = 'matreg sql "SELECT * FROM run_failures ORDER BY failed_at"'
        typer.echo(f"\nlatest runs resumed after failing, with when and why they last failed (every failure: {every}):")
    for row in resumed.itertuples():
        times = "once" if row.failed_before == 1 else f"{row.failed_before} times"
        error = _error_shown(row.last_failure)
        typer.echo(f"  {row.source} {row.run_id}: failed {times} before, the last at {row.last_failed_at} UTC: {error}")


def _error_shown(error: str) -> str:
    """A failed run's error as `matreg status` shows it, as its fetch said it: its lines after the first indented
    under it (an unexpected error's), a long one cut (the store keeps it whole)."""
    return clipped(error.strip(), _FAILURE_CHARS).replace("\n", "\n    ")


def _echo_values_removed(runs: pd.DataFrame) -> None:
    """Of the latest runs of their sources, those whose write removed stored values as they were published
    (`fetch_runs.values_removed`), with how many of each property."""
    published = runs[runs["values_removed"].notna()]
    removed = [(row, values) for row in published.itertuples() if (values := json.loads(row.values_removed))]
    if removed:
        typer.echo(
            "\nlatest runs that removed stored values (of the records each wrote, values no read of it gave again), "
            "by property:"
        )
    for row, values in removed:
        typer.echo(f"  {row.source} {row.run_id}: {_by_property(values)}")


def _echo_not_read_again(target: Store) -> None:
    """The stored records that the latest run of a query they were stored from did not read, by query."""
    from matreg.ingest import listed_records, not_read_again

    missing = not_read_again(target)
    if missing.empty:
        return
    typer.echo(
        "\nnot read again: stored records the latest run of their query did not read (the source may have removed "
        "them; nothing is withdrawn):"
    )
    for (source, query, run_id), records in missing.groupby(["source", "query", "run_id"], sort=False, dropna=False):
        typer.echo(f"  {source} {query}: {listed_records(records['record_id'].tolist(), SHOWN)}  [run {run_id}]")


def _echo_interrupted_runs(
    store: Store, staged: dict[str, dict], catalog_path: Path | None, where: str, store_given: str
) -> None:
    """The runs with pages staged but not published (`Store.staged_runs`), with what they read and what continues
    or drops each (a fetch as the catalog at `catalog_path` has its source now: none where it cannot be read; its
    --resume with `where`, the --store and --catalog status was given: `_where_given`; `matreg drop` with
    `store_given`, its --store)."""
    from matreg.resume import drop_command

    if not staged:
        return
    catalog = _catalog_if_read(catalog_path)
    typer.echo("\ninterrupted runs (pages staged, not published):")
    for run_id, row in staged.items():
        running = _running(store, run_id)
        typer.echo(f"  {run_id}  {row['query']} ({row['n_fetched']} read{running})")
        if running != _RUNNING:  # (a run another process writes is no run to continue or drop)
            if row.get("whole_scope"):  # (a lab import)
                again = _import_again(row["parameters"], drop_command(run_id, store_given))
            else:
                again = _fetch_again(row, catalog, where, store_given)
            typer.echo(f"    {again}")


def _catalog_if_read(path: Path | None) -> Catalog | None:
    """The catalog at `path` (`read_catalog`), None where it cannot be read (status says what it can without it)."""
    try:
        return read_catalog(path)
    except MatregError:
        return None


_RUNNING = ", running in another process"


def _running(store: Store, run_id: str) -> str:
    """', running in another process' while another process writes the run; what stops a look from telling, if
    something does (status writes nothing, and takes no lock a writer waits for)."""
    try:
        return _RUNNING if store.is_running(run_id) else ""
    except StoreError as exc:
        return f"; {exc}"


def _fetch_again(row: dict, catalog: Catalog | None, where: str, store_given: str) -> str:
    """What continues or drops an interrupted fetch: the same fetch, given the options it was read with
    (`fetch_runs.options`, none of a run an older matreg staged), the base URL it read where the catalog's is
    another now (`resume_base_url`) and `where` (`_where_given`), with or without --resume, or its `matreg drop`
    (with `store_given`: `drop_command`); where --resume would refuse it (`resume_refused`: its catalog entry or field
    map changed), why."""
    from matreg.resume import drop_command, resume_base_url, resume_refused

    if refused := resume_refused(row, catalog, store_given):
        return refused
    base_url = resume_base_url(row, catalog)
    options = _resume_options(row, base_url, where)
    server = ", the server it read: the catalog's base URL is another now" if base_url else ""
    same = f"the same fetch (its options: {options}{server})" if options else "the same fetch"
    dropped = drop_command(row["run_id"], store_given)
    return f"{same} with --resume continues it; the same fetch without --resume, or {dropped}, drops it"


def _resume_options(row: dict, base_url: str | None, where: str) -> str:
    """The options a --resume of a staged fetch gives: `where`, the store and catalog to resume it with
    (`_where_given`), those it was read with (`fetch_runs.options`), and `base_url`, the --base-url of the server it
    read where a fetch without it reads another now (`resume_base_url`)."""
    return " ".join(option for option in (where, row.get("options"), base_url) if option)


def _import_again(parameters: str, drop_command: str) -> str:
    """What drops an interrupted lab import (imports have no --resume): the same import, name given included (an
    import with another mapping leaves it), or `drop_command`."""
    asked = json.loads(parameters)
    named = f" and --as {asked['name']}" if "name" in asked else ""
    named += f" and --moved-from {asked['moved_from']}" if "moved_from" in asked else ""
    again = f"importing {asked['file']} again with the same mapping{named} drops it and reads the file whole"
    return f"{again}; {drop_command} drops it alone"


@app.command("catalog")
@reports_errors
def catalog_(catalog: CatalogOpt = None) -> None:
    """List the sources and datasets of the catalog."""
    from matreg.catalog import CONNECTORS, default_catalog_path
    from matreg.http import public_url
    from matreg.resources import project_files, resource_path, working_directory
    from matreg.schema import PROPERTIES, extension_files

    loaded = read_catalog(catalog)
    typer.echo(f"catalog: {(catalog or default_catalog_path()).resolve()}")
    typer.echo("sources:")
    for name, source in loaded.sources.items():
        url = public_url(source.base_url)  # never shown with a password or a key
        typer.echo(f"  {name:22s} {source.provenance:12s} {url}  ({source.license})")
    typer.echo("datasets:")
    for name, dataset in loaded.datasets.items():
        typer.echo(f"  {name:22s} v{dataset.version:8s} {', '.join(dataset.properties)}")
    own = project_files([PROPERTIES, *(f"connectors/{connector}.yaml" for connector in CONNECTORS), *extension_files()])
    folder = working_directory()
    if folder is None:
        typer.echo("project files read from: none (the current directory no longer exists)")
    else:
        typer.echo(f"project files read from {folder}: {', '.join(own) or 'none'}")
    typer.echo(f"matreg's own files (to copy): {resource_path('catalog.yaml').parent}")


@app.command()
@reports_errors
def schema() -> None:
    """Print the canonical schema (each column's constraints), its extensions, the property and method vocabularies and
    the store's views as Markdown. A project's schema extension that does not load is listed with its error, which
    the command then ends with (exit code 2)."""
    from matreg.schema import schema_extensions, schema_markdown
    from matreg.store.sql import views_markdown

    extensions = schema_extensions()  # (each loaded once: the Markdown lists the errors the command ends with)
    typer.echo(schema_markdown(extensions) + "\n" + views_markdown(), nl=False)
    errors = [spec for spec in extensions.values() if isinstance(spec, ConfigError)]
    if errors:
        raise ConfigError("; ".join(map(str, errors)))


# The steward's and the ML commands, listed after the ETL's (`matreg --help` lists commands as registered).
app.add_typer(review_app, name="review")
app.command("history")(history_command)
app.command("conflicts")(conflicts_command)
app.command("release")(release_command)
app.command("diff")(diff_command)
app.command("train")(train_command)
app.command("predict")(predict_command)


@app.callback(invoke_without_command=True)
def _version(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also log each HTTP request on stderr (method, URL, status, bytes, milliseconds, HTTP cache hit or "
            "miss), each line on stderr after the UTC time: `matreg -v fetch ...`.",
        ),
    ] = False,
) -> None:
    show_library_warnings(verbose)
    stop_on_sigterm()
    if version:
        typer.echo(f"matreg {__version__}")
        raise typer.Exit()
