"""A data steward's commands: `matreg review` and `matreg history` (decisions in the append-only curation log),
`matreg conflicts`, `matreg release` and `matreg diff`; and the notes of the decisions to make again that `validate`
and a run print."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from matreg.cli_options import (
    SHOWN,
    CatalogOpt,
    FormatOpt,
    StoreOpt,
    echo_stderr,
    open_store,
    read_catalog,
    read_number,
    reports_errors,
)
from matreg.defaults import DEFAULT_STORE

if TYPE_CHECKING:
    from matreg.store import Store

review_app = typer.Typer(
    help="Record a data steward's decision in the append-only curation log (raw rows are never changed).",
    no_args_is_help=True,
)

RecordArg = Annotated[str, typer.Argument(help="Record id, e.g. janaf:H-064 or demo-lab-bandgaps:roost-5.")]
StewardOpt = Annotated[str, typer.Option("--steward", envvar="MATREG_STEWARD", help="Who decides.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the log).")]
PropertyOpt = Annotated[
    str | None, typer.Option("--property", "-p", help="Decide on this value of the record, not the whole record.")
]
MethodOpt = Annotated[str | None, typer.Option("--method", help="The value's method, when the record has several.")]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", parser=read_number, help="The value's temperature (K).")
]
PressureOpt = Annotated[float | None, typer.Option("--pressure", parser=read_number, help="The value's pressure (Pa).")]
QuarantineArg = Annotated[
    str, typer.Argument(help='The quarantine row (matreg sql "select quarantine_id, item from open_quarantine").')
]
_VERDICTS = {
    "accept": "Accept a record, or one of its values (--property), as reviewed.",
    "reject": "Reject a record, or one of its values: datasets leave it out (the raw rows stay).",
    "flag": "Flag a record, or one of its values: datasets keep it with the flag and reason.",
}


def _verdict(action: str) -> Callable:
    """The command of one of accept, reject, flag."""

    def command(
        record_id: RecordArg,
        steward: StewardOpt,
        reason: ReasonOpt,
        prop: PropertyOpt = None,
        method: MethodOpt = None,
        temperature: TemperatureOpt = None,
        pressure: PressureOpt = None,
        store: StoreOpt = DEFAULT_STORE,
    ) -> None:
        from matreg.curate.review import record_decision

        entry = record_decision(
            open_store(store), action, steward, reason, record_id, prop, method, temperature, pressure
        )
        _logged(entry)

    command.__doc__ = _VERDICTS[action]
    return command


for _action in _VERDICTS:
    review_app.command(_action)(reports_errors(_verdict(_action)))


@review_app.command("correct")
@reports_errors
def review_correct(
    record_id: RecordArg,
    prop: Annotated[str, typer.Option("--property", "-p", help="The property of the value to correct.")],
    value: Annotated[
        float,
        typer.Option("--value", parser=read_number, help="The corrected value, in the property's canonical unit."),
    ],
    steward: StewardOpt,
    reason: ReasonOpt,
    unit: Annotated[str | None, typer.Option("--unit", help="Must be the canonical unit (a check).")] = None,
    method: MethodOpt = None,
    temperature: TemperatureOpt = None,
    pressure: PressureOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Correct one value (canonical unit, within the physical bounds); datasets show it, the raw value stays."""
    from matreg.curate.review import record_decision

    entry = record_decision(
        open_store(store),
        "correct",
        steward,
        reason,
        record_id,
        prop,
        method,
        temperature,
        pressure,
        value=value,
        unit=unit,
    )
    _logged(entry)


