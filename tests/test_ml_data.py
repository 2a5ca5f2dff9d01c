"""Torch exports on real data subsets: round trip, determinism, leakage-free splits, crystal graphs, missing torch."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import LAB_EXAMPLE, REPO, as_an_older_matreg_stored, cli_import, matreg_with_files_capped
from pymatgen.core import Composition, Element, Structure
from typer.testing import CliRunner

from matreg.catalog import Catalog, Dataset, Resolution, load_catalog
from matreg.cli import app
from matreg.curate.review import record_decision
from matreg.errors import ConfigError, MatregError
from matreg.export import export_dataset
from matreg.ingest import run_ingest
from matreg.ml.dataset import ExportedDataset, collate, export_torch, provenance_warning
from matreg.ml.features import ELEMENT_PROPERTIES, featurize_compositions, stat_names
from matreg.ml.splits import assign_splits, composition_keys, read_assignment
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store
from matreg.units import convert

FIXTURES = Path(__file__).parent / "fixtures" / "ml"
EXPT_MAPPING = """dataset: roost-expt-gaps
formula_column: composition
id_column: material_id
provenance: experimental
citation: Zhuo, Mansouri Tehrani, Brgoch, J. Phys. Chem. Lett. 9, 1668 (2018)
license: MIT
columns:
  Eg: {property: band_gap, unit: eV}
"""
AFLOW_MAPPING = """dataset: aflow-egap
formula_column: formula
provenance: dft
method: PBE
citation: AFLOW via CrabNet benchmark data
license: MIT
columns:
  target: {property: band_gap, unit: eV}
"""
CATALOG = Catalog(
    datasets={
        "gaps": Dataset(description="DFT and experimental band gaps", version="1.0.0", properties=["band_gap"]),
        "expt-gaps": Dataset(
            description="experimental band gaps", version="1.0.0", properties=["band_gap"], provenance=["experimental"]
        ),
        "aflow-gaps": Dataset(
            description="AFLOW band gaps", version="1.0.0", properties=["band_gap"], sources=["aflow-egap"]
        ),
        "mp": Dataset(
            description="mp_20",
            version="1.0.0",
            properties=["formation_energy_per_atom", "band_gap"],
            sources=["mp-20"],
        ),
    }
)


MP20_MAPPING = """dataset: mp-20
formula_column: pretty_formula
id_column: material_id
structure_column: cif
provenance: dft
method: PBE
citation: Materials Project, mp_20
columns:
  formation_energy_per_atom: {unit: eV/atom}
  band_gap: {unit: eV}
