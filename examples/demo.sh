#!/usr/bin/env sh
# The main job on the embedded default store, offline: fetch bundled NIST-JANAF tables, import a lab file,
# query the DuckDB file, export a dataset. Run from the repository root after `pip install .`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export MATREG_STORE="${MATREG_STORE:-matreg-store}"
set -x
matreg fetch janaf Al-001 Al-096 Al-098 O-029 N-023 C-095 H-063 H-064 H-065 H-069 Fe-003 Na-019 Xe-002 D-017 \
    Ca-027 Mg-009 --base-url "file://$here/janaf/tables/"
matreg import "$here/lab/bandgaps.csv" --mapping "$here/lab/mapping.yaml"
matreg sql "select provenance, count(*) as n_values from properties group by 1 order by 1"
matreg sql "select formula, phase, value as dHf_kJ_per_mol from properties join materials using (record_id) \
    where property = 'enthalpy_of_formation' order by value limit 5"
matreg export janaf-thermo-298 --format csv --out exports/janaf-thermo-298.csv --layout wide
matreg validate
matreg status
