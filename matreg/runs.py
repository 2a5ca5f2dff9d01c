"""A run as `fetch_runs` records it: its report (`RunReport`: what it read, stored and quarantined, and where it
stands), its row, and what of it a later run is matched on (its parameters, selection and options as JSON or typed).

Both `ingest` (which drives a run and stages its rows) and `resume` (which finds the staged run a --resume continues)
build on it.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matreg import __version__
from matreg.errors import utf8_path
from matreg.http import public_url, redact_params
from matreg.sources.base import PAGING_KEYS, Connector, RunInfo
from matreg.store import Dropped, Removed

LIMIT_KEY = "max_records"  # the run parameter of --limit: an option of the run, part of its selection (no whole query)


@dataclass
class RunReport:
    """What a run read, stored and quarantined (and why), and where it stands."""

    run_id: str
    source: str
    started_at: datetime
    status: str = "in_progress"
    n_fetched: int = 0
    n_stored: int = 0
    n_values: int = 0
    n_quarantined: int = 0
    n_reread: int = 0  # valid reads of a record the run read again: replaced by its last read
    n_unchanged: int | None = None
    n_superseded: int | None = None
    n_withdrawn: int | None = None
    removed: Removed | None = None  # the stored values its write removed (`Store._removed_values`), once published
    n_available: int | None = None
    not_read_again: list[str] | None = None  # its query's stored records it did not read (`ingest._not_read_again`)
    n_cached_pages: int = 0  # pages the HTTP cache gave this process (not those of a resumed run's earlier one)
    cached_read_at: tuple[datetime, datetime] | None = None  # when the source gave the oldest and newest of them
    reasons: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)
    absent: dict[str, int] | None = None  # mapped fields no record carried, with how many lacked them (None: no record)
    cursor: dict[str, Any] | None = None
    request: str = ""
    dry_run: bool = False
    resumed: bool = False
    not_resumed: str | None = None  # why a --resume-or-start run started afresh, and what it dropped
    dropped: list[str] = field(default_factory=list)  # a fresh run's, as it started: interrupted runs of its query
    database_version: str | None = None  # a resumed run's, as staged: kept by a resume that asks nothing
    mapped_with: str | None = None  # what its rows are mapped with (`resume._mapped_with`; None: an older matreg's)
    available_counts: list[int] | None = None  # the source's counts of matching records, where a resume found another
    database_versions: list[str] | None = None  # of a resumed run, those its rows carry, where the source's changed

    @property
    def n_distinct(self) -> int:
        """The distinct records among the run's reads (a record read again counts once)."""
        return self.n_fetched - self.n_reread

    @property
    def n_written(self) -> int:
        """The valid records the run wrote: those it stored less those stored already unchanged and those the store
        holds from a later read."""
        return self.n_stored - (self.n_unchanged or 0) - (self.n_superseded or 0)

    def stopped_short(self, limit: int | None) -> bool:
        """True when a finished run read fewer distinct records than its source said match (and fewer reads than
        `limit`): the source sent no further page (an empty page ends a run), dropped records while paging (NOMAD
        does), or sent records it had sent already in their place (a page repeating another). An entry OQMD lists
        twice, one row a calculation, counts twice in its total and once here: `matreg fetch`'s note gives the reads
        beside the distinct records."""
        if self.dry_run or self.n_available is None or self.n_distinct >= self.n_available:
            return False
        return limit is None or self.n_fetched < limit

    def finish(
        self, run_row: dict[str, Any], dropped: dict[str, Dropped], withdrawn: int, removed: Removed
    ) -> dict[str, Any]:
        """The run's fetch_runs row as published: its counts after the publishing check (`ingest._PublishCheck`, and the
        reads of refused records the store dropped), each record and value counted once however many pages read it
        (the store drops its earlier reads), with how many valid records were stored already unchanged, how many the
        store holds from a later read (of another run), how many records of a scope read whole (a lab file) the run
        withdrew, and how many stored values of each property its write removed; without what its pages were mapped
        with (`mapped_with`: what a resume checks, which its rows carry), and when it is published (`published_at`, now:
        of a run resumed after all its pages were staged, later than `finished_at`, when its last page was read)."""
        self.n_withdrawn, self.removed = withdrawn, removed
        self.n_stored -= dropped["materials"].withheld + dropped["materials"].earlier
        self.n_values -= dropped["properties"].withheld + dropped["properties"].earlier
        self.n_reread += dropped["materials"].earlier  # (those of one page: `ingest._PageRows.n_reread`)
        self.n_unchanged = dropped["materials"].unchanged
        self.n_superseded = dropped["materials"].superseded
        counts = {"n_stored": self.n_stored, "n_values": self.n_values, "n_quarantined": self.n_quarantined}
        counts["n_reread"] = self.n_reread
        counts["quarantine_reasons"] = counts_json(self.reasons)  # with the reasons of the publishing check
        published = {"n_unchanged": self.n_unchanged, "n_superseded": self.n_superseded, "n_withdrawn": withdrawn}
        published["values_removed"] = json.dumps(removed.values)
        return {**run_row, **counts, **published, "published_at": datetime.now(UTC), "mapped_with": None}

    def note_count(self, total: int | None) -> None:
        """Note the count of matching records the first page of a resumed run says (`total`) where it is another than
        its committed pages said (`available_counts`): offset pages may then have missed or repeated records."""
        if self.n_available is not None and total is not None and total != self.n_available:
            self.available_counts = [*(self.available_counts or [self.n_available]), total]

    def add_cached(self, read_at: list[datetime]) -> None:
        """Count pages the HTTP cache gave, which the source gave at `read_at`."""
        if read_at:
            self.n_cached_pages += len(read_at)
            known = [*read_at, *(self.cached_read_at or ())]
            self.cached_read_at = (min(known), max(known))