"""


def _import(store: Store, data: Path, mapping_text: str, tmp: Path) -> None:
    mapping = tmp / f"{data.stem}.yaml"
    mapping.write_text(mapping_text, encoding="utf-8")
    run_ingest(LabConnector(data, load_mapping(mapping)), store)


@pytest.fixture(scope="module")
def gap_store(tmp_path_factory) -> Store:
    """Experimental gaps (two real sources, one with meV values) and AFLOW DFT gaps."""
    tmp = tmp_path_factory.mktemp("gaps")
    store = Store(tmp / "store")
    _import(store, FIXTURES / "expt_non_metals.csv", EXPT_MAPPING, tmp)
    _import(store, FIXTURES / "aflow_egap.csv", AFLOW_MAPPING, tmp)
    run_ingest(LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml")), store)
    return store


@pytest.fixture(scope="module")
def mp_store(tmp_path_factory) -> Store:
    tmp = tmp_path_factory.mktemp("mp")
    store = Store(tmp / "store")
    _import(store, FIXTURES / "mp_20_biternary.csv.gz", MP20_MAPPING, tmp)
    return store


def _hashes(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.name != "meta.json"
    }


def _sides(records: pd.DataFrame, column: str) -> tuple[set, set]:
    test = records["split"] == "test"
    return set(records.loc[test, column]), set(records.loc[~test, column])


def test_export_round_trips_with_targets_in_the_canonical_unit(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", split="random", seed=3)
    data = ExportedDataset(tmp_path / "out")
    stored = gap_store.query("SELECT record_id, value, unit, original_value, original_unit FROM properties")
    assert sorted(stored["record_id"]) == data.records["record_id"].tolist() and len(stored) == meta["n"] == 430
    stored = stored.set_index("record_id").loc[data.records["record_id"]]
    assert meta["target"] == data.meta["target"] and meta["target"]["unit"] == "eV" and set(stored["unit"]) == {"eV"}
    assert meta["provenance"] == {"dft": 160, "experimental": 270}
    assert (meta["version"], meta["released"]) == ("1.0.0", False)  # the store as it is now, not release 1.0.0
    np.testing.assert_array_equal(data.records["target"].to_numpy(), stored["value"].to_numpy())
    targets = data.records.set_index("record_id")["target"]
    mev = stored.loc["demo-lab-bandgaps:roost-5"]
    assert mev["original_unit"] == "meV" and targets[mev.name] == pytest.approx(mev["original_value"] / 1000)
    expected = featurize_compositions(data.records["formula"])
    for name in ("train", "val", "test"):
        part = data.split(name)
        rows = data.records.index[data.records["split"] == name].to_numpy()
        assert part.record_id == data.records["record_id"].to_numpy()[rows].tolist()
        for key, array in expected.items():
            np.testing.assert_array_equal(getattr(part, key).numpy(), array[rows])
        assert part.target.numpy().dtype == np.float64  # every digit: float32 would round -34000 eV/atom by 2 meV
        np.testing.assert_array_equal(part.target.numpy(), stored["value"].to_numpy()[rows])
    assert sum(meta["n_per_split"].values()) == 430 and meta["n_per_split"]["train"] == 344


def test_a_molar_target_is_per_mole_of_atoms_one_number_per_composition(tmp_path):
    store = Store(tmp_path / "store")
    rows = "id,formula,dHf\nh1,Fe4O6,-1648.4\nh2,Fe2O3,-824.2\nh3,Mg2O2,-1203.2\nh4,MgO,-601.6\nh5,Te0.5Se0.5,-10\n"
    rows += "h6,TeSe,-20\nh7,Fe0.947O,-271.993\n"  # FeO's scale, not Fe947O1000's
    rows += "".join(f"x{n},Li{n}O,-{n}\n" for n in range(1, 20))
    mapping = "dataset: dhf\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    mapping += "  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n"
    _import(store, _written(tmp_path / "dhf.csv", rows), mapping, tmp_path)
    catalog = Catalog(datasets={"dhf": Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"])})
    meta = export_torch(store, catalog, "dhf", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    targets = records.loc[[f"dhf:h{n}" for n in range(1, 8)], "target"].tolist()
    assert targets == pytest.approx([-164.84, -164.84, -300.8, -300.8, -10, -10, -271.993 / 1.947], abs=1e-3)
    assert meta["target"]["unit"] == "kJ/mol-atom"
    assert convert(-164.84, meta["target"]["unit"], "eV/atom") == pytest.approx(-1.70845, abs=1e-5)  # matreg reads it
    assert meta["target"]["description"] == (  # the store's values are per mole of formula units, the export's not
        "Standard enthalpy of formation, per mole of atoms (the stored value per mole of formula units divided by its "
        "atoms)."
    )


def test_a_target_carries_its_uncertainty_in_the_targets_unit_which_training_never_sees(tmp_path):
    store = Store(tmp_path / "store")
    rows = "id,formula,S,dHf,ddHf\nz,ZnO,42.4(3),-350.5,4\nm,MgO,26.95,-601.6,\n"  # MgO's uncertainties unstated
    mapping = "dataset: unc\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    mapping += "  S: {property: entropy, unit: J/(mol*K)}\n"
    mapping += "  dHf: {property: formation_energy_per_atom, unit: kJ/mol, uncertainty_field: ddHf}\n"
    _import(store, _written(tmp_path / "unc.csv", rows), mapping, tmp_path)
    properties = {"s": "entropy", "dhf": "formation_energy_per_atom"}
    catalog = Catalog(datasets={name: Dataset(description="d", version="1", properties=[prop])
                                for name, prop in properties.items()})  # fmt: skip
    in_train = {"split": "random", "fractions": (1.0, 0.0, 0.0)}
    exported = {name: export_torch(store, catalog, name, tmp_path / name, **in_train) for name in properties}
    assert exported["s"]["target"]["unit"] == "J/(mol-atom*K)" and exported["dhf"]["target"]["unit"] == "eV/atom"
    shown = {}
    for name in properties:
        records = ExportedDataset(tmp_path / name).records.set_index("record_id")
        shown[name] = records.loc[["unc:z", "unc:m"], ["target", "target_uncertainty"]].astype(object)
        shown[name] = shown[name].where(shown[name].notna(), None).values.tolist()
    assert shown["s"] == [[21.2, pytest.approx(0.15)], [13.475, None]]  # per mole of atoms, as its value
    ev = 96.485332  # kJ/mol per eV: ZnO's ±4 kJ/mol was stored per atom, as its value, on import
    assert shown["dhf"] == [
        [pytest.approx(-350.5 / ev / 2), pytest.approx(4 / ev / 2)],
        [pytest.approx(-601.6 / ev / 2), None],
    ]
    again = export_torch(store, catalog, "s", tmp_path / "again", **in_train)
    assert again["files"] == exported["s"]["files"]  # byte-identical payload
    train = ExportedDataset(tmp_path / "s").split("train")
    assert set(train.tensors) == {"fractions", "stats", "element_z", "element_frac", "target", "row"}


def test_the_target_bounds_give_an_ions_and_a_solutes_that_their_negative_values_lie_within(tmp_path):
    # meta.json gave entropy's bounds [0, 5000] alone: Mg2+'s -138.1 J/(mol*K) and MgSO4(aq)'s -118.0 (-19.67 per
    # mole of atoms), stored within the ion bounds [-5000, 5000] as conventional values, lay outside what it recorded
    store = Store(tmp_path / "store")
    rows = "id,formula,S\nmg,Mg[+2],-138.1\naq,MgSO4(aq),-118.0\nnacl,NaCl,72.1\nmgo,MgO,26.9\n"
    mapping = "dataset: ions\nformula_column: formula\nid_column: id\nprovenance: experimental\ncitation: c\n"
    mapping += "columns:\n  S: {property: entropy, unit: J/(mol*K)}\n"
    _import(store, _written(tmp_path / "ions.csv", rows), mapping, tmp_path)
    catalog = Catalog(datasets={"ions": Dataset(description="d", version="1", properties=["entropy"])})
    meta = export_torch(store, catalog, "ions", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    assert (meta["target"]["bounds"], meta["target"]["ion_bounds"]) == ([0, 5000], [-5000, 5000])
    # the bounds are the stored values' (per formula unit), the targets per mole of atoms: meta.json said neither
    assert (meta["target"]["bounds_unit"], meta["target"]["unit"]) == ("J/(mol*K)", "J/(mol-atom*K)")
    targets = ExportedDataset(tmp_path / "out").records.set_index("record_id")["target"]
    assert targets[["ions:mg", "ions:aq"]].tolist() == pytest.approx([-138.1, -118.0 / 6])
    assert targets.between(*meta["target"]["ion_bounds"]).all()


def test_a_record_without_atoms_is_left_out_with_the_reason(tmp_path):
    store = Store(tmp_path / "store")
    rows = "id,formula,S\ne,e-,20.979\n" + "".join(f"x{n},Li{n}O,{n}\n" for n in range(1, 20))  # e-: the electron
    mapping = "formula_column: formula\nid_column: id\ncitation: c\n"
    mapping += "columns:\n  S: {property: entropy, unit: J/(mol*K)}\n"
    _import(store, _written(tmp_path / "s.csv", rows), "dataset: s\n" + mapping, tmp_path)
    catalog = Catalog(datasets={"s": Dataset(description="d", version="1.0.0", properties=["entropy"])})
    meta = export_torch(store, catalog, "s", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records
    assert meta["left_out"] == {
        "s:e": "its formula unit e- has no atoms: no composition to featurize, no per-atom target"
    }
    assert meta["n"] == len(records) == 19 and "s:e" not in set(records["record_id"])
    assert np.isfinite(records["target"]).all()
    only = Catalog(datasets={"e": Dataset(description="d", version="1.0.0", properties=["entropy"], sources=["e"])})
    _import(store, _written(tmp_path / "e.csv", "id,formula,S\ne,e1-,20.979\n"), "dataset: e\n" + mapping, tmp_path)
    with pytest.raises(MatregError, match="has no values of entropy but of records without atoms: e:e$"):
        export_torch(store, only, "e", tmp_path / "only")


def test_composition_features_come_from_pymatgen_element_data():
    features = featurize_compositions(["CuBr", "Hg0.7Cd0.3Te", "CuBr"])
    cu, br = Element("Cu"), Element("Br")
    assert features["fractions"][0, [cu.Z - 1, br.Z - 1]].tolist() == [0.5, 0.5] and features["fractions"][0].sum() == 1
    assert features["element_z"][0].tolist() == [29, 35, 0] and features["element_frac"][1].sum() == pytest.approx(1)
    stats = dict(zip(stat_names(), features["stats"][0], strict=True))
    assert stats["X_mean"] == pytest.approx((cu.X + br.X) / 2) and stats["X_range"] == pytest.approx(br.X - cu.X)
    assert stats["atomic_mass_std"] == pytest.approx(abs(float(cu.atomic_mass) - float(br.atomic_mass)) / 2, rel=1e-6)
    assert stats["n_elements"] == 2 and len(stat_names()) == 5 * len(ELEMENT_PROPERTIES) + 1
    helium = featurize_compositions(["HeNe"])["stats"]  # pymatgen has no electronegativity for noble gases
    assert np.isfinite(helium).all()
    np.testing.assert_array_equal(features["stats"][0], features["stats"][2])
    assert featurize_compositions(["AlF4[-1]"])["element_z"][0].tolist() == [9, 13]  # an ion, as the store writes it


def test_two_exports_of_the_same_store_are_byte_identical(gap_store, mp_store, tmp_path):
    for store, name in ((gap_store, "gaps"), (mp_store, "mp")):
        first = export_torch(store, CATALOG, name, tmp_path / name / "a", split="composition", seed=7)
        second = export_torch(store, CATALOG, name, tmp_path / name / "b", split="composition", seed=7)
        again = export_torch(store, CATALOG, name, tmp_path / name / "a", split="composition", seed=7)
        assert _hashes(tmp_path / name / "a") == _hashes(tmp_path / name / "b")
        assert (
            first["files"] == second["files"] == again["files"] and first["content_sha256"] == second["content_sha256"]
        )
    assert set(first["files"]) == {"records.parquet", "composition.npz", "graph.npz"}
    other = export_torch(mp_store, CATALOG, "mp", tmp_path / "c", split="composition", seed=8)
    assert other["files"]["records.parquet"] != first["files"]["records.parquet"]


@pytest.mark.parametrize("method", ["composition", "chemsys"])
def test_group_splits_have_zero_leakage(gap_store, tmp_path, method):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", split=method, seed=11)
    records = ExportedDataset(tmp_path / "out").records
    test, seen = _sides(records, "formula")
    assert test and not test & seen
    assert meta["split"]["leakage"]["formula"]["in_train_or_val"] == 0
    if method == "chemsys":
        test, seen = _sides(records, "chemsys")
        assert not test & seen and meta["split"]["leakage"]["chemsys"]["fraction"] == 0
    assert min(meta["n_per_split"].values()) > 0


def test_the_default_split_keeps_each_composition_on_one_side(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    assert meta["split"]["method"] == "composition"
    assert (
        meta["split"]["leakage"]["formula"]["in_train_or_val"]
        == meta["split"]["leakage"]["formula"]["val_in_train"]
        == 0
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_large_group_does_not_overfill_a_small_split(seed):
    # 40 polymorphs of one composition and 160 compositions of one record each: val and test get 20 records each.
    formulas = ["SiO2"] * 40 + [f"Li{n}O" for n in range(1, 161)]
    rows = pd.DataFrame({"record_id": [f"r{n}" for n in range(200)], "formula": formulas})
    labels = pd.Series(assign_splits(rows, "composition", seed))
    assert labels[:40].nunique() == 1 and labels.value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}


@pytest.mark.parametrize("method", ["random", "composition"])
def test_records_added_to_a_dataset_move_only_groups_at_the_split_boundaries(method):
    formulas = [f"Li{n}O{m}" for n in range(1, 41) for m in range(1, 26)]  # 1,000 compositions
    rows = pd.DataFrame({"record_id": [f"r{n}" for n in range(1000)], "formula": formulas})
    before = assign_splits(rows, method, seed=3)
    grown = pd.concat([rows, pd.DataFrame({"record_id": ["r1000", "r1001"], "formula": ["Li3O5", "NaCl"]})])
    after = assign_splits(grown.reset_index(drop=True), method, seed=3)[:1000]
    assert (before != after).sum() <= 4  # a permutation of the groups dealt some 300 records to other splits
    assert pd.Series(before).value_counts().to_dict() == {"train": 800, "val": 100, "test": 100}
    shuffled = rows.sample(frac=1, random_state=0)  # the same dataset read in another order
    assert (assign_splits(shuffled, method, seed=3) == before[shuffled.index]).all()


# A lab's export: one composition measured 34 times (a lab file and other sources), one 8 times, a few 6 and 3 times,
# pairs and single records: 348 records, val and test 34.8 each.
GROUP_SIZES = [34, 8, 6, 6, 6] + [3] * 10 + [2] * 30 + [1] * 198


def _measurements(groups: Sequence[int | None]) -> pd.DataFrame:
    """One row per record: group n is the composition Li(n+1)NaO, None a composition of its own (KmCl)."""
    formulas = [f"Li{n + 1}NaO" if n is not None else f"K{position + 1}Cl" for position, n in enumerate(groups)]
    return pd.DataFrame({"record_id": [f"r{position}" for position in range(len(groups))], "formula": formulas})


@pytest.mark.parametrize(
    ("added", "crossing"),
    [
        ([0], None),  # a 35th: over the smaller of val and test, it was placed apart and up to 101 records moved
        ([1], 1),  # the 8th becomes the 9th: more than a quarter of val and test (8.7 rows), so it goes to train
        ([20], None),  # a pair becomes a triple
        ([None], None),  # a new composition
        ([None, None, 5, 100, 0], None),
    ],
)
def test_records_added_to_groups_of_several_sizes_move_only_groups_at_the_cuts(added, crossing):
    groups = [n for n, size in enumerate(GROUP_SIZES) for _ in range(size)]
    rows, grown = _measurements(groups), _measurements(groups + added)
    across = np.array(groups) == crossing  # the group that grows past its limit may move whole
    for seed in range(20):
        before = assign_splits(rows, "composition", seed)
        after = assign_splits(grown, "composition", seed)[: len(groups)]
        moved = before != after
        # Each cut shifts by at most the rows added and splits a group of at most 8 rows (the largest that val and
        # test take); a group crossing its limit moves whole, and as many rows move back at each cut.
        assert moved.sum() <= len(added) + 2 * 8 + 3 * across.sum(), seed
        assert len(set(after[across])) <= 1
        swapped = moved & np.isin(before, ["train", "test"]) & np.isin(after, ["train", "test"])
        assert not (swapped & ~across).any(), seed  # nothing else jumps from train to test or back


def test_no_group_fills_more_than_a_quarter_of_val_or_test_and_the_fractions_hold():
    groups = pd.Series([n for n, size in enumerate(GROUP_SIZES) for _ in range(size)])
    rows = _measurements(groups.tolist())
    for seed in range(20):
        labels = pd.Series(assign_splits(rows, "composition", seed))
        assert (labels.groupby(groups).nunique() == 1).all()
        for part in ("val", "test"):  # the 34 measurements of one composition were 34 of 36 val records
            assert groups[labels == part].value_counts().max() <= 0.25 * 34.8, (seed, part)
            assert abs((labels == part).sum() - 34.8) <= 3, (seed, part)
    shuffled = rows.sample(frac=1, random_state=0)  # the same dataset read in another order
    assert (assign_splits(shuffled, "composition", 3) == assign_splits(rows, "composition", 3)[shuffled.index]).all()


def test_a_group_of_more_than_a_quarter_of_val_or_test_always_goes_to_train():
    keys = pd.Series(["Fe-O"] * 15 + [f"G{n}" for n in range(385)])  # val and test: 40 rows each, a quarter 10
    rows = pd.DataFrame({"record_id": [f"r{n}" for n in range(len(keys))], "chemsys": keys})
    for seed in range(20):
        labels = pd.Series(assign_splits(rows, "chemsys", seed))
        assert set(labels[keys == "Fe-O"]) == {"train"}, seed
        assert [(labels == part).sum() for part in ("val", "test")] == [40, 40], seed


@pytest.mark.parametrize(
    "sizes",
    [
        [5] * 20,  # 20 chemical systems of 5 records: each over 4 rows, the cap of val and test
        [6] * 33 + [1, 1],  # 200 records of which only the 2 single ones were under the cap
        [203, 178, 126, 116, 108, 101, 87, 82, 79, 78, 66, 66, 66, 64, 63, 59, 55, 50, 50, 49],  # matbench glass's
    ],  # 20 largest chemical systems
)
def test_a_dataset_of_groups_that_are_all_large_still_fills_val_and_test(sizes):
    # Capping groups at a quarter of val and test sent every group to train: val and test were empty or 1 row each.
    keys = pd.Series([f"G{n}" for n, size in enumerate(sizes) for _ in range(size)])
    rows = pd.DataFrame({"record_id": [f"r{n}" for n in range(len(keys))], "chemsys": keys})
    for seed in range(10):
        labels = pd.Series(assign_splits(rows, "chemsys", seed))
        assert (labels.groupby(keys).nunique() == 1).all()
        held_out = keys[labels != "train"].value_counts()
        for part in ("val", "test"):  # within one group's size of the target
            assert abs((labels == part).sum() - 0.1 * len(keys)) <= held_out.max(), (seed, part)


def test_large_groups_go_where_they_fit_and_small_datasets_are_split_or_refused_with_the_reason():
    groups = [f"Li{n}O" for n in range(1, 6) for _ in range(15)] + [f"Na{n}Cl" for n in range(1, 26)]
    rows = pd.DataFrame({"record_id": [f"r{n}" for n in range(100)], "formula": groups})
    labels = pd.Series(assign_splits(rows, "composition", 0, (0.2, 0.1, 0.7)))
    # Groups of 15 are too large for train (a quarter of 20) and val (4 rows): only test (70) takes them, and the 25
    # single records share the room train and val have left.
    assert (labels[:75] == "test").all() and labels.value_counts().to_dict() == {"train": 17, "val": 8, "test": 75}
    nine = pd.DataFrame({"record_id": [f"r{n}" for n in range(9)], "formula": [f"Li{n}O" for n in range(1, 10)]})
    assert pd.Series(assign_splits(nine, "random", 0)).value_counts().to_dict() == {"train": 7, "val": 1, "test": 1}
    with pytest.raises(MatregError, match=r"and this dataset \(9 rows\) has no experimental rows$"):
        assign_splits(nine.assign(provenance="dft"), "provenance", 0)


def test_one_composition_written_two_ways_lands_in_one_split(tmp_path):
    # The experimental gap files hold such pairs (Te0.5Se0.5 / TeSe, Cu1.8S1 / Cu9S5): one composition, two formulas.
    pairs = [("TeSe", "Te0.5Se0.5"), ("Cu9S5", "Cu1.8S1"), ("SiO2", "Si0.5O1"), ("NaCl", "Na0.5Cl0.5")]
    pairs += [(formula, formula) for formula in FORMULAS_20]
    lines = [
        f"g{n}{side},{formula},{1 + n / 10},\n"
        for n, pair in enumerate(pairs)
        for side, formula in zip("ab", pair, strict=True)
    ]
    store = _lab_store(tmp_path, "id,formula,pbe,hse\n" + "".join(lines))
    meta = export_torch(store, LAB_CATALOG, "lab", tmp_path / "out", split="composition", seed=2)
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    for n in range(4):
        assert records.loc[f"gaps-lab:g{n}a", "split"] == records.loc[f"gaps-lab:g{n}b", "split"]
    assert meta["split"]["leakage"]["formula"]["in_train_or_val"] == 0
    leakage = export_torch(store, LAB_CATALOG, "lab", tmp_path / "random", split="random", seed=2)["split"]["leakage"]
    random = ExportedDataset(tmp_path / "random").records
    test, seen = (set(composition_keys(random.loc[part, "formula"])) for part in _test_and_seen(random))
    assert (leakage["formula"]["test"], leakage["formula"]["in_train_or_val"]) == (len(test), len(test & seen))


def _test_and_seen(records: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    test = records["split"] == "test"
    return test, ~test


def test_random_split_of_repeated_formulas_reports_leakage(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "expt-gaps", tmp_path / "out", split="random", seed=0)
    records = ExportedDataset(tmp_path / "out").records
    test, seen = _sides(records, "formula")
    leakage = meta["split"]["leakage"]["formula"]
    assert leakage["in_train_or_val"] == len(test & seen) > 0 and leakage["test"] == len(test)
    assert leakage["fraction"] == pytest.approx(len(test & seen) / len(test))


def test_provenance_split_tests_on_experiment_only(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", split="provenance", seed=1)
    records = ExportedDataset(tmp_path / "out").records
    experimental = records["provenance"] == "experimental"
    assert (records.loc[experimental, "split"] == "test").all() and (
        records.loc[~experimental, "split"] != "test"
    ).all()
    assert meta["provenance_by_split"]["test"] == {"experimental": 270}
    assert set(meta["provenance_by_split"]["train"]) == set(meta["provenance_by_split"]["val"]) == {"dft"}
    assert meta["split"]["leakage"]["formula"]["val_in_train"] == 0
    # what the split used: the DFT rows shared 8:1 (the default fractions' train and val), not [0.8, 0.1, 0.1]
    used = {key: value for key, value in meta["split"].items() if key != "leakage"}
    assert used == {
        "method": "provenance",
        "seed": 1,
        "dft_fractions": pytest.approx([8 / 9, 1 / 9]),
        "assignment": None,
    }


def test_a_provenance_split_of_measured_values_only_says_there_are_no_dft_rows(gap_store, tmp_path):
    with pytest.raises(MatregError) as refused:
        export_torch(gap_store, CATALOG, "expt-gaps", tmp_path / "out", split="provenance")
    assert str(refused.value) == (
        "the provenance split trains on DFT rows and tests on experimental ones, and this dataset (270 rows) has no "
        "DFT rows"
    )


def test_provenance_split_keeps_each_composition_of_dft_records_on_one_side(tmp_path):
    polymorphs = "".join(f"g{n}{copy},{f},{1 + n / 10},\n" for n, f in enumerate(FORMULAS_20) for copy in "ab")
    store = _lab_store(tmp_path, "id,formula,pbe,hse\n" + polymorphs)
    measured = "dataset: expt\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {unit: eV}\n"
    _import(store, _written(tmp_path / "expt.csv", "id,formula,gap\ne1,ZnO,3.4\ne2,GaN,3.5\n"), measured, tmp_path)
    meta = export_torch(store, LAB_CATALOG, "lab", tmp_path / "out", split="provenance", seed=3)
    records = ExportedDataset(tmp_path / "out").records
    train, val = (set(records.loc[records["split"] == part, "formula"]) for part in ("train", "val"))
    assert val and not train & val  # the two records of a formula: both in train or both in val
    assert meta["split"]["leakage"]["formula"]["val_in_train"] == 0


def test_predefined_split_reproduces_the_assignment(gap_store, tmp_path):
    ids = gap_store.query("SELECT record_id FROM materials ORDER BY record_id")["record_id"]
    given = pd.DataFrame(
        {"record_id": ids, "split": np.array(["train", "train", "val", "test"])[np.arange(len(ids)) % 4]}
    )
    given.to_csv(tmp_path / "assignment.csv", index=False)
    meta = export_torch(
        gap_store, CATALOG, "gaps", tmp_path / "out", split="predefined", assignment=tmp_path / "assignment.csv"
    )
    records = ExportedDataset(tmp_path / "out").records
    assert records.set_index("record_id")["split"].to_dict() == given.set_index("record_id")["split"].to_dict()
    assert meta["split"]["assignment"]["file"] == "assignment.csv"
    assert "fractions" not in meta["split"] and "seed" not in meta["split"]  # the file alone splits
    given.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(MatregError, match="have no split"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "x", split="predefined", assignment=tmp_path / "short.csv")
    pd.concat([given, pd.DataFrame({"record_id": ["nowhere:1"], "split": ["test"]})]).to_csv(
        tmp_path / "extra.csv", index=False
    )
    with pytest.raises(MatregError, match="not in the dataset"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "x", split="predefined", assignment=tmp_path / "extra.csv")


def test_an_assignment_line_whose_formula_cannot_be_read_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "folds.csv"
    path.write_text("formula,split\nO2Si,train\nXx2,test\n", encoding="utf-8")
    with pytest.raises(MatregError, match=f"^{path}, line 3: cannot read the formula 'Xx2'$"):
        read_assignment(path)
    path.write_text("formula,split\nO2Si,train\nNaCl,test\n", encoding="utf-8")
    assert read_assignment(path).values.tolist() == [["SiO2", "train"], ["NaCl", "test"]]


def test_predefined_split_by_formula_matches_reduced_formulas(gap_store, tmp_path):
    crabnet = pd.read_csv(FIXTURES / "aflow_egap.csv")  # formulas as 'Ba1I2O6', the store has 'Ba(IO3)2'
    crabnet["split"] = np.where(np.arange(len(crabnet)) % 5 == 0, "test", "train")
    crabnet[["formula", "split"]].to_csv(tmp_path / "folds.csv", index=False)
    export_torch(
        gap_store, CATALOG, "aflow-gaps", tmp_path / "out", split="predefined", assignment=tmp_path / "folds.csv"
    )
    records = ExportedDataset(tmp_path / "out").records
    expected = {Composition(f).reduced_formula: s for f, s in zip(crabnet["formula"], crabnet["split"], strict=True)}
    assert records.set_index("formula")["split"].to_dict() == expected and (records["split"] == "test").sum() == 32


def _nacl(directory: Path) -> tuple[ExportedDataset, dict]:
    """An export and the graph item of its rock-salt NaCl record (mp-22862)."""
    data = ExportedDataset(directory)
    part = data.graph_split(data.records.set_index("record_id").loc["mp-20:mp-22862", "split"])
    return data, part[part.record_id.index("mp-20:mp-22862")]


def test_crystal_graph_of_rock_salt_matches_pymatgen(mp_store, tmp_path):
    structure = Structure.from_str(_cif("mp-22862"), fmt="cif")
    export_torch(mp_store, CATALOG, "mp", tmp_path / "near", split="random", cutoff=3.0)
    export_torch(mp_store, CATALOG, "mp", tmp_path / "far", split="random")
    for name, per_atom in (("near", 6), ("far", 12)):
        data, nacl = _nacl(tmp_path / name)
        assert nacl["atom_z"].tolist() == [11, 17] and nacl["n_atoms"].tolist() == [2]
        assert np.bincount(nacl["edge_src"].numpy()).tolist() == [per_atom, per_atom]
        centers, _, _, distances = structure.get_neighbor_list(r=data.meta["featurizers"]["graph"]["cutoff_A"])
        for atom in (0, 1):
            mine = np.sort(nacl["edge_dist"].numpy()[nacl["edge_src"].numpy() == atom])
            np.testing.assert_allclose(mine, np.sort(distances[centers == atom])[:per_atom], rtol=1e-6)
    _, nacl = _nacl(tmp_path / "near")  # within 3 A: the six Cl around Na and the six Na around Cl, at a/sqrt(2)
    assert (nacl["edge_dst"].numpy() == 1 - nacl["edge_src"].numpy()).all()
    np.testing.assert_allclose(nacl["edge_dist"].numpy(), structure.lattice.a / np.sqrt(2), rtol=1e-6)
    assert len(structure.get_neighbors(structure[0], 3.0)) == 6


def _cif(material_id: str) -> str:
    frame = pd.read_csv(FIXTURES / "mp_20_biternary.csv.gz", index_col=0)
    return frame.loc[frame["material_id"] == material_id, "cif"].iloc[0]


def test_graph_batches_concatenate_crystals_with_offset_edges(mp_store, tmp_path):
    import torch

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    part = ExportedDataset(tmp_path / "out").graph_split("train")
    seen = []
    for batch in part.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert batch["atom_z"].shape == batch["crystal_index"].shape and len(batch["target"]) == len(batch["n_atoms"])
        assert (batch["crystal_index"][batch["edge_src"]] == batch["crystal_index"][batch["edge_dst"]]).all()
        starts = torch.cumsum(batch["n_atoms"], 0) - batch["n_atoms"]
        for k, position in enumerate(batch["index"].tolist()):
            alone = part[position]
            edges = batch["crystal_index"][batch["edge_src"]] == k
            assert torch.equal(batch["atom_z"][batch["crystal_index"] == k], alone["atom_z"])
            assert torch.equal(batch["edge_src"][edges] - starts[k], alone["edge_src"])
            assert torch.equal(batch["edge_dst"][edges] - starts[k], alone["edge_dst"])
            assert torch.equal(batch["edge_dist"][edges], alone["edge_dist"])
            assert batch["target"][k] == alone["target"]
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(part)))


def test_a_torch_dataloader_batches_graph_splits_with_the_splits_collate_as_batches_does(mp_store, tmp_path):
    from torch.utils.data import DataLoader

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    part = ExportedDataset(tmp_path / "out").graph_split("train")
    loaded = list(DataLoader(part, batch_size=4, collate_fn=part.collate))  # crystals of several sizes
    expected = list(part.batches(4))
    assert len(expected) == -(-len(part) // 4)
    _assert_same_batches(loaded, expected)


@pytest.mark.parametrize("graphs", [False, True])
def test_collate_batches_the_samples_it_is_given_from_any_split_or_wrapper(mp_store, tmp_path, graphs):
    # split.collate read its own split again at each sample's index: a validation loader given the train split's
    # collate served train rows, and a wrapper's transformed targets were thrown away
    import torch
    from torch.utils.data import ConcatDataset, DataLoader

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    export = ExportedDataset(tmp_path / "out")
    train, val = (export.graph_split(name) if graphs else export.split(name) for name in ("train", "val"))
    served = next(iter(DataLoader(val, batch_size=len(val), collate_fn=train.collate)))
    assert torch.equal(served["target"], val.target)
    assert torch.equal(served["row"], torch.from_numpy(np.flatnonzero(export.records["split"] == "val")))
    assert export.records["record_id"].iloc[served["row"].tolist()].tolist() == val.record_id
    both = list(DataLoader(ConcatDataset([train, val]), batch_size=len(train) + len(val), collate_fn=collate))
    assert torch.equal(both[0]["target"], torch.cat([train.target, val.target]))
    if graphs:
        assert torch.equal(
            both[0]["n_atoms"], torch.cat([train.batches(len(train)).__next__()["n_atoms"], served["n_atoms"]])
        )
        whole = next(val.batches(len(val)))
        assert all(torch.equal(served[key], whole[key]) for key in whole)

    scaled_targets = _one_by_one(val, lambda sample: sample | {"target": sample["target"] * 100})
    scaled = next(iter(DataLoader(scaled_targets, batch_size=len(val), collate_fn=collate)))
    assert torch.allclose(scaled["target"], val.target * 100)


def _one_by_one(split, change=lambda sample: sample):
    """`split` behind a Dataset of `__getitem__` and `__len__` only: a DataLoader draws its samples one at a time,
    as it drew a split's before splits had `__getitems__`; each sample as `change` makes it (a user's wrapper)."""
    import torch

    class OneByOne(torch.utils.data.Dataset):
        def __len__(self):
            return len(split)

        def __getitem__(self, index):
            return change(split[index])

    return OneByOne()


def _loaded(dataset, seed: int = 0, **options) -> list:
    """Every batch of a DataLoader over `dataset`, its shuffle drawn from `seed`."""
    import torch
    from torch.utils.data import DataLoader

    return list(DataLoader(dataset, generator=torch.Generator().manual_seed(seed), **options))


def _assert_same_batches(mine: list, theirs: list) -> None:
    import torch

    assert len(mine) == len(theirs) > 1
    for one, other in zip(mine, theirs, strict=True):
        assert one.keys() == other.keys()
        assert all(one[key].dtype == other[key].dtype and torch.equal(one[key], other[key]) for key in other)


@pytest.mark.parametrize("graphs", [False, True])
def test_a_dataloader_over_a_split_serves_the_batches_it_served_sample_by_sample(mp_store, tmp_path, graphs):
    # a split had no __getitems__: a DataLoader built each batch from one dict of tensor slices a sample, 25-66x as
    # slow as batches(); it now takes the batch batches() slices, and every way of loading a split must be unchanged
    import torch
    from torch.utils.data import ConcatDataset, Subset

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    export = ExportedDataset(tmp_path / "out")
    train, val = (export.graph_split(name) if graphs else export.split(name) for name in ("train", "val"))
    shuffled = {"batch_size": 4, "shuffle": True, "drop_last": True, "collate_fn": collate}
    _assert_same_batches(_loaded(train, **shuffled), _loaded(_one_by_one(train), **shuffled))
    _assert_same_batches(_loaded(train, batch_size=5, collate_fn=collate), list(train.batches(5)))
    picked = [7, 0, 3, 11, 2, 5, 9, 1]
    subset = _loaded(Subset(train, picked), batch_size=3, collate_fn=collate)
    _assert_same_batches(subset, _loaded(Subset(_one_by_one(train), picked), batch_size=3, collate_fn=collate))
    assert torch.cat([batch["index"] for batch in subset]).tolist() == picked
    assert torch.equal(torch.cat([batch["row"] for batch in subset]), train.tensors["row"][picked])
    both = ConcatDataset([train, val])
    _assert_same_batches(
        _loaded(both, batch_size=4, collate_fn=collate),
        _loaded(ConcatDataset([_one_by_one(train), _one_by_one(val)]), batch_size=4, collate_fn=collate),
    )
    forked = shuffled | {"num_workers": 2, "multiprocessing_context": "fork"}
    _assert_same_batches(_loaded(train, seed=1, **forked), _loaded(_one_by_one(train), seed=1, **shuffled))
    if not graphs:  # torch's default collation stacks composition samples (a crystal graph's sizes differ)
        defaults = {"batch_size": 4, "shuffle": True}
        _assert_same_batches(_loaded(train, **defaults), _loaded(_one_by_one(train), **defaults))
        _assert_same_batches(_loaded(train, **defaults), _loaded(train, **defaults, collate_fn=collate))
        _assert_same_batches(_loaded(train, num_workers=2, **defaults), _loaded(_one_by_one(train), **defaults))


@pytest.mark.parametrize("graphs", [False, True])
def test_a_dataloader_slices_each_batch_at_once_as_batches_does(mp_store, tmp_path, graphs, monkeypatch):
    import torch
    from torch.utils.data import Subset

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    export = ExportedDataset(tmp_path / "out")
    train = export.graph_split("train") if graphs else export.split("train")
    calls = {"_batch": 0, "_item": 0}

    def counted(name):
        method = getattr(train, name)

        def count(positions):
            calls[name] += 1
            return method(positions)

        return count

    for name in calls:
        monkeypatch.setattr(train, name, counted(name))
    loaded = _loaded(train, batch_size=4, shuffle=True, collate_fn=collate)
    loaded += _loaded(Subset(train, range(8)), batch_size=4, collate_fn=collate)
    assert calls == {"_batch": len(loaded), "_item": 0} and len(loaded) == -(-len(train) // 4) + 2
    assert torch.equal(loaded[-1]["index"], torch.arange(4, 8))


@pytest.mark.parametrize("graphs", [False, True])
def test_a_collate_function_of_ones_own_is_given_the_samples_as_a_list_it_may_change(mp_store, tmp_path, graphs):
    # __getitems__ gave a read-only sequence: a collate function written to torch's contract (its fetcher hands it a
    # list of samples) failed where it added a sample, sorted or shuffled them; across worker processes the sequence
    # was pickled with its whole split
    import random

    import torch

    export_torch(mp_store, CATALOG, "mp", tmp_path / "out", split="random", seed=2)
    export = ExportedDataset(tmp_path / "out")
    train = export.graph_split("train") if graphs else export.split("train")
    padding = train[0]

    def padded(samples):
        return collate(samples + [padding])

    def sorted_by_target(samples):
        samples.sort(key=lambda sample: float(sample["target"]))
        return collate(samples)

    def shuffled(samples):
        random.Random(3).shuffle(samples)
        return collate(samples)

    for collate_fn in (padded, sorted_by_target, shuffled):
        _assert_same_batches(
            _loaded(train, batch_size=4, shuffle=True, collate_fn=collate_fn),
            _loaded(_one_by_one(train), batch_size=4, shuffle=True, collate_fn=collate_fn),
        )
    forked = {"num_workers": 2, "multiprocessing_context": "fork", "collate_fn": lambda samples: samples}
    served = _loaded(train, batch_size=4, **forked)[0]
    assert len(pickle.dumps(served)) < 2 * len(pickle.dumps([train[index] for index in range(4)]))
    assert all(torch.equal(served[k][key], train[k][key]) for k in range(4) for key in train[k])


def test_missing_torch_gives_a_clear_message_and_the_export_still_works(gap_store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    with pytest.raises(MatregError, match=r"pip install 'matreg\[ml\]'"):
        ExportedDataset(tmp_path / "out")
    code = "import sys; sys.modules['torch'] = None; import matreg.ml.dataset, matreg.ml.splits, matreg.ml.features"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


def test_an_export_counts_its_target_values_and_warns_of_class_labels(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    gaps = pd.read_parquet(tmp_path / "out" / "records.parquet")["target"]
    assert meta["target"]["n_distinct"] == gaps.nunique() > 2 and meta["target"]["bounds"] == [0, 30]
    assert meta["target"]["ion_bounds"] is None  # (band gaps have no bounds of their own for ions)
    assert "class labels" not in (provenance_warning(meta) or "")
    labels = meta | {"target": meta["target"] | {"n_distinct": 2}}  # matbench's is-metal: 0 and 1
    assert "the target takes 2 value(s) only, as class labels do; the baseline models regress it" in (
        provenance_warning(labels)
    )
    older = meta | {"target": {key: value for key, value in meta["target"].items() if key != "n_distinct"}}
    assert "class labels" not in (provenance_warning(older) or "")


def test_the_provenance_warning_suggests_the_provenance_split_only_where_it_applies(gap_store, tmp_path):
    meta = export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    assert "(dft 160, experimental 270)" in provenance_warning(meta) and "--split provenance" in provenance_warning(
        meta
    )
    simulated = meta | {"provenance": {"dft": 160, "simulated": 5}}  # that split takes DFT and experiment only
    assert "(dft 160, simulated 5)" in provenance_warning(simulated) and "--split" not in provenance_warning(simulated)
    assert provenance_warning(export_torch(gap_store, CATALOG, "expt-gaps", tmp_path / "expt")) is None


def test_bad_options_and_tampered_exports_are_refused(gap_store, tmp_path):
    with pytest.raises(MatregError, match="unknown split"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", split="alphabetical")
    with pytest.raises(MatregError, match="predefined"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", assignment=tmp_path / "a.csv")
    with pytest.raises(MatregError, match="an assignment file goes with --split predefined"):  # before reading
        export_torch(Store(tmp_path / "no-store"), CATALOG, "gaps", tmp_path / "out", split="predefined")
    with pytest.raises(MatregError, match="not a property"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "out", target="entropy")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(MatregError, match="not a matreg torch export"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    (tmp_path / "notes" / "meta.json").write_text('{"name": "my dataset card"}')  # someone else's meta.json
    with pytest.raises(MatregError, match="not a matreg torch export"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    (tmp_path / "out" / "my_notes.txt").write_text("mine")  # an export a user added a file to
    with pytest.raises(MatregError, match="my_notes.txt"):
        export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")
    (tmp_path / "out" / "my_notes.txt").unlink()
    export_torch(gap_store, CATALOG, "gaps", tmp_path / "out")  # an earlier export alone is replaced
    with pytest.raises(MatregError, match="no crystal graphs"):
        ExportedDataset(tmp_path / "out").graph_split("train")
    (tmp_path / "out" / "records.parquet").write_bytes(b"changed")
    with pytest.raises(MatregError, match="sha256"):
        ExportedDataset(tmp_path / "out")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_export_that_fails_part_way_leaves_the_earlier_export_whole(filled, tmp_path):
    """A torch export into the folder of an earlier one that the file system refuses part-way (no file may grow past
    a size, as on a disk whose quota is reached: EFBIG) leaves the earlier export as it was, file for file, and no
    staging folder beside it: an export is replaced whole or not at all."""
    out = tmp_path / "export"
    assert filled("export", "gaps", "--format", "torch", "--out", str(out)).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}  # (meta.json too: its time of export)
    largest = max(path.stat().st_size for path in out.iterdir())
    result = matreg_with_files_capped(largest // 2, "export", "gaps", "--format", "torch", "--out", str(out))
    assert result.returncode == 1 and result.stderr == f"error: cannot write {out}: File too large (EFBIG)\n", (
        result.stderr
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [path.name for path in tmp_path.glob(".export*")] == []  # (the staging folder's name: .export.<uuid>.tmp)


LAB_CATALOG = Catalog(
    datasets={
        "lab": Dataset(description="lab gaps", version="1.0.0", properties=["band_gap"]),
        "lab-hse": Dataset(description="lab HSE gaps", version="1.0.0", properties=["band_gap"], methods=["HSE06"]),
    }
)


def _lab_store(tmp_path: Path, text: str) -> Store:
    store = Store(tmp_path / "store")
    mapping = (
        "dataset: gaps-lab\nformula_column: formula\nid_column: id\nprovenance: dft\ncitation: notebook 12\n"
        "columns:\n  pbe: {property: band_gap, unit: eV, method: PBE}\n"
        "  hse: {property: band_gap, unit: eV, method: HSE06}\n"
    )
    _import(store, _written(tmp_path / "gaps.csv", text), mapping, tmp_path)
    return store


def _written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_torch_exports_apply_review_decisions_as_tabular_exports_do(tmp_path):
    rows = "id,formula,pbe,hse\n" + "".join(f"g{n},{f},{1 + n / 10},\n" for n, f in enumerate(FORMULAS_20))
    store = _lab_store(tmp_path, rows)
    record_decision(store, "reject", "A. Steward", "wrong sample", record_id="gaps-lab:g3")
    record_decision(store, "correct", "A. Steward", "typo", record_id="gaps-lab:g4", property="band_gap",
                    method="PBE", value=2.5, unit="eV")  # fmt: skip
    export_torch(store, LAB_CATALOG, "lab", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    assert "gaps-lab:g3" not in records.index and len(records) == 19
    assert records.loc["gaps-lab:g4", "target"] == 2.5 and records.loc["gaps-lab:g5", "target"] == 1.5


def test_values_by_several_methods_are_refused_by_name_or_selected(tmp_path):
    rows = "id,formula,pbe,hse\n" + "".join(f"g{n},{f},{1 + n / 10},{2 + n / 10}\n" for n, f in enumerate(FORMULAS_20))
    store = _lab_store(tmp_path, rows)
    refusal = r"20 record\(s\) have several values of band_gap \(e\.g\. gaps-lab:g0, by the methods HSE06, PBE\)"
    with pytest.raises(
        MatregError, match=refusal + ": a torch export takes one target per row; in the catalog, select"
    ):
        export_torch(store, LAB_CATALOG, "lab", tmp_path / "out")
    meta = export_torch(store, LAB_CATALOG, "lab-hse", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records
    assert set(records["method"]) == {"HSE06"} and records["target"].min() == 2.0
    assert (
        meta["method"] == {"HSE06": 20} and sum(meta["method_by_split"]["test"].values()) == meta["n_per_split"]["test"]
    )


def test_the_sources_count_the_one_value_prefer_kept_of_a_records_several(tmp_path):
    # HSE06 and PBE gaps of twelve compounds, PBE gaps only of eight others: prefer keeps one value per record
    lines = [f"g{n},{f},{1 + n / 10},{2 + n / 10 if n < 12 else ''}\n" for n, f in enumerate(FORMULAS_20)]
    store = _lab_store(tmp_path, "id,formula,pbe,hse\n" + "".join(lines))
    resolution = Resolution(strategy="prefer", prefer=["HSE06"])
    prefer = Dataset(description="p", version="1.0.0", properties=["band_gap"], resolve=resolution)
    meta = export_torch(store, Catalog(datasets={"p": prefer}), "p", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records
    assert len(records) == 20 and meta["method"] == {"HSE06": 12, "PBE": 8}
    assert [(entry["source"], entry["n"]) for entry in meta["sources"]] == [("gaps-lab", 20)]  # not 32: 12 PBE dropped


def test_a_resolved_groups_row_names_its_members_and_their_sources(tmp_path):
    store = Store(tmp_path / "store")
    for lab in ("a", "b"):  # two labs measuring the same twenty compounds: twenty linked pairs
        mapping = f"dataset: lab-{lab}\nformula_column: formula\nid_column: id\nprovenance: dft\ncitation: {lab}\n"
        rows = "id,formula,gap\n" + "".join(f"{lab}{n},{f},{1 + n / 10}\n" for n, f in enumerate(FORMULAS_20))
        _import(
            store,
            _written(tmp_path / f"{lab}.csv", rows),
            mapping + "columns:\n  gap: {property: band_gap, unit: eV}\n",
            tmp_path,
        )
    median = Dataset(description="m", version="1.0.0", properties=["band_gap"], resolve=Resolution(strategy="median"))
    meta = export_torch(store, Catalog(datasets={"m": median}), "m", tmp_path / "out")
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    assert records.loc["group:ZnO", "records"] == "lab-a:a7; lab-b:b7"
    sources = {entry["source"]: entry for entry in meta["sources"]}
    assert set(sources) == {"lab-a", "lab-b"} and sources["lab-b"]["run_ids"]
    # a median row counts each value it merges, under that value's source: 20 rows of 40 values
    assert len(records) == 20 and sources["lab-a"]["n"] == sources["lab-b"]["n"] == 20


def test_the_sources_name_each_citation_and_licence_of_a_lab_dataset_as_a_file_exports_sidecar_does(run, tmp_path):
    for name, citation, license, formulas in (
        ("a", "Paper a", "CC-BY-4.0", FORMULAS_20[:6]),
        ("b", "Paper b", "CC-BY-NC-ND-4.0", FORMULAS_20[6:12]),
    ):  # two files of one lab dataset, each with its own paper and licence
        mapping = f"dataset: lab-x\nformula_column: formula\nid_column: id\ncitation: {citation}\nlicense: {license}\n"
        rows = "id,formula,gap\n" + "".join(f"{name}{n},{f},{1 + n / 10}\n" for n, f in enumerate(formulas))
        result = cli_import(run, tmp_path, name, rows, mapping + "columns:\n  gap: {property: band_gap, unit: eV}\n")
        assert result.exit_code == 0, result.output
    result = run("export", "gaps", "--format", "torch", "--split", "random", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    sources = json.loads((tmp_path / "out" / "meta.json").read_text())["sources"]
    cited = [(entry["source"], entry["citation"], entry["license"], entry["n"]) for entry in sources]
    assert cited == [("lab-x", "Paper a", "CC-BY-4.0", 6), ("lab-x", "Paper b", "CC-BY-NC-ND-4.0", 6)]
    assert sources[0]["run_ids"] and sources[1]["run_ids"] and sources[0]["run_ids"] != sources[1]["run_ids"]
    assert run("export", "gaps", "--out", str(tmp_path / "gaps.csv")).exit_code == 0
    sidecar = json.loads((tmp_path / "gaps.csv.meta.json").read_text())
    assert [{key: value for key, value in entry.items() if key != "run_ids"} for entry in sources] == sidecar["sources"]


FORMULAS_20 = [
    "NaCl", "KCl", "LiF", "MgO", "CaO", "SrO", "BaO", "ZnO", "ZnS", "CdS",
    "GaN", "GaAs", "InP", "AlN", "SiC", "BN", "CuCl", "AgBr", "TiO2", "SnO2",
]  # fmt: skip


def test_a_disordered_structure_gets_no_crystal_graph_and_is_counted(tmp_path):
    ordered = Structure(np.eye(3) * 4.2, ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mixed = Structure(np.eye(3) * 3.6, [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])  # one site, half Fe, half Ni
    rows = pd.DataFrame(  # and a record without a structure
        {"id": ["a", "b", "c"], "formula": ["MgO", "FeNi", "NaCl"], "gap": [7.8, 0.0, 5.0]}
        | {"cif": [ordered.to_json(), mixed.to_json(), ""]}
    )
    data = _written(tmp_path / "xtal.csv", rows.to_csv(index=False))
    mapping = "dataset: xtal\nformula_column: formula\nid_column: id\nstructure_column: cif\nprovenance: dft\n"
    _import(
        Store(tmp_path / "store"),
        data,
        mapping + "citation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
        tmp_path,
    )
    catalog = Catalog(datasets={"x": Dataset(description="x", version="1.0.0", properties=["band_gap"])})
    meta = export_torch(Store(tmp_path / "store"), catalog, "x", tmp_path / "out", fractions=(1.0, 0.0, 0.0))
    assert meta["featurizers"]["graph"]["n_structures"] == 1
    assert meta["featurizers"]["graph"]["n_disordered_left_out"] == 1
    assert ExportedDataset(tmp_path / "out").graph_split("train").record_id == ["xtal:a"]
    assert len(ExportedDataset(tmp_path / "out").records) == 3


def test_values_by_several_methods_over_records_warn_naming_each_method_with_its_count(tmp_path):
    # PBE gaps for twelve compounds, HSE06 gaps for eight others: one value per record, two methods in the target
    lines = [f"g{n},{f},{1 + n / 10},\n" if n < 12 else f"g{n},{f},,{2 + n / 10}\n" for n, f in enumerate(FORMULAS_20)]
    store = _lab_store(tmp_path, "id,formula,pbe,hse\n" + "".join(lines))
    meta = export_torch(store, LAB_CATALOG, "lab", tmp_path / "out")
    assert meta["method"] == meta["method_by_provenance"]["dft"] == {"HSE06": 8, "PBE": 12}
    assert provenance_warning(meta) == (
        "warning: the target's dft values mix methods (HSE06 8, PBE 12); keep one in the catalog dataset (methods: "
        "[...])"
    )
    assert provenance_warning(export_torch(store, LAB_CATALOG, "lab-hse", tmp_path / "hse")) is None


TEMPERATURE_MAPPING = """dataset: lab-temps
formula_column: composition
id_column: sample_id
provenance: experimental
citation: notebook 7
columns:
  band_gap: {property: band_gap, unit_field: band_gap_unit, temperature_field: T_K}