@review_app.command("readmit")
@reports_errors
def review_readmit(
    quarantine_id: QuarantineArg,
    steward: StewardOpt,
    reason: ReasonOpt,
    value: Annotated[float | None, typer.Option("--value", parser=read_number, help="The corrected raw value.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="The corrected raw unit (any unit pint reads).")] = None,
    prop: Annotated[
        str | None, typer.Option("--property", "-p", help="Which raw value to correct, when the row has several.")
    ] = None,
    method: MethodOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Re-admit a quarantined row with a corrected value or unit, through the same checks as an import."""
    from matreg.curate.review import record_decision

    entry = record_decision(
        open_store(store),
        "readmit",
        steward,
        reason,
        property=prop,
        method=method,
        quarantine_id=quarantine_id,
        value=value,
        unit=unit,
    )
    _logged(entry)
    typer.echo(f"  admitted with run id curation:{entry['entry_id']}")


_ON_ROW = {
    "dismiss": "Dismiss a quarantined row that cannot be resolved: it leaves open_quarantine (and stays so when the "
    "same input is rejected again), stays in quarantine as history; nothing is admitted.",
    "reopen": "Reopen a dismissed quarantine row: a new log entry cancels the dismissal, and the row is back in "
    "open_quarantine (while its file or source still rejects it).",
}


def _on_row(action: str) -> Callable:
    """The command of dismiss or reopen: an entry on a quarantine row alone."""

    def command(
        quarantine_id: QuarantineArg, steward: StewardOpt, reason: ReasonOpt, store: StoreOpt = DEFAULT_STORE
    ) -> None:
        from matreg.curate.review import record_decision

        _logged(record_decision(open_store(store), action, steward, reason, quarantine_id=quarantine_id))

    command.__doc__ = _ON_ROW[action]
    return command


for _action in _ON_ROW:
    review_app.command(_action)(reports_errors(_on_row(_action)))


def _logged(entry: dict) -> None:
    from matreg.curate.review import uncertainty_text

    target = entry["record_id"] or f"quarantine row {entry['quarantine_id']}"
    value = f" {entry['property']}" if entry["property"] else ""
    corrected = f" = {entry['value']} {entry['unit']}" if entry["value"] is not None else ""  # exact, as `sql` shows it
    if corrected and (uncertainty := uncertainty_text(entry["property"], entry["uncertainty"], entry["unit"])):
        corrected += f" {uncertainty}"  # the value's, which the corrected value keeps
    typer.echo(f"{entry['action']} {target}{value}{corrected}  [entry {entry['entry_id']}, by {entry['steward']}]")


@reports_errors
def history_command(record_id: RecordArg, store: StoreOpt = DEFAULT_STORE) -> None:
    """Every curation-log entry touching a record, oldest first, with what each was made on and which are stale."""
    import pandas as pd

    from matreg.curate.review import history, uncertainty_text
    from matreg.schema import value_conditions

    entries = history(open_store(store), record_id)
    if entries.empty:
        typer.echo(f"no curation entries for {record_id}")
        return
    columns = ["entry_id", "steward", "action", "property", "method", *value_conditions(), "value", "unit"]
    # entries on values of one property that differ in method or conditions stay apart; what each was made on
    columns += ["uncertainty", "formula", "phase", "original_value", "original_unit", "reason"]
    uncertainties = map(uncertainty_text, entries["property"], entries["uncertainty"], entries["unit"])
    made_on = entries.assign(  # the formula as written, where the entry logged it
        formula=entries["formula_original"].fillna(entries["formula"]), uncertainty=list(uncertainties)
    )
    numbers = [*value_conditions(), "value", "original_value"]  # exact, as `sql` shows them: not rounded
    made_on[numbers] = made_on[numbers].map(lambda number: str(number) if pd.notna(number) else None)
    shown = made_on[columns].astype(object).where(made_on[columns].notna(), "")
    shown["stale"] = entries["stale"].notna().map({True: "stale", False: ""})
    typer.echo(shown.to_string(index=False, max_colwidth=60))
    for entry in entries[entries["stale"].notna()].itertuples():
        typer.echo(f"{entry.entry_id} is stale: {entry.stale}; decide again with `matreg review`")


@reports_errors
def conflicts_command(
    prop: Annotated[str, typer.Argument(metavar="PROPERTY", help="A vocabulary property (e.g. band_gap).")],
    tol: Annotated[
        float | None,
        typer.Option("--tol", min=0, help="Spread (canonical unit) beyond which linked values disagree (default 0.1)."),
    ] = None,
    across_methods: Annotated[
        bool,
        typer.Option(
            "--across-methods",
            help="Compare values of different methods too (default: each provenance and method apart).",
        ),
    ] = False,
    fmt: FormatOpt = "table",
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Values of one material (linked across sources and lab files) that disagree, with source, method, provenance.

    Compares the values as curated (rejected ones out, corrected ones in), of one provenance and method unless
    --across-methods.
    """
    from matreg.cli_format import echo_frame
    from matreg.curate.conflicts import find_conflicts  # pymatgen's StructureMatcher loads only here

    found = find_conflicts(open_store(store), prop, tolerance=tol, across_methods=across_methods)
    echo_frame(found, fmt, f"no {prop} values disagree beyond the tolerance", max_colwidth=40)
    if fmt == "table" and not found.empty:
        typer.echo(f"\n{len(found)} values in {found['group_id'].nunique()} group(s) disagree")


@reports_errors(interrupted="the release wrote nothing (a release is written whole or not at all)")
def release_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name from the catalog.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version X.Y.Z to release (default: the catalog's version).")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    catalog: CatalogOpt = None,
) -> None:
    """Freeze a dataset as an immutable release: payload, manifest and dataset card."""
    from matreg.curate.release import read_manifest, release

    target, loaded = open_store(store), read_catalog(catalog)
    version = version or loaded.release_version(dataset)
    folder = release(target, loaded, dataset, version)
    manifest = read_manifest(target, dataset, version)
    payload = manifest["content"]["payload"]
    typer.echo(f"{dataset} {version}: {payload['rows']} rows ({payload['records']} records) -> {folder}")
    typer.echo(f"content sha256 {manifest['content_sha256']}")


@reports_errors
def diff_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    a: Annotated[str, typer.Argument(help="The older release (version).")],
    b: Annotated[str, typer.Argument(help="The newer release (version).")],
    fmt: FormatOpt = "table",
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """List what of the dataset's selection and resolution changed, then the records and values added, removed and
    changed, from release A to release B."""
    from matreg.cli_format import echo_frame
    from matreg.curate.release import diff, diff_summary

    changes = diff(open_store(store), dataset, a, b)
    echo_frame(changes, fmt, f"no changes from {a} to {b}", max_colwidth=50)
    if fmt == "table" and not changes.empty:
        typer.echo("\n" + diff_summary(changes))


def echo_unmatched_decisions(store: Store) -> None:
    """Notes on the review decisions whose record or value the store no longer shows, and on those made on what has
    changed since (stale: not applied to what changed, readmits included), every one listed (`matreg validate`'s full
    report, which the import's and fetch's short warnings point to)."""
    from matreg.curate.review import stale_entries, target_text, unmatched_decisions

    decisions = unmatched_decisions(store)
    if len(decisions):
        typer.echo(f"note: {len(decisions)} review decision(s) name a record or value the store no longer shows:")
        for entry in decisions.itertuples():
            typer.echo(f"  {entry.entry_id}  {entry.action} {target_text(entry)}")
    stale = stale_entries(store)
    if len(stale):
        typer.echo(
            f"note: {len(stale)} review decision(s) were made on what has changed since (stale: not applied to what "
            "changed; decide again with `matreg review`):"
        )
        for entry in stale.itertuples():
            typer.echo(f"  {entry.entry_id}  {entry.action} {target_text(entry)}: {entry.why}")


def echo_decisions_to_redo(store: Store, source: str, run_id: str) -> None:
    """Warn (stderr) of the review decisions that run `run_id` of `source` may have made stale and that a steward
    should make again (`run_decisions_to_redo`; the first SHOWN; `matreg validate` lists every one)."""
    from matreg.curate.review import redo_text, run_decisions_to_redo

    decisions = run_decisions_to_redo(store, source, run_id)
    for entry in decisions.head(SHOWN).itertuples():
        echo_stderr(f"warning: {redo_text(entry)}")
    if len(decisions) > SHOWN:
        echo_stderr(f"warning: ... and {len(decisions) - SHOWN} more review decisions: `matreg validate` lists them")
