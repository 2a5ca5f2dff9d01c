"""Drive a connector: pages -> map -> harmonize -> quarantine -> one atomic commit, recorded in fetch_runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from tqdm import tqdm

from matreg import __version__
from matreg.errors import FormulaError, MatregError, RecordError
from matreg.http import redact_params
from matreg.schema import load_tables
from matreg.sources.base import Connector, RawItem, RunInfo
from matreg.store import Store
from matreg.validation import Rejection, RunStamp, harmonize, to_json, validate_table


@dataclass
class RunReport:
    """What a run read, stored and quarantined (and why)."""

    run_id: str
    source: str
    status: str = "complete"
    n_fetched: int = 0
    n_stored: int = 0
    n_values: int = 0
    n_quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    dry_run: bool = False


class _Batch:
    """Rows of one run, keyed by primary key so a record read twice is stored once."""

    def __init__(self, connector: Connector, stamp: RunStamp) -> None:
        self.connector = connector
        self.stamp = stamp
        self.rows: dict[str, dict[Any, dict]] = {name: {} for name in ("materials", "properties", "quarantine")}
        self.n_fetched = 0
        self.reasons: Counter = Counter()

    def add(self, item: RawItem) -> None:
        self.n_fetched += 1
        if item.error:
            self.reject(Rejection(item.item_id, item.payload, [item.error]))
            return
        try:
            canonical = harmonize(self.connector.to_record(item.payload), self.connector.attribution, self.stamp)
        except (RecordError, FormulaError) as exc:
            self.reject(Rejection(item.item_id, item.payload, [str(exc)]))
            return
        if not canonical.values:
            reasons = [r for rejected in canonical.rejected for r in rejected.reasons] or ["no property values"]
            self.reject(Rejection(item.item_id, item.payload, reasons))
            return
        self.rows["materials"][canonical.material["record_id"]] = canonical.material
        for row in canonical.values:
            key = (row["record_id"], row["property"], row["temperature_K"], row["pressure_Pa"])
            self.rows["properties"][key] = row
        for rejected in canonical.rejected:
            self.reject(rejected)

    def reject(self, rejection: Rejection) -> None:
        source = self.connector.attribution.source
        raw = to_json(rejection.raw)
        quarantine_id = hashlib.sha1(f"{source}\0{rejection.item}\0{raw}".encode()).hexdigest()
        self.rows["quarantine"][quarantine_id] = {
            "quarantine_id": quarantine_id,
            "run_id": self.stamp.run_id,
            "source": source,
            "item": rejection.item,
            "raw": raw,
            "reasons": rejection.reasons,
            "quarantined_at": self.stamp.fetched_at,
        }
        self.reasons.update(rejection.reasons)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {name: _frame(name, list(rows.values())) for name, rows in self.rows.items()}


def run_ingest(
    connector: Connector, store: Store, *, limit: int | None = None, dry_run: bool = False, progress: bool = False
) -> RunReport:
    """Fetch everything the connector yields (up to `limit` items) and commit it as one run."""
    source = connector.attribution.source
    stamp = RunStamp(new_run_id(source), datetime.now(timezone.utc))
    batch = _Batch(connector, stamp)
    info = connector.run_info()
    try:
        _read_pages(connector, batch, limit, progress)
        report = _report(batch, stamp, dry_run)
        if not dry_run:
            frames = {name: validate_table(name, frame) for name, frame in batch.frames().items()}
            frames["fetch_runs"] = _fetch_run_frame(info, stamp, report, connector)
            store.commit(frames)
    except Exception as exc:
        if not dry_run:
            _record_failure(store, info, stamp, batch, connector, exc)
        raise
    finally:
        connector.close()
    return report


def _record_failure(
    store: Store, info: RunInfo, stamp: RunStamp, batch: _Batch, connector: Connector, exc: Exception
) -> None:
    """Log a failed run in fetch_runs; if even that cannot be written, the original error still propagates."""
    failed = RunReport(stamp.run_id, connector.attribution.source, status="failed", n_fetched=batch.n_fetched)
    with contextlib.suppress(OSError, MatregError):
        store.commit({"fetch_runs": _fetch_run_frame(info, stamp, failed, connector, connector.redact(str(exc)))})


def _read_pages(connector: Connector, batch: _Batch, limit: int | None, progress: bool) -> None:
    with tqdm(desc=f"{connector.attribution.source}", unit=" records", disable=not progress) as bar:
        for page in connector.pages():
            for item in page:
                if limit is not None and batch.n_fetched >= limit:
                    return
                batch.add(item)
                bar.update(1)


def _report(batch: _Batch, stamp: RunStamp, dry_run: bool) -> RunReport:
    return RunReport(
        run_id=stamp.run_id,
        source=batch.connector.attribution.source,
        n_fetched=batch.n_fetched,
        n_stored=len(batch.rows["materials"]),
        n_values=len(batch.rows["properties"]),
        n_quarantined=len(batch.rows["quarantine"]),
        reasons=batch.reasons,
        dry_run=dry_run,
    )


def _fetch_run_frame(
    info: RunInfo, stamp: RunStamp, report: RunReport, connector: Connector, error: str | None = None
) -> pd.DataFrame:
    row = {
        "run_id": stamp.run_id,
        "source": report.source,
        "endpoint": info.endpoint,
        "query": info.query,
        "parameters": json.dumps(redact_params(info.parameters), sort_keys=True, default=str),
        "started_at": stamp.fetched_at,
        "finished_at": datetime.now(timezone.utc),
        "status": report.status,
        "error": error,
        "n_fetched": report.n_fetched,
        "n_stored": report.n_stored,
        "n_values": report.n_values,
        "n_quarantined": report.n_quarantined,
        "database_version": connector.attribution.database_version,
        "matreg_version": __version__,
        "cursor": None,
    }
    return validate_table("fetch_runs", _frame("fetch_runs", [row]))


def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(load_tables()[name].columns))


def new_run_id(source: str) -> str:
    """A sortable, unique run id: UTC time, source and a random suffix."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{source}-{uuid.uuid4().hex[:8]}"
