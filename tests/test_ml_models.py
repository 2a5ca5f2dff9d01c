"""Baseline models on small real subsets: they learn, beat the mean, are reproducible, and predict() agrees."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from conftest import matreg_with_files_capped, utf8_child  # noqa: E402
from pymatgen.core import Composition, Structure  # noqa: E402
from pymatgen.io.cif import CifWriter  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from matreg.catalog import Catalog, Dataset  # noqa: E402
from matreg.cli import app  # noqa: E402
from matreg.errors import ConfigError, MatregError  # noqa: E402
from matreg.formula import parse_formula  # noqa: E402
from matreg.ingest import run_ingest  # noqa: E402
from matreg.ml.dataset import export_torch  # noqa: E402
from matreg.ml.predict import load_run, predict, read_formulas  # noqa: E402
from matreg.ml.train import TrainingError, resolve_device, resolve_export, train  # noqa: E402
from matreg.sources.lab import LabConnector, LabMapping  # noqa: E402
from matreg.store import Store  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "ml_models"
OQMD = FIXTURES / "oqmd_formation_enthalpy.csv"
MP20 = FIXTURES / "mp_20_biternary_val.csv.gz"
RUN_FILES = ("model.pt", "config.json", "metrics.json", "predictions.csv", "parity.png", "learning_curve.png")
TINY = {
    "elemnet": {"hidden": [64, 64, 32]},
    "attention": {"d_model": 32, "n_heads": 2, "n_layers": 2, "d_ff": 64, "head": [64, 32]},
    "cgcnn": {"atom_dim": 32, "n_conv": 2, "hidden": 64},
}
SETTINGS = {"epochs": 25, "seed": 3, "batch_size": 32, "lr": 3e-3, "patience": 25, "threads": 1}


def _mapping(dataset: str, formula: str, id_column: str, column: str, structures: str | None = None) -> LabMapping:
    return LabMapping(
        dataset=dataset,
        formula_column=formula,
        id_column=id_column,
        structure_column=structures,
        provenance="dft",
        citation="tests/fixtures/ml_models/SOURCES.md",
        columns={column: {"property": "formation_energy_per_atom", "unit": "eV/atom"}},
    )


def _catalog(name: str, source: str) -> Catalog:
    dataset = Dataset(description="test", version="0.1.0", properties=["formation_energy_per_atom"], sources=[source])
    return Catalog(datasets={name: dataset})


@pytest.fixture(scope="module")
def oqmd_export(tmp_path_factory) -> Path:
    """The OQMD subset imported through matreg and exported with CrabNet's own train/val/test assignment."""
    root = tmp_path_factory.mktemp("oqmd")
    store = Store(root / "store")
    run_ingest(LabConnector(OQMD, _mapping("oqmd-dhf", "formula", "sample_id", "target")), store)
    frame = pd.read_csv(OQMD)
    assignment = root / "assignment.csv"
    pd.DataFrame({"record_id": "oqmd-dhf:" + frame["sample_id"], "split": frame["split"]}).to_csv(assignment)
    catalog = _catalog("oqmd-dhf", "oqmd-dhf")
    export_torch(store, catalog, "oqmd-dhf", root / "export", split="predefined", assignment=assignment)
    return root / "export"


@pytest.fixture(scope="module")
def mp20_export(tmp_path_factory) -> Path:
    """The MP-20 structures imported with their CIFs and exported with crystal graphs (random split)."""
    root = tmp_path_factory.mktemp("mp20")
    store = Store(root / "store")
    mapping = _mapping("mp20", "pretty_formula", "material_id", "formation_energy_per_atom", structures="cif")
    data = root / "mp20.csv"
    pd.read_csv(MP20, dtype=str, keep_default_na=False).to_csv(data, index=False)
    run_ingest(LabConnector(data, mapping), store)
    export_torch(store, _catalog("mp20", "mp20"), "mp20", root / "export", split="random", seed=1)
    return root / "export"


def _train(export: Path, model: str, out: Path, **overrides) -> Path:
    settings = SETTINGS | overrides
    return train(export, model, device="cpu", out_dir=out, model_options=TINY[model], **settings)


@pytest.fixture(scope="module")
def runs(oqmd_export, mp20_export, tmp_path_factory) -> dict[str, Path]:
    """One trained run directory per model."""
    out = tmp_path_factory.mktemp("runs")
    return {
        "elemnet": _train(oqmd_export, "elemnet", out / "elemnet"),
        "attention": _train(oqmd_export, "attention", out / "attention"),
        "cgcnn": _train(mp20_export, "cgcnn", out / "cgcnn", epochs=20, batch_size=16),
    }


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("model", ["elemnet", "attention", "cgcnn"])
def test_training_reduces_the_loss_and_beats_the_mean_on_held_out_rows(runs, model):
    metrics = _metrics(runs[model])
    history = metrics["history"]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    test = metrics["test"]
    assert test["model"]["mae"] < 0.8 * test["mean_baseline"]["mae"]
    assert test["model"]["r2"] > 0.3
    assert metrics["n"]["test"] == len(pd.read_csv(runs[model] / "predictions.csv"))


@pytest.mark.parametrize(("model", "export"), [("elemnet", "oqmd_export"), ("cgcnn", "mp20_export")])
def test_predictions_list_each_test_record_with_its_target_as_exported(runs, model, export, request):
    records = pd.read_parquet(request.getfixturevalue(export) / "records.parquet").set_index("record_id")
    test = pd.read_csv(runs[model] / "predictions.csv", engine="pyarrow").set_index("record_id")
    assert test.index.isin(records.index[records["split"] == "test"]).all()
    assert test["target"].tolist() == records.loc[test.index, "target"].tolist()  # every digit, not float32's


