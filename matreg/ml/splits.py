"""Train/val/test assignment, and a report of how much a split leaks (test compositions and chemical systems also
in train or val: `leakage_report`).

`composition` and `chemsys` deal out whole groups (every record of one composition, however its formula is written,
or of one chemical system, lands on one side): no test composition (chemical system) in train or val. The others
may leak, by design: `random` deals out records (one composition measured twice may be in train and test);
`provenance` trains and validates on DFT and tests on experiment, so the DFT values of a measured test composition
are in train or val (it measures how a model learned from DFT transfers to measurements; train and val share no
composition); `predefined` applies a CSV (`record_id,split` or `formula,split`) exactly, as leaky as the file is.
All are deterministic for a seed, and stable as a dataset grows: records added move only groups at the cuts, besides
a group that crosses its size limit (no group fills more than a quarter of a split, unless that leaves val and test
too few groups: `_grouped`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matreg.catalog import MERGED_ROW_PREFIX
from matreg.errors import ConfigError, MatregError
from matreg.formula import composition_key, reduced_formula
from matreg.ml.features import composition_of
from matreg.store import refuse_long_names

SPLITS = ("train", "val", "test")
METHODS = ("random", "composition", "chemsys", "provenance", "predefined")
PROVENANCE_SPLIT = frozenset({"dft", "experimental"})  # the provenance split trains on DFT, tests on experiment
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
LARGE_GROUP_SHARE = 0.25  # one group (composition, chemical system) fills at most this share of a split's target
FEW_ROWS = 4  # ... or this many rows, where that is more (repeated measurements of one composition in a small dataset)
DEFAULT_METHOD = "composition"  # no composition in two splits: the leakage-free default
_GROUP_COLUMN = {"random": "record_id", "chemsys": "chemsys"}  # the column whose values group rows (composition aside)


def assign_splits(
    rows: pd.DataFrame,
    method: str,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    assignment: Path | None = None,
) -> np.ndarray:
    """'train', 'val' or 'test' for each row (columns record_id, formula, chemsys, provenance, and optionally
    records: the stored records a resolved group's row stands for, which a predefined split by record_id matches)."""
    check_method(method, assignment)
    if method == "predefined":
        labels = _predefined(rows, Path(assignment))
        _require(labels, ("train", "test"), method)
        return labels
    fractions = _checked(fractions)
    if method == "provenance":
        labels = _provenance(rows, seed, fractions)
    else:
        keys = composition_keys(rows["formula"]) if method == "composition" else rows[_GROUP_COLUMN[method]]
        labels = _grouped(keys.to_numpy(), seed, fractions)
    _require(labels, [name for name, share in zip(SPLITS, fractions, strict=True) if share > 0], method)
    return labels


def split_settings(method: str, seed: int, fractions: Sequence[float]) -> dict:
    """What a split of `method` used, for meta.json: the seed and the fractions of the rows it deals out (those of
    the DFT rows for `provenance`, whose test split is the experimental rows); the file alone for `predefined`."""
    if method == "predefined":
        return {"method": method}
    if method == "provenance":
        train, val, _ = _checked(fractions)
        return {"method": method, "seed": seed, "dft_fractions": [train / (train + val), val / (train + val)]}
    return {"method": method, "seed": seed, "fractions": list(_checked(fractions))}


def check_method(method: str, assignment: Path | None) -> None:
    """ConfigError for an unknown split method, or an assignment file without the predefined split (or the reverse)."""
    if method not in METHODS:
        raise ConfigError(f"unknown split '{method}' (choose from {', '.join(METHODS)})")
    if (method == "predefined") != (assignment is not None):
        raise ConfigError("an assignment file goes with --split predefined, and only with it")


def _checked(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Train, val and test shares: three non-negative numbers summing to 1, train positive."""
    shares = tuple(float(share) for share in fractions)
    if len(shares) != 3 or min(shares) < 0 or shares[0] <= 0 or abs(sum(shares) - 1) > 1e-9:
        raise MatregError(f"split fractions must be three shares (train, val, test) summing to 1, got {fractions}")
    return shares


def _grouped(keys: np.ndarray, seed: int, fractions: Sequence[float]) -> np.ndarray:
    """Hand each whole group of rows (one per distinct key) to a split. Groups are ordered by a hash of seed and key
    (`_hashes`). A group too large for val or test (`_group_limits`) goes whole to a split it fits, picked by its
    hash (`_place_large`); each other group goes to the split its middle row falls in, the splits taking consecutive
    shares of those groups' rows, each share what the large groups left of its target (`_by_middle_row`).

    A group's place depends on its key and size and on the dataset's size, not on the order of the rows: records
    added to a dataset shift each cut by about as many rows, so only groups at the two cuts move (a permutation of
    all groups would deal them all again, and a model trained on one export would be tested on its own training
    data in the next). A group that grows past its limit, or falls below it as the dataset grows, moves whole
    between train and its place (val or test), and about as many rows of the groups at each cut the other way."""
    codes, distinct = pd.factorize(keys, sort=True)
    sizes = np.bincount(codes, minlength=len(distinct))
    targets = np.array(fractions, dtype=float) * len(keys)
    hashes = _hashes(distinct, seed)
    limits = _group_limits(sizes, targets)
    large = sizes > limits[1:][targets[1:] > 0].min(initial=np.inf)  # too large for val or for test
    group_split = np.zeros(len(sizes), dtype=np.int64)
    positions = (hashes[large] >> np.uint64(11)) / 2.0**53  # in [0, 1), exactly
    group_split[large] = _place_large(sizes[large], positions, targets, limits)
    taken = np.bincount(group_split[large], weights=sizes[large], minlength=3)
    small = np.flatnonzero(~large)
    order = small[np.argsort(hashes[small], kind="stable")]  # (keys are sorted: equal hashes keep the key order)
    group_split[order] = _by_middle_row(sizes[order], np.maximum(targets - taken, 0.0))
    return np.asarray(SPLITS, dtype=object)[group_split[codes]]


def _group_limits(sizes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each split, the most rows one group may put into it: a quarter of its target (`LARGE_GROUP_SHARE`: 40
    polymorphs of one composition do not fill a val split of 20, nor 34 measurements of one a val split of 36), but
    at least `FEW_ROWS` or, if the target is smaller, the target (a small dataset of duplicate measurements still
    has val and test), and at least one row (a single record is never too large); for val and test, at least the
    cap that leaves them enough groups to choose from (`_held_out_cap`)."""
    limits = np.maximum(np.maximum(LARGE_GROUP_SHARE * targets, np.minimum(FEW_ROWS, targets)), 1.0)
    held_out = targets[1:] > 0
    if held_out.any():
        limits[1:] = np.maximum(limits[1:], _held_out_cap(sizes, targets, limits[1:][held_out].min()))
    return limits


def _held_out_cap(sizes: np.ndarray, targets: np.ndarray, least: float) -> float:
    """The largest group val and test take: the smallest size from `least` up whose groups (that size or smaller)
    hold twice the rows val and test need together, so that a dataset of uniformly large groups (20 compositions of
    5 records) is still split, while one dominant group among many small ones goes to train; at most the smaller of
    the val and test targets, which is the cap where even that size does not hold enough."""
    ceiling = max(targets[1:][targets[1:] > 0].min(), 1.0)
    candidates = np.unique(np.append(sizes[(sizes > least) & (sizes < ceiling)], least))
    ordered = np.sort(sizes)
    held = np.append(0, np.cumsum(ordered))[np.searchsorted(ordered, candidates, side="right")]
    enough = candidates[held >= 2 * targets[1:].sum()]
    return float(enough[0]) if len(enough) else ceiling


def _place_large(sizes: np.ndarray, positions: np.ndarray, targets: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """For groups too large for val or test, a split each fits (within its limit), picked by the group's hash
    position in [0, 1) from those splits in proportion to their targets; the largest split for a group that fits
    none. A group's place depends on its own size and hash only (not on the other large groups)."""
    weights = np.where((sizes[:, None] <= limits) & (targets > 0), targets, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    bounds = np.cumsum(weights, axis=1) / np.where(total > 0, total, 1.0)
    chosen = (positions[:, None] >= bounds).sum(axis=1)
    return np.where(total[:, 0] > 0, chosen, int(np.argmax(targets)))


def _hashes(keys: Sequence, seed: int) -> np.ndarray:
    """A 64-bit hash of the seed and each key."""
    digests = [hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest() for key in keys]
    return np.array([int.from_bytes(digest, "big") for digest in digests], dtype=np.uint64)


def _by_middle_row(sizes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For groups laid out in order, the split (0, 1, 2) their middle row falls in, the splits taking consecutive
    shares of the rows in proportion to their targets."""
    if not len(sizes) or not targets.sum():
        return np.zeros(len(sizes), dtype=np.int64)
    middles = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
    bounds = np.cumsum(targets) / targets.sum()
    return np.minimum(np.searchsorted(bounds, middles, side="right"), 2)


def _provenance(rows: pd.DataFrame, seed: int, fractions: Sequence[float]) -> np.ndarray:
    """Experimental rows to test; DFT rows shared between train and val in the ratio of their fractions, a whole
    composition on one side (two polymorphs, or one formula from two sources, are not in both train and val)."""
    provenance = rows["provenance"].to_numpy()
    other = sorted(set(provenance) - PROVENANCE_SPLIT)
    if other:
        raise MatregError(f"the provenance split takes DFT and experimental rows only; this dataset also has {other}")
    dft = provenance == "dft"
    missing = [name for name, rows_of in (("DFT", dft), ("experimental", ~dft)) if not rows_of.any()]
    if missing:
        raise MatregError(
            f"the provenance split trains on DFT rows and tests on experimental ones, and this dataset ({len(rows)} "
            f"rows) has no {' and no '.join(missing)} rows"
        )
    labels = np.full(len(rows), "test", dtype=object)
    learn = fractions[0] + fractions[1]
    compositions = composition_keys(rows["formula"]).to_numpy()[dft]
    labels[dft] = _grouped(compositions, seed, (fractions[0] / learn, fractions[1] / learn, 0))
    return labels


def _require(labels: np.ndarray, needed: Sequence[str], method: str) -> None:
    """Refuse a split that leaves a needed part empty (too few rows or groups)."""
    empty = [name for name in needed if not (labels == name).any()]
    if empty:
        raise MatregError(f"the {method} split of {len(labels)} rows leaves {' and '.join(empty)} empty")


def read_assignment(path: Path) -> pd.DataFrame:
    """An assignment CSV: a `split` column and a `record_id` or a `formula` column (formulas are reduced); a record
    id, or a composition however its formula is written (TeSe and Te0.5Se0.5), given two splits is refused; so is a
    path too long for the file system (`refuse_long_names`)."""
    refuse_long_names(Path(path), f"cannot read assignment {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False).apply(lambda column: column.str.strip())
    except (OSError, ValueError) as exc:
        raise MatregError(f"cannot read assignment {path}: {exc}") from None
    key = next((name for name in ("record_id", "formula") if name in table.columns), None)
    if "split" not in table.columns or key is None:
        raise MatregError(f"{path}: an assignment needs the columns record_id,split or formula,split")
    bad = sorted(set(table["split"]) - set(SPLITS))
    if bad:
        raise MatregError(f"{path}: unknown split names {bad} (use {', '.join(SPLITS)})")
    if key == "formula":
        table["formula"] = [_reduced(text, path, line) for line, text in enumerate(table["formula"], start=2)]
    table = table[[key, "split"]].drop_duplicates()
    identity = table["formula"].map(composition_key) if key == "formula" else table["record_id"]
    _refuse_two_splits(table.assign(identity=identity), key, path)
    return table


def _reduced(text: str, path: Path, line: int) -> str:
    """The pymatgen-reduced formula of one assignment line; MatregError naming the line if it is no formula."""
    reduced = reduced_formula(text)
    if reduced is None:
        raise MatregError(f"{path}, line {line}: cannot read the formula '{text}'")
    return reduced


def _refuse_two_splits(table: pd.DataFrame, key: str, path: Path) -> None:
    """Refuse an `identity` (a record id, a composition) assigned to two different splits, naming its lines' keys."""
    splits = table.groupby("identity", sort=False)["split"].transform("nunique")
    twice = table[splits > 1].groupby("identity", sort=False)[key].agg(lambda keys: " and ".join(dict.fromkeys(keys)))
    if len(twice):
        what = "composition" if key == "formula" else key
        raise MatregError(f"{path}: {len(twice)} {what}(s) assigned to more than one split, e.g. {twice.tolist()[:3]}")


def _predefined(rows: pd.DataFrame, path: Path) -> np.ndarray:
    """The split of each row as the assignment file gives it: by composition (`formula,split`: the formulas'
    composition keys, TeSe for Te0.5Se0.5), or by record id, a resolved group's row matching any of its members'
    (`records`: a lone record's row that merges with another source's value later keeps its pin); a key of the file
    no row has, a row the file gives no split, or a row given two (by two members), is an error."""
    table = read_assignment(path)
    key = table.columns[0]
    if key == "formula":
        names = pd.DataFrame({"row": np.arange(len(rows)), "name": rows["formula"].map(composition_key).to_numpy()})
        given = dict(zip(table["formula"].map(composition_key), table["split"], strict=True))
    else:
        names = _record_names(rows)
        given = dict(zip(table["record_id"], table["split"], strict=True))
    _check_coverage(names, given, key, path)
    splits = names.assign(split=names["name"].map(given)).dropna(subset=["split"]).drop_duplicates(["row", "split"])
    _refuse_rows_given_two_splits(rows, splits, path)
    return splits.set_index("row")["split"].reindex(range(len(rows))).to_numpy(dtype=object)


def _record_names(rows: pd.DataFrame) -> pd.DataFrame:
    """Every record id that names a row (`row`: its position), its own first, then a resolved group's members."""
    own = rows["record_id"].reset_index(drop=True)
    members = rows["records"].reset_index(drop=True).str.split("; ") if "records" in rows else own
    names = pd.concat([own, members]).explode()
    return pd.DataFrame({"row": names.index, "name": names.to_numpy()}).drop_duplicates()


def _check_coverage(names: pd.DataFrame, given: dict[str, str], key: str, path: Path) -> None:
    """Refuse keys of the file that name no row, and rows that no key of the file names (each by its first name)."""
    have = set(names["name"])
    unknown = [value for value in given if value not in have]
    if unknown:
        renamed = any(value.startswith(MERGED_ROW_PREFIX) for value in unknown)
        hint = " (a resolved group's id changes with its group: pin its member records, its `records`)" * renamed
        raise MatregError(f"{path}: {len(unknown)} {key}(s) not in the dataset, e.g. {unknown[:3]}{hint}")
    named = names.loc[names["name"].isin(given.keys()), "row"]
    firsts = names.drop_duplicates("row")
    missing = sorted(set(firsts.loc[~firsts["row"].isin(named), "name"]))
    if missing:
        raise MatregError(f"{path}: {len(missing)} {key}(s) of the dataset have no split, e.g. {missing[:3]}")


def _refuse_rows_given_two_splits(rows: pd.DataFrame, splits: pd.DataFrame, path: Path) -> None:
    """Refuse a row (a resolved group's) that the file gives two splits through two of its member records."""
    twice = splits.loc[splits["row"].duplicated(keep=False), "row"].unique()
    if len(twice):
        examples = rows["record_id"].iloc[twice[:3]].tolist()
        raise MatregError(
            f"{path}: {len(twice)} row(s) given more than one split through their member records, e.g. {examples} "
            "(one row, one split: give its members one)"
        )


def _overlap(keys: pd.Series, labels: np.ndarray) -> dict:
    """How many distinct test keys (and test rows) also occur in train, and in train or val; how many val keys
    occur in train (val steers early stopping)."""
    test = set(keys[labels == "test"])
    train = set(keys[labels == "train"])
    val = set(keys[labels == "val"])
    shared = test & (train | val)
    return {
        "test": len(test),
        "in_train": len(test & train),
        "in_train_or_val": len(shared),
        "fraction": len(shared) / len(test) if test else 0.0,
        "test_rows_seen": int(keys[labels == "test"].isin(shared).sum()),
        "val": len(val),
        "val_in_train": len(val & train),
    }


def leakage_report(rows: pd.DataFrame, labels: np.ndarray) -> dict:
    """Test compositions and chemical systems that also occur in train/val: counts and fractions."""
    return {
        "formula": _overlap(composition_keys(rows["formula"]), labels),
        "chemsys": _overlap(rows["chemsys"], labels),
    }


def composition_keys(formulas: pd.Series) -> pd.Series:
    """One key per composition, whatever the formula unit: 'TeSe' and 'Te0.5Se0.5', 'Cu9S5' and 'Cu1.8S1' are one.

    The key is the elements with their atomic fractions rounded to 6 digits, as the features read them
    (`composition_of`); a formula that cannot be featurized keeps its text as key.
    """
    return formulas.map(_composition_key)


def _composition_key(formula: str) -> str:
    try:
        numbers, fractions = composition_of(formula)
    except MatregError:
        return formula
    return " ".join(f"{z}:{fraction:.6f}" for z, fraction in zip(numbers, fractions, strict=True))


def describe_leakage(report: dict) -> str:
    """The leakage report in one line, for the command line."""
    parts = [
        f"{part['in_train_or_val']} of {part['test']} test {label} ({part['fraction']:.1%})"
        for label, part in (("formulas", report["formula"]), ("chemical systems", report["chemsys"]))
    ]
    return f"leakage: {parts[0]} and {parts[1]} also occur in train/val"