def run_info(connector: Connector, limit: int | None = None, moved_from: Path | str | None = None) -> RunInfo:
    """What a run of `connector` records and is matched on: its endpoint without the key a URL may carry, `limit` and
    `moved_from` (as `run_ingest` takes them) among its parameters."""
    info = connector.run_info()
    info.endpoint = public_url(info.endpoint)
    if limit is not None:
        info.parameters = {**info.parameters, LIMIT_KEY: limit}
    if moved_from is not None:
        moved_from = utf8_path(Path(moved_from).resolve(), "--moved-from")
        info.parameters = {**info.parameters, "moved_from": str(moved_from)}
    return info


def parameters_json(info: RunInfo) -> str:
    """A run's parameters as `fetch_runs.parameters` records them: JSON, keys sorted, secrets redacted."""
    return json.dumps(redact_params(info.parameters), sort_keys=True, default=str)


def selection_json(info: RunInfo) -> str:
    """What a run selects (`fetch_runs.selection`): `run_selection` of its parameters."""
    return run_selection(parameters_json(info))


def run_selection(parameters: str, besides: tuple[str, ...] = ()) -> str:
    """What a run of these parameters (`fetch_runs.parameters`, JSON) selects, as `fetch_runs.selection` records
    it: the parameters less those that only say how pages are read (PAGING_KEYS, of any connector: a run of an older
    matreg, which recorded no selection, has one too) and less `besides`."""
    dropped = {*PAGING_KEYS, *besides}
    return json.dumps(
        {key: value for key, value in json.loads(parameters).items() if key not in dropped}, sort_keys=True
    )


def run_options(connector: Connector, info: RunInfo) -> str | None:
    """The fetch options besides the selection that a --resume of the run gives again, as typed, where they differ
    from the defaults (`fetch_runs.options`): the page size (where not the one the connector asks without
    --page-size: `RunInfo.paging`), --limit and --base-url. None for a lab import."""
    if connector.read_mode.whole_scope:
        return None
    limit = info.parameters.get(LIMIT_KEY)
    flags = [
        f"--page-size {size}" for key, default in info.paging.items() if (size := info.parameters.get(key)) != default
    ]
    flags += [f"--limit {limit}"] if limit is not None else []
    flags += [f"--base-url {shlex.quote(connector.base_url_option)}"] if connector.base_url_option else []
    return " ".join(flags)


def fetch_run_row(info: RunInfo, report: RunReport, connector: Connector, error: str | None = None) -> dict:
    """The run's fetch_runs row as staged (`error`: why a failed run failed)."""
    return {
        "run_id": report.run_id,
        "source": report.source,
        "endpoint": info.endpoint,
        "relative_path": info.relative_path,
        "base_url": public_url(connector.base_url_read) if connector.base_url_read else None,
        "query": info.query,
        "parameters": parameters_json(info),
        "selection": selection_json(info),
        "arguments": connector.arguments,
        "options": run_options(connector, info),
        "started_at": report.started_at,
        "finished_at": datetime.now(UTC),
        "published_at": None,  # written as the run is published (`RunReport.finish`)
        "status": report.status,
        "error": error,
        "n_fetched": report.n_fetched,
        "n_reread": report.n_reread,
        "n_stored": report.n_stored,
        "n_values": report.n_values,
        "n_quarantined": report.n_quarantined,
        "n_unchanged": report.n_unchanged,
        "n_superseded": report.n_superseded,
        "n_withdrawn": report.n_withdrawn,
        "values_removed": None,  # written as the run is published (`RunReport.finish`)
        "n_available": report.n_available,
        "not_read_again": report.not_read_again,
        "whole_scope": connector.attribution.scope if connector.read_mode.whole_scope else None,
        "quarantined": None,  # written as the run is published (`Store.publish_run`)
        "quarantine_reasons": None,  # written once, when the run ends (a resume counts its journal's, `staged_reasons`)
        "unmapped_fields": counts_json(report.unmapped),
        "absent_fields": None if report.absent is None else json.dumps(dict(sorted(report.absent.items()))),
        "database_version": connector.attribution.database_version or report.database_version,
        "matreg_version": __version__,
        "cursor": json.dumps(report.cursor) if report.cursor is not None else None,
        "mapped_with": report.mapped_with,
        "available_counts": json.dumps(report.available_counts) if report.available_counts else None,
    }


def counts_json(counts: Counter) -> str:
    """A Counter as a JSON object, most common first."""
    return json.dumps(dict(counts.most_common()), sort_keys=False, ensure_ascii=False)


def report_from_row(row: dict[str, Any]) -> RunReport:
    """The counters and cursor of a staged run, to continue it."""
    return RunReport(
        run_id=row["run_id"],
        source=row["source"],
        started_at=row["started_at"],
        status=row["status"],
        n_fetched=row["n_fetched"],
        n_reread=row.get("n_reread") or 0,  # (none in a run staged by an older matreg)
        n_stored=row["n_stored"],
        n_values=row["n_values"],
        n_quarantined=row["n_quarantined"],
        n_available=row["n_available"],
        not_read_again=row.get("not_read_again"),
        unmapped=Counter(json.loads(row["unmapped_fields"])),
        absent=json.loads(row["absent_fields"]) if row.get("absent_fields") else None,
        cursor=json.loads(row["cursor"]) if row["cursor"] else None,
        resumed=True,
        database_version=row.get("database_version"),
        mapped_with=row.get("mapped_with"),  # (none in a run staged by an older matreg)
        available_counts=json.loads(row["available_counts"]) if row.get("available_counts") else None,
    )


def new_run_id(source: str) -> str:
    """A unique run id that sorts by start time (to the microsecond): UTC time, source, a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{source}-{uuid.uuid4().hex[:8]}"