def test_targets_far_from_0_are_standardised_and_scored_as_exported_not_rounded_to_float32(tmp_path):
    # all-electron total energies near -34000 eV/atom (iron's), spread over some 0.1 eV: float32 spaces numbers there
    # 3.9 meV apart, which would round each target by up to 2 meV (several % of the spread)
    frame = pd.read_csv(OQMD).head(120)
    energies = (-34000 + 0.02 * frame["target"]).round(6)
    pd.DataFrame({"id": frame["sample_id"], "formula": frame["formula"], "E": energies}).to_csv(tmp_path / "e.csv")
    column = {"E": {"property": "total_energy_per_atom", "unit": "eV/atom", "method": "PBE"}}
    mapping = LabMapping(
        dataset="ae", formula_column="formula", id_column="id", provenance="dft", citation="c", columns=column
    )
    store = Store(tmp_path / "store")
    run_ingest(LabConnector(tmp_path / "e.csv", mapping), store)
    dataset = Dataset(description="t", version="0.1.0", properties=["total_energy_per_atom"], sources=["ae"])
    export_torch(store, Catalog(datasets={"ae": dataset}), "ae", tmp_path / "export", split="random", seed=1)
    run = train(tmp_path / "export", "elemnet", device="cpu", out_dir=tmp_path / "run", epochs=2, threads=1)
    records = pd.read_parquet(tmp_path / "export" / "records.parquet")
    trained_on = records.loc[records["split"] == "train", "target"].to_numpy()
    standardisation = json.loads((run / "config.json").read_text())["standardisation"]
    assert standardisation["mean"] == pytest.approx(trained_on.mean(), abs=1e-9)
    assert standardisation["std"] == pytest.approx(trained_on.std(ddof=1), rel=1e-9)
    test = pd.read_csv(run / "predictions.csv", engine="pyarrow")
    scored = _metrics(run)["test"]
    assert scored["model"]["mae"] == pytest.approx((test["prediction"] - test["target"]).abs().mean(), rel=1e-12)
    baseline = (trained_on.mean() - test["target"]).abs().mean()
    assert scored["mean_baseline"]["mae"] == pytest.approx(baseline, rel=1e-12)


def test_the_predefined_split_is_the_one_trained_and_tested_on(runs):
    metrics = _metrics(runs["attention"])
    assert metrics["n"] == {"train": 600, "val": 100, "test": 100}
    ids = set(pd.read_csv(runs["attention"] / "predictions.csv")["record_id"])
    assert all(record_id.startswith("oqmd-dhf:test-") for record_id in ids)


def test_the_same_seed_gives_the_same_metrics_twice_on_cpu(oqmd_export, runs, tmp_path):
    again = _train(oqmd_export, "attention", tmp_path / "again")
    first, second = _metrics(runs["attention"]), _metrics(again)
    assert second["test"] == first["test"]
    assert [row["train_loss"] for row in second["history"]] == [row["train_loss"] for row in first["history"]]


def test_another_seed_gives_another_model(oqmd_export, runs, tmp_path):
    other = _train(oqmd_export, "elemnet", tmp_path / "other", seed=4)
    assert _metrics(other)["test"]["model"]["mae"] != _metrics(runs["elemnet"])["test"]["model"]["mae"]