"""


def test_the_temperatures_of_the_values_are_exported_and_a_mix_of_them_warns(tmp_path):
    store = Store(tmp_path / "store")
    gaps = "sample_id,composition,band_gap,band_gap_unit,T_K\nc1,GaAs,1.42,eV,300\nc2,GaAs,1.52,eV,4\n"
    gaps += "c3,Si,1.12,eV,300\nc4,Si,1.17,eV,4\nc5,InP,1.34,eV,300\nc6,InP,1.42,eV,4\nc7,ZnO,3.37,eV,\n"
    _import(store, _written(tmp_path / "temps.csv", gaps), TEMPERATURE_MAPPING, tmp_path)
    catalog = Catalog(
        datasets={
            "all": Dataset(description="gaps", version="1.0.0", properties=["band_gap"]),
            "room": Dataset(description="gaps", version="1.0.0", properties=["band_gap"], temperature_K=300),
        }
    )
    meta = export_torch(store, catalog, "all", tmp_path / "out", fractions=(1.0, 0.0, 0.0))
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    gaas = records.loc[["lab-temps:c1", "lab-temps:c2"]]
    assert gaas["target"].tolist() == [1.42, 1.52] and gaas["temperature_K"].tolist() == [300.0, 4.0]
    assert records["pressure_Pa"].isna().all() and np.isnan(records.loc["lab-temps:c7", "temperature_K"])
    assert meta["conditions"] == {"temperature_K": {"4": 3, "300": 3, "(none)": 1}, "pressure_Pa": {"(none)": 7}}
    assert provenance_warning(meta) == (
        "warning: the target's values are at several temperatures (3 at 4 K, 3 at 300 K, 1 unstated), which the "
        "features do not see (one compound at two temperatures is one input with two targets); select one in the "
        "catalog dataset (temperature_K: ...)"
    )
    room = export_torch(store, catalog, "room", tmp_path / "room", fractions=(1.0, 0.0, 0.0))
    assert room["conditions"]["temperature_K"] == {"300": 3} and provenance_warning(room) is None


def test_a_mix_of_the_values_pressures_warns_in_pascals_naming_the_catalogs_key(tmp_path):
    store = Store(tmp_path / "store")
    volumes = "sample_id,composition,V,P\nc1,Si,20.02,0\nc2,Si,19.1,10\nc3,Ge,22.6,0\nc4,Ge,21.7,10\n"
    mapping = TEMPERATURE_MAPPING.replace("dataset: lab-temps", "dataset: lab-pressures").replace(
        "  band_gap: {property: band_gap, unit_field: band_gap_unit, temperature_field: T_K}",
        "  V: {property: volume_per_atom, unit: angstrom^3/atom, pressure_field: P, pressure_unit: GPa}",
    )
    _import(store, _written(tmp_path / "pressures.csv", volumes), mapping, tmp_path)
    catalog = Catalog(datasets={"v": Dataset(description="v", version="1.0.0", properties=["volume_per_atom"])})
    meta = export_torch(store, catalog, "v", tmp_path / "out", fractions=(1.0, 0.0, 0.0))
    assert meta["conditions"]["pressure_Pa"] == {"0": 2, "10000000000": 2}
    assert provenance_warning(meta) == (
        "warning: the target's values are at several pressures (2 at 0 Pa, 2 at 10000000000 Pa), which the features "
        "do not see (one compound at two pressures is one input with two targets); select one in the catalog dataset "
        "(pressure_Pa: ...)"
    )


def test_a_dataset_whose_filters_select_no_values_says_which_filters(tmp_path):
    store = _lab_store(tmp_path, "id,formula,pbe,hse\ng0,NaCl,5.0,\n")
    measured = Dataset(description="m", version="1.0.0", properties=["band_gap"], provenance=["experimental"])
    with pytest.raises(MatregError) as refused:
        export_torch(store, Catalog(datasets={"m": measured}), "m", tmp_path / "out")
    assert str(refused.value) == (
        "dataset 'm' selects no values of band_gap in the store (properties band_gap; provenance experimental)"
    )


def test_a_dataset_whose_values_the_curation_log_rejected_says_so_and_how_to_see_it(tmp_path):
    store = _lab_store(tmp_path, "id,formula,pbe,hse\ng0,NaCl,5.0,\ng1,KCl,,6.0\n")
    record_decision(store, "reject", "A. Steward", "wrong sample", record_id="gaps-lab:g0")
    record_decision(store, "reject", "A. Steward", "typo", record_id="gaps-lab:g1", property="band_gap")
    with pytest.raises(MatregError) as refused:
        export_torch(store, LAB_CATALOG, "lab", tmp_path / "out")
    assert str(refused.value) == (
        "dataset 'lab' selects 2 stored values of band_gap (properties band_gap), but the curation log rejected them "
        "all (records gaps-lab:g0, gaps-lab:g1): `matreg history RECORD_ID` shows who rejected what and why, and "
        "`matreg review accept RECORD_ID` (with --property for a value) takes a rejection back"
    )
    assert not (tmp_path / "out").exists()


MEDIAN = Resolution(strategy="median")


def _gap_lab(store: Store, tmp_path: Path, name: str, provenance: str, rows: pd.DataFrame) -> None:
    """Import lab `name`'s band gaps (columns id, formula, gap, and cif: a structure's JSON, or empty)."""
    structures = "structure_column: cif\n" if "cif" in rows else ""
    mapping = f"dataset: {name}\nformula_column: formula\nid_column: id\n{structures}provenance: {provenance}\n"
    data = _written(tmp_path / f"{name}.csv", rows.to_csv(index=False))
    _import(store, data, mapping + "citation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n", tmp_path)


def _rock_salt(a: float, cation: str = "Mg") -> str:
    return Structure.from_spacegroup("Fm-3m", np.eye(3) * a, [cation, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to_json()


def test_a_median_row_of_one_crystal_gets_its_smallest_members_structure_and_a_row_without_one_is_counted(
    tmp_path, caplog
):
    # two labs' rock-salt MgO (one space group, matching structures: one crystal) and ZnO without a structure
    store = Store(tmp_path / "store")
    for lab, a in (("lab-b", 4.22), ("lab-a", 4.21)):
        rows = pd.DataFrame(
            {"id": ["m", "z"], "formula": ["MgO", "ZnO"], "gap": [7.8, 3.4], "cif": [_rock_salt(a), ""]}
        )
        _gap_lab(store, tmp_path, lab, "dft", rows)
    catalog = Catalog(datasets={"m": Dataset(description="m", version="1", properties=["band_gap"], resolve=MEDIAN)})
    meta = export_torch(store, catalog, "m", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    data = ExportedDataset(tmp_path / "out")
    records = data.records.set_index("record_id")
    assert records.loc["group:MgO/225", "structure_record"] == "lab-a:m"  # the smaller of lab-a:m and lab-b:m
    assert (
        records.loc["group:MgO/225", "records"] == "lab-a:m; lab-b:m" and records["structure_record"].isna().sum() == 1
    )
    graph = meta["featurizers"]["graph"]
    assert (graph["n_structures"], graph["n_without_structure"], graph["n_disordered_left_out"]) == (1, 1, 0)
    train = data.graph_split("train")
    assert train.record_id == ["group:MgO/225"]
    assert train[0]["edge_dist"].min().item() == pytest.approx(4.21 / 2, abs=1e-5)  # lab-a's cell, not lab-b's
    assert "1 of 2 rows have no crystal graph (no structure, or a disordered one: group:ZnO)" in caplog.text
    from matreg.ml.train import load_splits  # (torch)

    with pytest.raises(MatregError, match="the val and test split"):  # a graph model: all in train, and it says so
        load_splits(tmp_path / "out", graph=True)
    assert "the graph model learns and is tested on 1 of the export's 2 rows: the others have no" in caplog.text


def test_a_median_row_merging_several_values_states_no_uncertainty_a_lone_value_its_own(tmp_path):
    store = Store(tmp_path / "store")
    lab_a = pd.DataFrame({"id": ["z", "g"], "formula": ["ZnO", "GaN"], "gap": ["3.3(1)", "3.4(2)"]})
    lab_b = pd.DataFrame({"id": ["z"], "formula": ["ZnO"], "gap": ["3.5(1)"]})
    for lab, rows in (("lab-a", lab_a), ("lab-b", lab_b)):
        _gap_lab(store, tmp_path, lab, "experimental", rows)
    catalog = Catalog(datasets={"m": Dataset(description="m", version="1", properties=["band_gap"], resolve=MEDIAN)})
    export_torch(store, catalog, "m", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    records = ExportedDataset(tmp_path / "out").records.set_index("record_id")
    shown = records[["records", "target", "target_uncertainty"]].astype(object)
    assert shown.where(shown.notna(), None).to_dict("index") == {
        "group:ZnO": {"records": "lab-a:z; lab-b:z", "target": pytest.approx(3.4), "target_uncertainty": None},
        "lab-a:g": {"records": "lab-a:g", "target": 3.4, "target_uncertainty": pytest.approx(0.2)},
    }  # the median's: no statistics made up (its values' spread is no standard uncertainty)


def test_a_median_row_of_a_formula_an_older_matreg_stored_has_its_chemical_system(tmp_path):
    # 'ZnO[0]', which an older matreg read as the ion ZnO[+0] (charge 0) and this one refuses, in two labs' files
    store = Store(tmp_path / "store")
    for lab, gap in (("lab-a", 3.3), ("lab-b", 3.5)):
        _gap_lab(store, tmp_path, lab, "experimental", pd.DataFrame({"id": ["z"], "formula": ["ZnO"], "gap": [gap]}))
    stored = {"formula": "ZnO[+0]", "formula_original": "ZnO[0]", "charge": 0.0}
    as_an_older_matreg_stored(store, {"lab-a:z": stored, "lab-b:z": stored})
    catalog = Catalog(datasets={"m": Dataset(description="m", version="1", properties=["band_gap"], resolve=MEDIAN)})
    export_torch(store, catalog, "m", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    records = ExportedDataset(tmp_path / "out").records
    assert records[["record_id", "records", "formula", "chemsys"]].values.tolist() == [
        ["group:ZnO[+0]", "lab-a:z; lab-b:z", "ZnO[+0]", "O-Zn"]
    ]
    assert records["target"].tolist() == [pytest.approx(3.4)]


def _four_labs(tmp_path: Path) -> Store:
    """ZnO and GaN gaps of two DFT labs and two measuring ones (no structures: each formula one group)."""
    store = Store(tmp_path / "store")
    for n, (lab, provenance) in enumerate((("dft-a", "dft"), ("dft-b", "dft"), ("exp-a", "experimental"),
                                           ("exp-b", "experimental"))):  # fmt: skip
        rows = pd.DataFrame({"id": ["z", "g"], "formula": ["ZnO", "GaN"], "gap": [2.0 + n / 10, 2.5 + n / 10]})
        _gap_lab(store, tmp_path, lab, provenance, rows)
    return store


def test_a_median_of_dft_and_measured_values_is_refused_naming_the_provenances_as_the_file_export_lists_both(tmp_path):
    store = _four_labs(tmp_path)
    median = Dataset(description="m", version="1", properties=["band_gap"], resolve=MEDIAN)
    measured = Dataset(
        description="m", version="1", properties=["band_gap"], resolve=MEDIAN, provenance=["experimental"]
    )
    catalog = Catalog(datasets={"m": median, "measured": measured})
    with pytest.raises(MatregError) as refused:
        export_torch(store, catalog, "m", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    assert str(refused.value) == (
        "2 resolved group(s) have several values of band_gap (e.g. group:GaN, of the provenances dft, experimental; "
        "`resolve: median` merges only values of one provenance, method and conditions): a torch export takes one "
        "target per row; in the catalog, keep one provenance (`provenance: [...]`) or rank them (`resolve: {strategy: "
        "prefer, prefer: [...]}`, best first)"
    )
    export_dataset(store, catalog, "m", "csv", tmp_path / "m.csv")  # long: one row per value, both medians of a group
    long = pd.read_csv(tmp_path / "m.csv").set_index(["record_id", "provenance"])["value"]
    assert long.to_dict() == pytest.approx(
        {("group:GaN", "dft"): 2.55, ("group:GaN", "experimental"): 2.75}
        | {("group:ZnO", "dft"): 2.05, ("group:ZnO", "experimental"): 2.25}
    )
    export_torch(store, catalog, "measured", tmp_path / "out", split="random", fractions=(1.0, 0.0, 0.0))
    targets = ExportedDataset(tmp_path / "out").records.set_index("record_id")["target"]
    assert targets.to_dict() == pytest.approx({"group:GaN": 2.75, "group:ZnO": 2.25})


@pytest.mark.parametrize(
    ("file", "text", "kind"),
    [
        (
            "m.yaml",
            "dataset: group\nformula_column: formula\ncitation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
            "dataset",
        ),
        (
            "catalog.yaml",
            "sources:\n  group:\n    title: t\n    connector: janaf\n    base_url: http://u\n    provenance: dft\n"
            "    license: l\n    citation: c\n",
            "source",
        ),
    ],
    ids=["lab dataset", "catalog source"],
)
def test_no_lab_dataset_nor_catalog_source_is_named_as_resolved_groups_median_rows_are(tmp_path, file, text, kind):
    # its record ids would be 'group:<id>', the ids of median rows: an export took its rows for resolved groups'
    (tmp_path / file).write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_mapping(tmp_path / file) if kind == "dataset" else load_catalog(tmp_path / file)
    assert (
        f"{kind} name 'group' is reserved: record ids 'group:...' are the median rows of resolved groups (a {kind}'s "
        f"records are '<its name>:<id>'); give the {kind} another name"
    ) in str(refused.value)


def test_a_pinned_split_by_record_id_still_matches_a_record_whose_row_became_a_resolved_groups(tmp_path):
    store = Store(tmp_path / "store")
    rows = pd.DataFrame({"id": [f"g{n}" for n in range(20)], "formula": FORMULAS_20, "gap": np.arange(20) / 4})
    _gap_lab(store, tmp_path, "lab-a", "dft", rows)
    catalog = Catalog(datasets={"m": Dataset(description="m", version="1", properties=["band_gap"], resolve=MEDIAN)})
    export_torch(store, catalog, "m", tmp_path / "first")
    pinned = ExportedDataset(tmp_path / "first").records[["record_id", "split"]]
    pinned.to_csv(tmp_path / "pin.csv", index=False)
    _gap_lab(store, tmp_path, "lab-b", "dft", rows.head(5).assign(id=lambda frame: "b" + frame["id"]))  # NaCl ... CaO
    export_torch(store, catalog, "m", tmp_path / "again", split="predefined", assignment=tmp_path / "pin.csv")
    records = ExportedDataset(tmp_path / "again").records.set_index("record_id")
    assert records.loc["group:NaCl", "records"] == "lab-a:g0; lab-b:bg0" and len(records) == 20
    split_of = pinned.set_index("record_id")["split"]
    assert records.loc["group:NaCl", "split"] == split_of["lab-a:g0"]
    assert records.loc["lab-a:g5", "split"] == split_of["lab-a:g5"]
    assert (records["split"].value_counts() == split_of.value_counts()).all()
    other = {"train": "test", "val": "test", "test": "train"}[split_of["lab-a:g0"]]
    pd.concat([pinned, pd.DataFrame({"record_id": ["lab-b:bg0"], "split": [other]})]).to_csv(
        tmp_path / "two.csv", index=False
    )
    with pytest.raises(MatregError, match=r"1 row\(s\) given more than one split through their member records, e\.g\. "
                       r"\['group:NaCl'\]"):  # fmt: skip
        export_torch(store, catalog, "m", tmp_path / "x", split="predefined", assignment=tmp_path / "two.csv")


def test_a_split_by_formula_matches_compositions_and_refuses_one_composition_in_two_splits(tmp_path):
    rows = pd.DataFrame(
        {
            "record_id": ["a", "b", "c"],
            "formula": ["Te0.5Se0.5", "NaCl", "Cu9S5"],
            "chemsys": ["Se-Te", "Cl-Na", "Cu-S"],
        }
        | {"provenance": ["dft"] * 3}
    )
    path = _written(tmp_path / "folds.csv", "formula,split\nTeSe,test\nNaCl,train\nCu1.8S,train\n")
    assert assign_splits(rows, "predefined", assignment=path).tolist() == ["test", "train", "train"]
    path.write_text("formula,split\nTeSe,train\nTe0.5Se0.5,test\nNaCl,train\nCu9S5,train\n", encoding="utf-8")
    with pytest.raises(MatregError) as refused:
        assign_splits(rows, "predefined", assignment=path)
    assert (
        str(refused.value) == f"{path}: 1 composition(s) assigned to more than one split, e.g. ['TeSe and Te0.5Se0.5']"
    )


OXIDES = {"MgO": 4.21, "CaO": 4.81, "SrO": 5.16, "BaO": 5.52}  # rock-salt lattice constants (A)


@pytest.fixture(scope="module")
def small_exports(tmp_path_factory) -> dict[str, Path]:
    """Two tiny exports of four rock-salt oxides' gaps, all in train: with crystal graphs ('graphs') and without
    ('plain')."""
    tmp = tmp_path_factory.mktemp("oxides")
    store = Store(tmp / "store")
    rows = pd.DataFrame({"id": list(OXIDES), "formula": list(OXIDES), "gap": [7.8, 7.1, 5.9, 4.8]})
    _gap_lab(store, tmp, "plain", "dft", rows)
    _gap_lab(store, tmp, "graphs", "dft", rows.assign(cif=[_rock_salt(a, f[:-1]) for f, a in OXIDES.items()]))
    datasets = {name: Dataset(description=name, version="1", properties=["band_gap"], sources=[name])
                for name in ("plain", "graphs")}  # fmt: skip
    for name in datasets:
        export_torch(store, Catalog(datasets=datasets), name, tmp / name, split="random", fractions=(1.0, 0.0, 0.0))
    return {name: tmp / name for name in datasets}


@pytest.mark.parametrize("graphs", [False, True])
def test_a_split_is_indexed_as_a_python_sequence_is(small_exports, graphs):
    # split[-1] served the last sample with index -1 (its `index` is its position in the split); a slice or a string
    # failed inside torch ("Could not infer dtype of slice", "too many dimensions 'str'")
    import torch

    data = ExportedDataset(small_exports["graphs"])
    train = data.graph_split("train") if graphs else data.split("train")
    assert len(train) == 4
    last = train[-1]
    assert last["index"].item() == 3 and last.keys() == train[3].keys()
    assert all(torch.equal(last[key], train[3][key]) for key in last)
    assert train[-4]["index"].item() == 0 and train[np.int64(2)]["index"].item() == 2
    for index in (4, -5):
        with pytest.raises(IndexError, match=f"^split index {index} is out of range: the split has 4 samples$"):
            train[index]
    for index, kind in ((slice(0, 3), "slice"), ("0", "str"), (1.0, "float")):
        with pytest.raises(TypeError, match=f"^a split's index must be an int, not {kind} "):
            train[index]


@pytest.mark.parametrize("graphs", [False, True])
def test_a_dataloader_drawing_an_index_gets_the_sample_indexing_gives(small_exports, graphs):
    # a DataLoader's batch (`__getitems__`) took its sampler's indexes as they came: -1 served the last sample with
    # index -1 (split[-1]'s is 3), 4 failed inside torch ("index 4 is out of bounds for dimension 0 with size 4")
    data = ExportedDataset(small_exports["graphs"])
    train = data.graph_split("train") if graphs else data.split("train")
    drawn = [-1, 0, -3]
    (batch,) = _loaded(train, sampler=drawn, batch_size=3, collate_fn=collate)
    one_by_one = collate([train[index] for index in drawn])
    assert batch["index"].tolist() == [3, 0, 1] and batch.keys() == one_by_one.keys()
    assert all(batch[key].equal(one_by_one[key]) for key in batch)
    for index in (4, -5):
        with pytest.raises(IndexError, match=f"^split index {index} is out of range: the split has 4 samples$"):
            _loaded(train, sampler=[0, index], batch_size=2, collate_fn=collate)
    with pytest.raises(TypeError, match="^a split's index must be an int, not float "):
        _loaded(train, sampler=[0, 1.0], batch_size=2, collate_fn=collate)


@pytest.mark.parametrize("size", [0, -1, 2.5, "8"])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused_when_batches_are_asked_for(small_exports, size):
    # batches(0) and batches(-1) failed in range() and zip() at the first batch
    train = ExportedDataset(small_exports["plain"]).split("train")
    with pytest.raises(ValueError, match=f"^batch size must be a positive integer, not {re.escape(repr(size))}$"):
        train.batches(size)
    assert [len(batch["target"]) for batch in train.batches(np.int64(3))] == [3, 1]


def test_collate_of_no_samples_says_there_is_nothing_to_batch():
    with pytest.raises(ValueError, match=r"^nothing to batch: collate was given no samples$"):  # was an IndexError
        collate([])


def test_an_unknown_split_is_named_before_the_graphs_an_export_lacks(small_exports):
    data = ExportedDataset(small_exports["plain"])
    with pytest.raises(MatregError, match=r"^unknown split 'bogus' \(choose from train, val, test\)$"):
        data.graph_split("bogus")
    with pytest.raises(MatregError, match="has no crystal graphs"):
        data.graph_split("train")


def _meta_edit(change):
    """A damage to an export: its meta.json as `change` makes it (given the meta, returning the new document)."""

    def damage(export: Path) -> None:
        meta = json.loads((export / "meta.json").read_text(encoding="utf-8"))
        (export / "meta.json").write_text(json.dumps(change(meta)), encoding="utf-8")

    return damage


def _without(document: dict, key: str) -> dict:
    """`document` without `key`."""
    return {name: value for name, value in document.items() if name != key}


def _without_sha256(meta: dict) -> dict:
    del meta["files"]["composition.npz"]["sha256"]
    return meta


DAMAGES = {  # what a damaged export lacks -> (the damage, what the error says is wrong)
    "composition.npz": (lambda export: (export / "composition.npz").unlink(), "composition.npz is missing"),
    "records.parquet": (lambda export: (export / "records.parquet").unlink(), "records.parquet is missing"),
    "graph.npz": (lambda export: (export / "graph.npz").unlink(), "graph.npz is missing"),
    "files": (_meta_edit(lambda meta: _without(meta, "files")), "meta.json lists no files"),
    "object": (_meta_edit(lambda meta: [meta]), "meta.json is not a JSON object"),
    "sha256": (_meta_edit(_without_sha256), "meta.json gives no sha256 of composition.npz"),
    "target": (_meta_edit(lambda meta: _without(meta, "target")), "meta.json has no target"),
    "target unit": (
        _meta_edit(lambda meta: meta | {"target": _without(meta["target"], "unit")}),
        "meta.json has no target.unit",
    ),
    "provenance": (_meta_edit(lambda meta: _without(meta, "provenance")), "meta.json has no provenance"),
    "split": (
        _meta_edit(lambda meta: meta | {"split": "random"}),
        "meta.json's split is not an object",
    ),
    # hand edits of the summaries `train`'s warnings read were tracebacks (AttributeError, TypeError)
    "method_by_provenance": (
        _meta_edit(lambda meta: meta | {"method_by_provenance": {"DFT": [1]}}),
        "meta.json's method_by_provenance.DFT is not an object",
    ),
    "conditions": (
        _meta_edit(lambda meta: meta | {"conditions": []}),
        "meta.json's conditions is not an object",
    ),
    "n_distinct": (
        _meta_edit(lambda meta: meta | {"target": meta["target"] | {"n_distinct": "many"}}),
        "meta.json's target.n_distinct is not an integer",
    ),
    # a hand edit of the graph settings a run records and `predict` builds a new structure's graph by (train's config
    # of a text was an AttributeError; a cutoff of a text was a TypeError in `predict`)
    "featurizers": (
        _meta_edit(lambda meta: meta | {"featurizers": "pymatgen"}),
        "meta.json's featurizers is not an object",
    ),
    "graph cutoff": (
        _meta_edit(lambda meta: meta | {"featurizers": {"graph": meta["featurizers"]["graph"] | {"cutoff_A": "8"}}}),
        "meta.json's featurizers.graph.cutoff_A is not a number",
    ),
    # a hand edit of the graph settings of another number: `predict` built new structures' graphs by it, not as the
    # export's graphs the model learned from were built, and nothing said so
    "graph cutoff changed": (
        _meta_edit(lambda meta: meta | {"featurizers": {"graph": meta["featurizers"]["graph"] | {"cutoff_A": 5}}}),
        "meta.json's featurizers.graph gives cutoff_A 5.0 (graph.npz: 8.0), not what its graphs were built with",
    ),
    "graph neighbours changed": (
        _meta_edit(lambda meta: meta | {"featurizers": {"graph": {"max_neighbors": 6}}}),
        "meta.json's featurizers.graph gives max_neighbors 6 (graph.npz: 12), not what its graphs were built with",
    ),
    "listed files": (
        _meta_edit(lambda meta: meta | {"files": {}}),
        "meta.json does not list records.parquet or composition.npz (every export has records.parquet and "
        "composition.npz)",
    ),
    "listed composition": (
        _meta_edit(lambda meta: meta | {"files": {"records.parquet": meta["files"]["records.parquet"]}}),
        "meta.json does not list composition.npz (every export has records.parquet and composition.npz)",
    ),
}


@pytest.mark.parametrize("key", ["method_by_provenance", "conditions", "n_distinct"])
def test_a_summary_given_as_null_reads_as_one_an_older_export_lacks(small_exports, tmp_path, key):
    # null, which meta.json's check takes for an absent summary, was an AttributeError (None.items(), None.get) or a
    # TypeError (None > 2) in the warnings `train` prints
    export = tmp_path / "export"
    shutil.copytree(small_exports["plain"], export)
    meta = json.loads((export / "meta.json").read_text(encoding="utf-8"))
    edited = meta | {"target": meta["target"] | {key: None}} if key == "n_distinct" else meta | {key: None}
    (export / "meta.json").write_text(json.dumps(edited), encoding="utf-8")
    assert provenance_warning(ExportedDataset(export).meta) is None
    options = ["--model", "elemnet", "--epochs", "1", "--out", str(tmp_path / "run"), "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(app, ["train", str(export), *options])  # past its warnings, to the export's splits
    said = f"error: {export}: the val and test split(s) are empty; train needs all three\n"
    assert (result.exit_code, result.stderr) == (1, said), result.output


@pytest.mark.parametrize("lacking", list(DAMAGES))
def test_a_damaged_export_is_refused_naming_what_is_wrong_and_train_says_so_in_one_line(
    small_exports, tmp_path, lacking
):
    # a missing payload file was pathlib's FileNotFoundError (`error: [Errno 2] ...`), a meta.json without `files` a
    # KeyError, one that is a JSON list an AttributeError (tracebacks in `matreg train`), and `"files": {}` loaded
    # without checking any hash; a hand-edited one without `target` or `provenance` a KeyError in train's warnings
    export = tmp_path / "export"
    shutil.copytree(small_exports["graphs"], export)
    damage, why = DAMAGES[lacking]
    damage(export)
    message = f"{export} is not a readable matreg torch export: {why}"
    with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
        ExportedDataset(export)
    options = ["--model", "elemnet", "--epochs", "1", "--out", str(tmp_path / "run"), "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(app, ["train", str(export), *options])
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n"), result.output
    assert not (tmp_path / "run").exists()