def test_device_auto_picks_cuda_only_when_a_gpu_is_visible(runs, monkeypatch):
    assert json.loads((runs["elemnet"] / "config.json").read_text())["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as PyTorch says with a GPU (nothing runs on it)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(MatregError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="an Apple-silicon GPU is here: mps is not refused")
def test_device_mps_is_taken_by_name_and_refused_where_torch_has_no_mps(oqmd_export, quick_run, tmp_path):
    """An Apple-silicon GPU (torch's MPS backend) was an unknown device, as a TPU is: `--device mps` is one, said to
    be missing where PyTorch has none (as `--device cuda` without a GPU), before anything is trained or read."""
    out = tmp_path / "run"
    missing = "error: --device {}: no Apple-silicon GPU (MPS) is available to PyTorch\n"
    for device in ("mps", "mps:0"):
        trained = CliRunner().invoke(app, ["train", str(oqmd_export), "--device", device, "--out", str(out)])
        assert trained.exit_code == 1 and trained.stderr == missing.format(device), trained.output
        predicted = CliRunner().invoke(app, ["predict", str(quick_run), "NaCl", "--device", device])
        assert predicted.exit_code == 1 and predicted.stderr == missing.format(device), predicted.output
    assert not out.exists()
    with pytest.raises(MatregError, match="no Apple-silicon GPU"):
        load_run(quick_run, torch.device("mps"))
    said = " ".join(CliRunner().invoke(app, ["train", "--help"]).output.replace("\u2502", " ").split())
    assert "auto (CUDA when present, else the CPU; never mps), cpu, cuda or mps" in said


def test_device_mps_is_the_apple_gpu_where_torch_has_one_and_auto_never_picks_it(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)  # as PyTorch says on a Mac (nothing runs)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("mps") == torch.device("mps") and resolve_device("mps:0") == torch.device("mps:0")
    assert resolve_device(torch.device("mps")) == torch.device("mps")
    assert resolve_device("auto") == torch.device("cpu")  # mps is asked for, never chosen


@pytest.mark.parametrize("model", ["elemnet", "attention", "cgcnn"])
def test_the_run_directory_holds_weights_config_metrics_and_plots(runs, model):
    run = runs[model]
    assert all((run / name).is_file() and (run / name).stat().st_size > 0 for name in RUN_FILES)
    for name in ("parity.png", "learning_curve.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (run / name).stat().st_size > 5000
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model and config["target"]["property"] == "formation_energy_per_atom"
    assert config["settings"]["seed"] == 3 and config["export"]["content_sha256"]
    assert config["export"]["released"] is False  # trained on the store as it was exported, not on a release
    trained = datetime.fromisoformat(config["trained_at"])  # (a run recorded no time)
    exported = datetime.fromisoformat(config["export"]["exported_at"])
    assert trained.utcoffset() == exported.utcoffset() == timedelta(0) and exported <= trained
    metrics = _metrics(run)
    for part in ("model", "mean_baseline"):
        assert set(metrics["test"][part]) == {"mae", "rmse", "r2"}
    assert metrics["train_samples_per_s"] > 0 and 1 <= metrics["best_epoch"] <= metrics["epochs_run"]
    state = torch.load(run / "model.pt", weights_only=True)
    assert all(torch.is_tensor(value) for value in state.values())


@pytest.mark.parametrize("model", ["elemnet", "attention"])
def test_predict_reproduces_the_test_predictions_from_formulas(runs, model, tmp_path):
    test = pd.read_csv(runs[model] / "predictions.csv")
    original = pd.read_csv(OQMD).set_index("sample_id").loc[test["record_id"].str.split(":").str[1], "formula"]
    predicted = predict(runs[model], list(original), device="cpu")  # as trained: on any host
    assert list(predicted["formula"]) == [parse_formula(text).reduced for text in original]  # as imported
    np.testing.assert_allclose(predicted["prediction"], test["prediction"], rtol=1e-5, atol=1e-5)
    csv = tmp_path / "new.csv"
    pd.DataFrame({"formula": list(original)}).to_csv(csv, index=False)
    predicted = predict(runs[model], csv, device="cpu")
    np.testing.assert_allclose(predicted["prediction"], test["prediction"], rtol=1e-5, atol=1e-5)


def test_predict_reads_a_formula_as_the_import_did(runs):  # pymatgen alone reads MgSO4.7H2O as MgSH2O5.7
    predicted = predict(runs["elemnet"], ["MgSO4.7H2O", "MgH14SO11", "CuSO4·5H2O"])
    assert list(predicted["formula"]) == ["MgH14SO11", "MgH14SO11", "CuH10SO9"]
    assert predicted["prediction"][0] == predicted["prediction"][1]


def test_predict_refuses_a_charge_that_reads_two_ways_as_the_import_does(runs, tmp_path):
    csv = tmp_path / "ions.csv"
    csv.write_text("formula\nSO4[-2]\nSO42-\n", encoding="utf-8")  # SO42- was featurized as SO₄₂⁻: 98% oxygen
    reason = "cannot featurize 'SO42-': ambiguous charge 'SO42-': the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)"
    with pytest.raises(MatregError, match=re.escape(reason)):
        predict(runs["elemnet"], csv, device="cpu")
    predicted = predict(runs["elemnet"], ["SO₄²⁻", "SO4[2-]"], device="cpu")
    assert list(predicted["formula"]) == ["SO4[-2]", "SO4[-2]"]


def test_predict_reproduces_cgcnn_test_predictions_from_structures(runs, tmp_path):
    test = pd.read_csv(runs["cgcnn"] / "predictions.csv")
    frame = pd.read_csv(MP20).set_index("material_id").loc[test["record_id"].str.split(":").str[1]]
    structures = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    predicted = predict(runs["cgcnn"], structures, device="cpu")
    np.testing.assert_allclose(predicted["prediction"], test["prediction"], atol=1e-4)
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "first.cif").write_text(frame["cif"].iloc[0])
    (folder / "first.json").write_text(structures[0].to_json())
    both = predict(runs["cgcnn"], sorted(folder.iterdir()), device="cpu")
    np.testing.assert_allclose(both["prediction"], [test["prediction"].iloc[0]] * 2, atol=1e-4)


def test_predict_reads_a_dataframe_of_a_graph_model_by_its_structure_column_as_matbench_frames_hold_them(runs):
    """A DataFrame was read as its column names (the run said "'formula': give structures, not formulas")."""
    cifs = pd.read_csv(MP20)["cif"].iloc[:2]
    structures = [Structure.from_str(cif, fmt="cif") for cif in cifs]
    expected = predict(runs["cgcnn"], structures, device="cpu")
    frame = pd.DataFrame({"structure": structures, "e_form": [0.1, 0.2]}, index=[7, 3])
    pd.testing.assert_frame_equal(predict(runs["cgcnn"], frame, device="cpu"), expected)
    with pytest.raises(MatregError, match=r"^the DataFrame: no 'structure' column \(its columns: formula\)"):
        predict(runs["cgcnn"], pd.DataFrame({"formula": ["NaCl"]}), device="cpu")


@pytest.mark.parametrize("given", [Composition("NaCl"), [Composition("NaCl")], 3])
def test_predict_of_a_graph_model_refuses_compositions_saying_it_takes_structures(runs, given):
    """A Composition given to a structure model was iterated as its elements, each then read as a path: TypeError."""
    with pytest.raises(MatregError, match=r"this run is a structure model \(cgcnn\): give structures, not "):
        predict(runs["cgcnn"], given, device="cpu")


def test_predict_gives_each_structure_of_a_cif_of_several_blocks_a_row_named_by_its_block(runs, tmp_path):
    first, second = pd.read_csv(MP20)["cif"].iloc[:2]  # data_Tb3Si3Ni, data_TcP3
    (tmp_path / "two.cif").write_text(first + "\n" + second, encoding="utf-8")
    blocks = predict(runs["cgcnn"], tmp_path / "two.cif", device="cpu")
    alone = predict(runs["cgcnn"], [Structure.from_str(cif, fmt="cif") for cif in (first, second)], device="cpu")
    assert blocks["input"].tolist() == ["two.cif#Tb3Si3Ni", "two.cif#TcP3"]
    assert blocks["formula"].tolist() == ["Tb3Si3Ni", "TcP3"]
    np.testing.assert_allclose(blocks["prediction"], alone["prediction"], atol=1e-5)


def test_predict_refuses_a_structure_file_whose_name_is_not_utf8_as_a_bad_argument(runs, tmp_path):
    """A structure file's name names its rows (`input`): a Latin-1 one (Python reads its é as a surrogate) failed with
    a traceback as the predictions were printed or written; it is refused as a bad argument (exit 2), as an --out
    whose name is not UTF-8 is. The folders it is in, and the run's, are only read: any name of theirs does."""
    cif = pd.read_csv(MP20)["cif"].iloc[0]
    run, folder = tmp_path / os.fsdecode(b"run_\xe9"), tmp_path / os.fsdecode(b"cifs_\xe9")
    shutil.copytree(runs["cgcnn"], run)
    folder.mkdir()
    (folder / "first.cif").write_text(cif, encoding="utf-8")
    assert predict(run, folder, device="cpu")["input"].tolist() == ["first.cif"]
    latin1 = folder / os.fsdecode(b"second_\xe9.cif")
    latin1.write_text(cif, encoding="utf-8")
    for given in (folder, latin1):
        result = CliRunner().invoke(app, ["predict", str(run), str(given), "--out", str(tmp_path / "p.csv")])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.stderr == (
            f"error: the structure file {os.fsencode(latin1.name)!r}: the name {os.fsencode(latin1.name)!r} in its "
            "path is not UTF-8 text, which matreg records paths in; rename it\n"
        )
    assert not (tmp_path / "p.csv").exists()


def test_predict_refuses_a_disordered_structure_for_a_graph_model_naming_it_as_its_row_would_be(runs, tmp_path):
    mixed = Structure(np.eye(3) * 3.6, [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    ordered = Structure(np.eye(3) * 4.2, ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(MatregError, match=r"^structure\(s\) 1 are disordered"):  # inputs are named from 0
        predict(runs["cgcnn"], [ordered, mixed])
    (tmp_path / "mgo.json").write_text(ordered.to_json(), encoding="utf-8")
    (tmp_path / "fe_ni.cif").write_text(str(CifWriter(mixed)), encoding="utf-8")
    with pytest.raises(MatregError, match=r"^structure\(s\) fe_ni\.cif are disordered \(partly occupied or mixed"):
        predict(runs["cgcnn"], tmp_path)


def test_predict_refuses_a_malformed_structure_dict_naming_it_and_what_is_wrong(runs, tmp_path):
    """A pymatgen dict without 'lattice' or 'sites' (or a site without 'species') was a bare KeyError naming the key
    alone, one whose lattice was a list an AttributeError (of a JSON file's dict too)."""
    good = Structure(np.eye(3) * 4.2, ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    lacking = "not a pymatgen Structure dict: it has no"
    refused = {
        f"structure 1: {lacking} 'lattice' (Structure.as_dict() has both)": [good, _without(good, "lattice")],
        f"structure 0: {lacking} 'sites' (Structure.as_dict() has both)": _without(good, "sites"),
        f"structure 0: {lacking} 'lattice' or 'sites' (Structure.as_dict() has both)": {},
        "structure 0: not a readable structure: no 'species' key where pymatgen reads one": good | {"sites": [{}]},
        "structure 0: not a readable structure: 'list' object has no attribute 'get'": good | {"lattice": [4.2]},
    }
    for message, given in refused.items():
        with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
            predict(runs["cgcnn"], given, device="cpu")
    (tmp_path / "two.json").write_text(json.dumps([good, good | {"lattice": [4.2]}]), encoding="utf-8")
    message = f"{tmp_path / 'two.json'}#1: not a readable structure: 'list' object has no attribute 'get'"
    with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
        predict(runs["cgcnn"], tmp_path / "two.json", device="cpu")
    (tmp_path / "list.json").write_text("[[1, 2]]", encoding="utf-8")
    message = f"{tmp_path / 'list.json'}: not a pymatgen Structure dict (an object with 'lattice' and 'sites')"
    with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
        predict(runs["cgcnn"], tmp_path / "list.json", device="cpu")


def _without(document: dict, key: str) -> dict:
    """`document` without `key`."""
    return {name: value for name, value in document.items() if name != key}


def test_predict_refuses_structures_for_a_composition_model_and_the_reverse(runs):
    with pytest.raises(MatregError, match="formulas"):
        predict(runs["cgcnn"], ["NaCl"])
    with pytest.raises(MatregError, match="unparseable|cannot featurize"):
        predict(runs["elemnet"], ["Qz2O3"])


def test_a_run_directory_is_never_trained_into_twice(runs, oqmd_export):
    weights = (runs["elemnet"] / "model.pt").read_bytes()
    with pytest.raises(MatregError, match="holds a trained model already"):
        train(oqmd_export, "elemnet", device="cpu", out_dir=runs["elemnet"], epochs=1)
    assert (runs["elemnet"] / "model.pt").read_bytes() == weights


def _set_unit(export: Path, unit: str) -> None:
    """The target unit an export's meta.json states (meta.json is not among the files its hashes check)."""
    meta = json.loads((export / "meta.json").read_text())
    meta["target"]["unit"] = unit
    (export / "meta.json").write_text(json.dumps(meta))


def test_a_run_that_fails_after_its_model_is_saved_leaves_no_run_and_trains_again(oqmd_export, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(oqmd_export, export)
    unit = json.loads((export / "meta.json").read_text())["target"]["unit"]
    _set_unit(export, "$^$")  # a plot label matplotlib's mathtext parser refuses: the plots come after model.pt
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match="ParseSyntaxException"):
        _train(export, "elemnet", runs / "run", epochs=2)
    assert list(runs.iterdir()) == []  # no run, no staging folder
    _set_unit(export, unit)
    run = _train(export, "elemnet", runs / "run", epochs=2)
    assert sorted(path.name for path in run.iterdir()) == sorted(RUN_FILES)
    assert list(runs.iterdir()) == [run]


def _killed_stagings(folder: Path, name: str, file: str) -> tuple[Path, Path]:
    """Two staging folders of `name` in `folder` that killed writes left, each holding a half-written `file`: one
    untouched for two hours, one young."""
    old, young = (folder / f".{name}.{uuid.uuid4().hex}.tmp" for _ in range(2))
    for staging in (old, young):
        staging.mkdir(parents=True)
        (staging / file).write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    for path in (old / file, old):
        os.utime(path, (two_hours_ago, two_hours_ago))
    return old, young


def test_a_killed_runs_staging_folder_neither_blocks_a_rerun_nor_stays_past_an_hour(oqmd_export, tmp_path):
    runs = tmp_path / "runs"
    old, young = _killed_stagings(runs, "run", "model.pt")  # what runs killed while writing left
    run = _train(oqmd_export, "elemnet", runs / "run", epochs=1)
    assert sorted(path.name for path in run.iterdir()) == sorted(RUN_FILES)
    assert sorted(runs.iterdir()) == sorted([run, young])  # the young one may be a run writing now


def test_a_run_takes_in_the_export_made_for_it_and_refuses_a_folder_of_other_files(oqmd_export, tmp_path):
    store, catalog = Store(oqmd_export.parent / "store"), _catalog("oqmd-dhf", "oqmd-dhf")
    export = resolve_export("oqmd-dhf", store, catalog, tmp_path / "run", split="composition")
    run = _train(export, "elemnet", tmp_path / "run", epochs=1)
    assert sorted(path.name for path in run.iterdir()) == sorted([*RUN_FILES, "export"])
    assert json.loads((run / "config.json").read_text())["export"]["dir"] == str(export.resolve())
    assert (export / "meta.json").is_file() and list(tmp_path.iterdir()) == [run]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(MatregError, match=r"notes holds files of no run \(keep.txt\): give another --out"):
        _train(oqmd_export, "elemnet", tmp_path / "notes", epochs=1)
    assert [path.name for path in (tmp_path / "notes").iterdir()] == ["keep.txt"]


def test_a_run_records_the_cpu_threads_it_used_when_none_were_asked_for(oqmd_export, tmp_path):
    """A CPU run repeats exactly only at the same thread count: config.json names the count torch used."""
    run = _train(oqmd_export, "elemnet", tmp_path / "run", epochs=1, threads=None)
    assert json.loads((run / "config.json").read_text())["settings"]["threads"] == torch.get_num_threads() >= 1


def test_a_run_goes_into_a_folder_whatever_killed_exports_left_but_never_over_a_users_files(oqmd_export, tmp_path):
    run = tmp_path / "run"
    _, young = _killed_stagings(run, "export", "records.parquet")  # exports killed while writing
    _train(oqmd_export, "elemnet", run, epochs=1)
    assert sorted(path.name for path in run.iterdir()) == sorted([*RUN_FILES, young.name])
    assert json.loads((run / "config.json").read_text())["model"] == "elemnet"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": true}')  # a user's file of a run file's name
    with pytest.raises(MatregError, match=r"mine holds files of no run \(config.json\)"):
        _train(oqmd_export, "elemnet", mine, epochs=1)
    assert [path.name for path in mine.iterdir()] == ["config.json"] and "mine" in (mine / "config.json").read_text()


def test_a_run_goes_into_the_folder_a_link_names(oqmd_export, tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "disk")
    _train(oqmd_export, "elemnet", tmp_path / "run", epochs=1)
    assert sorted(path.name for path in (tmp_path / "disk").iterdir()) == sorted(RUN_FILES)
    assert (tmp_path / "run").is_symlink()


@pytest.mark.parametrize("folder_there", [False, True])
def test_a_run_whose_model_outgrows_the_largest_file_allowed_is_refused_naming_it_and_leaves_no_run(
    oqmd_export, tmp_path, folder_there
):
    """Where no file may grow past a size (`ulimit -f`; on a full disk alike), torch's own writer of the model failed
    with a RuntimeError naming no errno ('unexpected pos 1984 vs 1878'): a traceback. Now the weights are serialised
    in memory and written by Python: a one-line error naming the run directory (into a folder already there, the
    export's, not the run's staging name in it) and the OS's reason (EFBIG: exit 1, the same run fails again until the
    limit is raised; ENOSPC, a full disk: a failure for now, exit 75), and no run, no staging folder left."""
    out = tmp_path / "out"
    run = out / "run"
    (run if folder_there else out).mkdir(parents=True)
    options = ["--model", "elemnet", "--epochs", "1", "--threads", "1", "--out", str(run)]
    options += ["--store", str(tmp_path / "store")]
    result = matreg_with_files_capped(65536, "train", str(oqmd_export), *options)  # (elemnet's weights: megabytes)
    assert result.returncode == 1 and result.stderr == f"error: cannot write {run}: File too large (EFBIG)\n", (
        result.stderr
    )
    assert list(out.iterdir()) == ([run] if folder_there else []) and (not folder_there or not any(run.iterdir()))


def test_epoch_progress_of_a_process_without_stderr_is_not_printed_on_its_stdout(oqmd_export, tmp_path):
    """train(progress=True) (a library caller's, benchmarks/ml_models.py --progress; `matreg train` asks for none)
    prints a line per epoch on stderr; in a process started without one (`2>&-`: sys.stderr is None) print() wrote
    them on stdout instead, among what the caller prints there. Now they are not shown."""
    code = (
        "import sys; from matreg.ml.train import train\n"
        "train(sys.argv[1], 'elemnet', device='cpu', out_dir=sys.argv[2], epochs=2, threads=1, progress=True)"
    )
    python = [sys.executable, "-c", code, str(oqmd_export), str(tmp_path / "run")]
    closed = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *python], stdout=subprocess.PIPE, **utf8_child())
    assert closed.returncode == 0 and closed.stdout == "" and (tmp_path / "run" / "model.pt").is_file()


def test_predict_prints_its_predictions_in_utf8_whatever_the_locale(runs, tmp_path):
    """The predictions of a formula typed with subscripts (Fe₂O₃), printed in a Latin-1 locale: they failed with a
    traceback (exit 1); they are printed in UTF-8, as CSV and JSON are, the input as given."""
    formulas = tmp_path / "formulas.txt"
    formulas.write_text("Fe₂O₃\nGaN\n", encoding="utf-8")
    command = [sys.executable, "-m", "matreg", "predict", str(runs["elemnet"]), str(formulas), "--device", "cpu"]
    printed = subprocess.run(command, env=os.environ | {"PYTHONIOENCODING": "latin-1"}, capture_output=True)
    assert printed.returncode == 0 and printed.stderr == b"", printed.stderr
    header, *rows = printed.stdout.decode("utf-8").splitlines()
    assert header.split() == ["input", "formula", "prediction", "property", "unit"]
    assert [row.split()[:2] for row in rows] == [["Fe₂O₃", "Fe2O3"], ["GaN", "GaN"]]


def test_predict_reads_formulas_from_a_pipe(runs, tmp_path):
    """`matreg predict RUN /dev/stdin` (or `<(...)`) read the path as a formula ('unparseable formula'): a file that
    exists but is no regular file (a pipe) is read as a file of formulas, one a line."""
    out = tmp_path / "predictions.csv"
    command = [sys.executable, "-m", "matreg", "predict", str(runs["elemnet"]), "/dev/stdin", "--out", str(out)]
    piped = subprocess.run(command, input=b"NaCl\n# a comment\nGaN\n", capture_output=True)
    assert piped.returncode == 0 and piped.stdout == f"2 predictions -> {out}\n".encode(), piped.stderr
    expected = predict(runs["elemnet"], ["NaCl", "GaN"], device="cpu")
    written = pd.read_csv(out)
    assert written["input"].tolist() == ["NaCl", "GaN"]
    np.testing.assert_allclose(written["prediction"], expected["prediction"], rtol=1e-6)


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_table_without_a_suffix_is_read_by_its_formula_column(tmp_path, separator):
    """A pipe (`/dev/stdin`, `<(...)`) or a file without a suffix has no .csv/.tsv to tell a table: its header was read
    as a formula ('formula,band_gap': unparseable). A first line with a comma or tab, which no formula holds, is a
    table's header."""
    piped = tmp_path / "formulas"
    rows = [["id", "formula", "band_gap"], ["1", "NaCl", "8.5"], ["2", "GaN", "3.4"]]
    piped.write_text("".join(separator.join(row) + "\n" for row in rows))
    assert read_formulas(piped) == ["NaCl", "GaN"]
    excel = tmp_path / "excel.csv"
    excel.write_text("formula,band_gap\nGaN,3.4\n", encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    assert read_formulas(excel) == ["GaN"]
    piped.write_text("name,band_gap\nNaCl,8.5\n")
    with pytest.raises(MatregError, match="no formula column"):
        read_formulas(piped)


def test_a_missing_file_of_formulas_is_named_not_read_as_a_formula(runs, tmp_path):
    with pytest.raises(MatregError, match="missing.csv: no such file"):
        predict(runs["elemnet"], str(tmp_path / "missing.csv"))


@pytest.mark.parametrize(
    ("name", "why"),
    [("missing", "no such file"), ("Fe2O3", "no such file"), ("folder", "a folder, not a file of formulas")],
)
def test_a_path_that_is_no_file_of_formulas_is_named_not_iterated(tmp_path, name, why):
    # a Path that was no readable file and had no .csv/.tsv/.txt suffix was iterated: TypeError, 'PosixPath' object
    # is not iterable (a formula is given as text: Path('Fe2O3') names a file)
    (tmp_path / "folder").mkdir()
    with pytest.raises(MatregError) as refused:
        read_formulas(tmp_path / name)
    assert str(refused.value) == f"{tmp_path / name}: {why}"


def test_a_text_naming_a_folder_is_refused_as_a_folder_not_read_as_a_formula(quick_run, tmp_path):
    # `matreg predict RUN some_dir` of a composition model said "cannot featurize 'some_dir': unparseable formula"
    folder = tmp_path / "some_dir"
    folder.mkdir()
    for given in (str(folder), f"{folder}/"):
        with pytest.raises(MatregError, match=f"^{re.escape(given)}: a folder, not a file of formulas$"):
            read_formulas(given)
    result = CliRunner().invoke(app, ["predict", str(quick_run), str(folder), "--device", "cpu"])
    assert (result.exit_code, result.stderr) == (1, f"error: {folder}: a folder, not a file of formulas\n")


def test_a_formula_naming_a_folder_here_is_refused_saying_how_to_give_it_as_a_formula(tmp_path, monkeypatch):
    # `matreg predict RUN Si` beside a folder Si was refused as a folder, without a word of how to predict Si
    (tmp_path / "Si").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MatregError) as refused:
        read_formulas("Si")
    assert str(refused.value) == (
        "Si: a folder, not a file of formulas; to predict the formula Si, give it in a list (['Si']) or as a line of "
        "a file or of stdin (echo Si | matreg predict RUN /dev/stdin)"
    )
    assert read_formulas(["Si"]) == ["Si"]  # as the hint says
    with pytest.raises(MatregError, match=r"^Si: a folder, not a file of formulas$"):
        read_formulas(Path("Si"))  # a Path is no formula


def test_a_formula_longer_than_a_file_name_may_be_is_predicted(quick_run):
    # a formula past the 255 bytes of a name was looked for as a file first: the OS's bare '[Errno 36] File name too
    # long'
    formula = "Fe0.0123456789Co0.0123456789Ni0.0123456789" * 7
    expected = predict(quick_run, [formula], device="cpu")
    pd.testing.assert_frame_equal(predict(quick_run, formula, device="cpu"), expected)
    result = CliRunner().invoke(app, ["predict", str(quick_run), formula, "--device", "cpu"])
    assert result.exit_code == 0 and expected["formula"][0] in result.stdout, result.output


def test_a_missing_structure_file_is_named_as_missing_not_taken_for_formulas(runs, tmp_path):
    # a .cif or .json that was not there, or a Path, was said to be formulas ("give structures, not formulas")
    for given in (str(tmp_path / "missing.cif"), tmp_path / "missing.json", tmp_path / "missing", "e" * 300 + ".cif"):
        with pytest.raises(MatregError, match=f"^{re.escape(str(given))}: no such file$"):
            predict(runs["cgcnn"], given, device="cpu")
    result = CliRunner().invoke(app, ["predict", str(runs["cgcnn"]), str(tmp_path / "missing.cif"), "--device", "cpu"])
    assert (result.exit_code, result.stderr) == (1, f"error: {tmp_path / 'missing.cif'}: no such file\n")
    with pytest.raises(MatregError, match=r"^'NaCl': this run is a structure model \(cgcnn\): give structures, not "):
        predict(runs["cgcnn"], "NaCl", device="cpu")  # (a text that names no file is a formula)


@pytest.mark.parametrize(("name", "text"), [("header.csv", "formula\n"), ("empty.csv", ""), ("empty.txt", "")])
def test_a_file_of_no_formulas_is_a_clear_error(runs, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MatregError, match=rf"^{re.escape(str(path))}: no formulas to predict \(the file lists none\)$"):
        predict(runs["elemnet"], str(path))


def test_a_target_the_export_was_not_made_for_is_refused(oqmd_export, tmp_path):
    with pytest.raises(MatregError, match="export's target is formation_energy_per_atom"):
        train(oqmd_export, "elemnet", target="band_gap", device="cpu", out_dir=tmp_path / "x", epochs=1)


def test_a_graph_model_on_an_export_without_structures_is_refused(oqmd_export, tmp_path):
    with pytest.raises(MatregError, match="no crystal graphs"):
        train(oqmd_export, "cgcnn", device="cpu", out_dir=tmp_path / "x", epochs=1)


def test_an_unknown_model_is_refused(oqmd_export, tmp_path):
    with pytest.raises(MatregError, match="unknown model 'rf'"):
        train(oqmd_export, "rf", device="cpu", out_dir=tmp_path / "x", epochs=1)


def test_train_takes_an_export_directory_or_exports_a_catalog_dataset_into_the_run(oqmd_export, tmp_path):
    store, catalog = Store(oqmd_export.parent / "store"), _catalog("oqmd-dhf", "oqmd-dhf")
    assert resolve_export(oqmd_export, store, catalog, tmp_path / "run") == oqmd_export
    export = resolve_export("oqmd-dhf", store, catalog, tmp_path / "run", split="composition", split_seed=2)
    meta = json.loads((export / "meta.json").read_text())
    assert export == tmp_path / "run" / "export" and meta["split"]["method"] == "composition"
    assert meta["split"]["seed"] == 2
    assert meta["split"]["leakage"]["formula"]["in_train_or_val"] == 0


def test_an_export_directory_keeps_its_split_and_naming_another_is_refused(oqmd_export, tmp_path):
    store, catalog = Store(oqmd_export.parent / "store"), _catalog("oqmd-dhf", "oqmd-dhf")
    with pytest.raises(ConfigError, match="is an export: its split was made by `matreg export`"):
        resolve_export(oqmd_export, store, catalog, tmp_path / "run", split="chemsys")
    with pytest.raises(ConfigError, match="is an export: its split was made by `matreg export`"):
        resolve_export(oqmd_export, store, catalog, tmp_path / "run", split_seed=1)


def test_a_diverging_run_is_a_clear_error_and_leaves_no_run(oqmd_export, tmp_path):
    with pytest.raises(
        TrainingError, match=r"^training diverged: the validation MAE was nan in all 3 epoch\(s\)"
    ) as run:
        _train(oqmd_export, "attention", tmp_path / "run", lr=1e6, epochs=3, patience=10)
    assert str(run.value).endswith("try a smaller --lr than 1e+06") and not (tmp_path / "run").exists()


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -1e-3])
def test_a_learning_rate_that_is_not_a_positive_number_is_refused(oqmd_export, tmp_path, lr):
    with pytest.raises(ConfigError, match=f"^--lr {lr}: the learning rate must be a positive number$"):
        _train(oqmd_export, "elemnet", tmp_path / "run", lr=lr, epochs=1)


def test_an_unknown_training_setting_is_refused(oqmd_export, tmp_path):
    with pytest.raises(MatregError, match="unknown training setting.*warmup"):
        train(oqmd_export, "elemnet", device="cpu", out_dir=tmp_path / "x", epochs=1, warmup=3)


@pytest.mark.parametrize("module", ["matreg.ml.train", "matreg.ml.predict", "matreg.ml.models"])
def test_without_torch_the_model_modules_say_how_to_install_the_ml_extra(module):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from matreg.errors import MatregError\n"
        f"try:\n    import {module}\nexcept MatregError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, **utf8_child(), check=True)
    assert "pip install 'matreg[ml]'" in result.stdout


def test_cgcnn_trains_when_the_last_batch_would_be_one_crystal_of_one_atom(tmp_path):
    # Simple-cubic cells of one atom each: a last training batch of one such crystal gives batch norm one value.
    symbols = ["Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba", "Al", "Ga", "In", "Cu", "Ag", "Au"]
    symbols += ["Fe", "Co", "Ni", "Zn"]
    rows = [
        {
            "id": symbol,
            "formula": symbol,
            "target": 0.01 * n,
            "cif": Structure(np.eye(3) * 3.0, [symbol], [[0, 0, 0]]).to_json(),
        }
        for n, symbol in enumerate(symbols)
    ]
    data = tmp_path / "elements.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    store = Store(tmp_path / "store")
    run_ingest(LabConnector(data, _mapping("elements", "formula", "id", "target", structures="cif")), store)
    meta = export_torch(store, _catalog("elements", "elements"), "elements", tmp_path / "export", seed=1)
    n_train = meta["n_per_split"]["train"]
    run = _train(tmp_path / "export", "cgcnn", tmp_path / "run", epochs=2, batch_size=n_train - 1)
    assert _metrics(run)["n"]["train"] == n_train


@pytest.fixture(scope="module")
def quick_run(oqmd_export, tmp_path_factory) -> Path:
    """A composition run of one epoch: for how predict reads its inputs and options."""
    return _train(oqmd_export, "elemnet", tmp_path_factory.mktemp("quick") / "run", epochs=1)


def test_predict_reads_a_dataframe_by_its_formula_column_as_it_reads_a_csv(quick_run, tmp_path):
    # a DataFrame was read as its column names: one of a 'formula' column was 'cannot featurize 'formula'', and one
    # whose column was headed GaAs gave one prediction, for GaAs
    formulas = ["TlS", "K2PAuS4"]
    expected = predict(quick_run, formulas, device="cpu")
    assert expected["formula"].tolist() == formulas
    for column in ("formula", "composition"):
        frame = pd.DataFrame({"GaAs": ["Si", "Ge"], column: formulas})
        pd.testing.assert_frame_equal(predict(quick_run, frame, device="cpu"), expected)
        frame.to_csv(tmp_path / "new.csv", index=False)
        pd.testing.assert_frame_equal(predict(quick_run, tmp_path / "new.csv", device="cpu"), expected)
    missing = pd.DataFrame({"formula": ["TlS", None]})
    with pytest.raises(MatregError, match=r"^cannot featurize '': empty formula$"):  # as an empty CSV cell
        predict(quick_run, missing, device="cpu")
    message = "the DataFrame: no formula column (one of formula, composition, pretty_formula, reduced_formula)"
    with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
        predict(quick_run, pd.DataFrame({"GaAs": ["TlS", "Si"]}), device="cpu")
    with pytest.raises(MatregError, match=r"^no formulas to predict$"):
        predict(quick_run, pd.DataFrame({"formula": []}), device="cpu")


def test_predict_and_load_run_take_a_device_by_name_or_as_a_torch_device(quick_run, monkeypatch):
    # predict refused torch.device("cpu") ("unknown device 'cpu'"), which load_run took, and load_run no name
    expected = predict(quick_run, ["NaCl"], device="cpu")
    pd.testing.assert_frame_equal(predict(quick_run, ["NaCl"], device=torch.device("cpu")), expected)
    for device in ("cpu", torch.device("cpu"), "auto"):
        model, _ = load_run(quick_run, device)
        assert {parameter.device for parameter in model.parameters()} == {torch.device("cpu")}
    with pytest.raises(ConfigError, match=r"^unknown device 'meta' \(choose from auto, cpu, cuda, mps\)$"):
        predict(quick_run, ["NaCl"], device=torch.device("meta"))
    model, _ = load_run(quick_run, None)  # None was the CPU, as load_run's signature said
    assert {parameter.device for parameter in model.parameters()} == {torch.device("cpu")}
    pd.testing.assert_frame_equal(predict(quick_run, ["NaCl"], device="cpu:0"), expected)  # an index, as torch writes
    with pytest.raises(ConfigError, match=r"^unknown device 'cuda:x' \(choose from auto, cpu, cuda, mps"):
        predict(quick_run, ["NaCl"], device="cuda:x")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for gpu in (torch.device("cuda", 0), "cuda:0"):
        with pytest.raises(MatregError, match="no CUDA GPU"):
            load_run(quick_run, gpu)


@pytest.mark.parametrize("size", [0, -1])
def test_predict_refuses_a_batch_size_that_is_not_a_positive_integer(quick_run, size):
    with pytest.raises(ValueError, match=f"^batch size must be a positive integer, not {size}$"):
        predict(quick_run, ["NaCl"], device="cpu", batch_size=size)


@pytest.mark.parametrize("model", ["elemnet", "cgcnn"])
def test_the_network_load_run_gives_reproduces_predict_fed_its_inputs_by_name(runs, oqmd_export, mp20_export, model):
    from matreg.ml.dataset import ExportedDataset

    export = ExportedDataset(oqmd_export if model == "elemnet" else mp20_export)
    test = export.graph_split("test") if model == "cgcnn" else export.split("test")
    network, config = load_run(runs[model])
    batch = next(test.batches(len(test)))
    with torch.no_grad():
        standardised = network(*(batch[name] for name in network.inputs))
    scale = config["standardisation"]
    predicted = pd.read_csv(runs[model] / "predictions.csv")["prediction"]
    np.testing.assert_allclose(standardised.numpy() * scale["std"] + scale["mean"], predicted, atol=1e-4)


RUN_EDITS = {  # a hand edit of a run's config.json -> what the error says is wrong
    "model": (lambda config: _without(config, "model"), "config.json has no model"),
    "std": (
        lambda config: config | {"standardisation": config["standardisation"] | {"std": "0.5"}},
        "config.json's standardisation.std is not a number",
    ),
    "target": (lambda config: config | {"target": ["band_gap", "eV"]}, "config.json's target is not an object"),
    "graph": (
        lambda config: config | {"export": config["export"] | {"graph": {"cutoff_A": "8"}}},
        "config.json's export.graph.cutoff_A is not a number",
    ),
    "options": (
        lambda config: config | {"model_options": config["model_options"] | {"depth": 3}},
        "config.json's model and model_options do not build the network model.pt holds: ElemNet.__init__() got an "
        "unexpected keyword argument 'depth'",
    ),
}


@pytest.mark.parametrize("edit", list(RUN_EDITS))
def test_a_hand_edited_run_config_is_refused_naming_the_key(runs, tmp_path, edit):
    # each was a traceback as the run was loaded or applied: KeyError, numpy's UFuncTypeError, TypeError (the graph
    # settings of a graph model, as it built a new structure's graph)
    run = tmp_path / "run"
    shutil.copytree(runs["cgcnn" if edit == "graph" else "elemnet"], run)
    change, why = RUN_EDITS[edit]
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    (run / "config.json").write_text(json.dumps(change(config)), encoding="utf-8")
    given = tmp_path / "mgo.json" if edit == "graph" else "NaCl"
    if edit == "graph":
        given.write_text(Structure(np.eye(3) * 4.2, ["Mg", "O"], [[0, 0, 0], [0.5] * 3]).to_json(), encoding="utf-8")
    message = f"{run} is not a readable matreg run directory: {why}"
    with pytest.raises(MatregError, match=f"^{re.escape(message)}$"):
        predict(run, given, device="cpu")
    result = CliRunner().invoke(app, ["predict", str(run), str(given), "--device", "cpu"])
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n"), result.output
