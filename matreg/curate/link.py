"""Cross-database identity: which records of the store (any source, lab files too) describe the same material.

Rules, applied to the `materials` table:
1. A crystal record (no stated phase other than 'cr', or JANAF's 'cr,l': a table of the crystal up to its melting
   point and the liquid above, whose values are compared per temperature, so its 298.15 K row meets a crystal's;
   not one that melts at or below 298.15 K, Br2, Hg, N2O4, H2SO4·6.5H2O, whose 298.15 K row is the liquid's) with
   a space group number joins the group of its composition (formula.composition_key: a reduced formula, fractional
   amounts in whole numbers where they are exactly such a ratio, TeSe and Te0.5Se0.5 being one; else its atomic
   fractions, so a doped Zn0.9999Co0.0001O is never ZnO) and space group. A record with a structure but no space
   group number gets one from its structure (pymatgen's SpacegroupAnalyzer at emmet's tolerance, each structure
   document once: matreg/curate/symmetry.py remembers them) when another record has its formula; where spglib finds
   no symmetry (a broken cell), it is treated as a record without space group (rules 3 and 4).
2. Inside one formula + space group, records that have structures are split by pymatgen's StructureMatcher (default
   tolerances): polytypes that share a space group (4H and 6H SiC) become separate groups. A record without a
   structure joins the one group there, or stays apart when StructureMatcher found several.
3. A crystal record still without a space group whose name states its phase after the compound's name, as JANAF's
   titles do ('Aluminum Oxide, Alpha (Al2O3)', the formula in parentheses being the record's), joins the group of
   its formula and that phase ('Al2O3/Alpha'; the phase's letter case aside: 'alpha' and 'ALPHA' are JANAF's 'Alpha',
   the group id writing each word capitalized, roman numerals in capitals): JANAF's alpha and gamma alumina are two
   materials. Which space group a phase name means is not known, so such a group is never merged with a space
   group's.
4. Any other crystal record without a space group (a lab sample, a JANAF table naming no phase) describes its
   formula's ground state: it joins the one group of its formula (of rule 1, 2 or 3) holding a record that a database
   places on its convex hull (an energy_above_hull value in the store of at most ON_HULL_EV_PER_ATOM, 1 meV/atom:
   MP, OQMD, JARVIS and OPTIMADE providers give one). Where no group of its formula, or several, hold such a record,
   it joins the formula-only group: a metastable polymorph (the only ZnO of a store being rutile-type ZnO, 0.023
   eV/atom above the hull) is never taken for a lab sample's ZnO, nor is a named phase that states no such value.
   (A functional's ground state may not be the measured phase: JANAF's rock-salt LiI joins PBE's wurtzite LiI.)
   A record that states itself to be above the hull (a calculation of a metastable phase) describes no ground state:
   the formula-only group. (Hull values are read as stored: a steward's decisions on them do not move links.)
5. A record in another state (JANAF's 'g', 'l', 'ref', ..., a lab formula cell's '(g)', '(l)') is grouped by its
   species (the formula as written, not reduced: O, O2 and O3 are three gases) and phase: H2O(l) and H2O(g) are not
   one material. (An ion's formula carries its charge, 'Xe[+1]': it never meets the neutral element. Isotopes count:
   D2O is not H2O.)

Molar values of a group are compared per mole of one formula unit: a crystal's reduced formula (Fe4O6's value is
halved to meet Fe2O3's; TeSe's where a record states it, Te0.5Se0.5's value being doubled; else the fractional one
of its first record, Fe0.947O1, never its whole-number Fe947O1000), a gas's species.

No rule reads a record of another composition (composition_key; a gas's group is its own species and phase): a
dataset's records are linked with those of their compositions only (`link_records`'s `needed`), as in the whole store.

Group ids are readable and follow from the store's content: 'ZnSe/216', 'SiC/186/mp:mp-567505' (a structure
cluster of a space group StructureMatcher splits, named by its smallest record id: records added to another cluster
never rename it; a record of a smaller id joining it, or a second cluster appearing in a space group of one, does),
'SiC/186' (a record without structure in a split space group), 'Al2O3/Alpha' (a named phase), 'CdS' (formula only),
'Zn9999CoO10000' (the formula-only group of a doped Zn0.9999Co0.0001O, its amounts as written), 'H2O (l)',
'Xe[+1] (g)'.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain

import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher

from matreg.curate.symmetry import StructureDocument, spacegroup_numbers
from matreg.errors import FormulaError
from matreg.formula import CRYSTAL, REFERENCE_TEMPERATURE_K, atoms_per_unit, composition_key, parse_formula
from matreg.store import Store

# a transition to the liquid in a JANAF record's notes ('265.900 K: CRYSTAL <--> LIQUID', 'BETA <--> LIQUID')
_MELTING = re.compile(r"(?P<kelvin>\d+(?:\.\d+)?) K: [^;:]*<--> LIQUID")
ON_HULL_EV_PER_ATOM = 1e-3  # an energy_above_hull this small places a record on its database's convex hull
_COLUMNS = ["record_id", "group_id", "formula_unit", "unit_atoms"]
# JANAF's title of a crystal table: '<compound>, <phase> (<formula>)', e.g. 'Silicon Oxide, Cristobalite, High (SiO2)'
_NAMED_PHASE = re.compile(r"[^,()]+, (?P<phase>[^()]+) \((?P<formula>.+)\)")
_ROMAN_NUMERAL = re.compile(r"(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3})")  # JANAF's phases I to V ('Sodium Sulfate, V')


def link_records(store: Store, needed: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per record of the store: record_id, the group_id of the material it describes, and the formula unit
    its group compares molar values per (`formula_unit`: a crystal's reduced formula, a gas's species) with its
    atoms (`unit_atoms`).

    `needed` (record ids: a dataset's) links only the records that can share a group with them, those of their
    compositions (`composition_key`): no rule reads a record of another composition, so each of theirs comes out as
    linking the whole store gives it. None links every record."""
    records = store.read(
        "SELECT record_id, formula, formula_original, name, phase, notes, spacegroup_number, "
        "structure IS NOT NULL AS has_structure FROM materials ORDER BY record_id"
    )
    records["reduced"] = records["formula"]
    records["formula"] = map_distinct(records["formula"], composition_key)  # TeSe and Te0.5Se0.5: one composition
    if needed is not None:
        records = _of_compositions(records, needed)
    if records.empty:
        return pd.DataFrame(columns=_COLUMNS)
    records["spacegroup_number"] = records["spacegroup_number"].astype("Int64")
    records["state"] = [_state(phase, notes) for phase, notes in records[["phase", "notes"]].itertuples(index=False)]
    crystal = records["state"].eq("")
    structures = _structures_to_match(store, records, crystal)
    species = map_distinct(records["formula_original"], _species)
    groups = dict(zip(records["record_id"], species + records["state"], strict=True))  # gases, liquids
    groups.update(_crystal_groups(records[crystal], structures, _hull_energies(store)))
    group_ids = records["record_id"].map(groups)
    unit = species.where(~crystal, _crystal_units(records, group_ids))
    return pd.DataFrame(
        {
            "record_id": records["record_id"],
            "group_id": group_ids,
            "formula_unit": unit,
            "unit_atoms": map_distinct(unit, atoms_per_unit),
        }
    )


def map_distinct(values: pd.Series, function: Callable[[str], object]) -> pd.Series:
    """`values.map(function)`, calling `function` once per distinct value (a store's formulas repeat)."""
    distinct = values.drop_duplicates()
    return values.map(dict(zip(distinct, distinct.map(function), strict=True)))


def _of_compositions(records: pd.DataFrame, needed: Iterable[str]) -> pd.DataFrame:
    """The records of the compositions (`formula`: composition keys) of the `needed` records."""
    compositions = records.loc[records["record_id"].isin(set(needed)), "formula"]
    return records[records["formula"].isin(set(compositions))].reset_index(drop=True)


def _crystal_units(records: pd.DataFrame, group_ids: pd.Series) -> pd.Series:
    """Per record, its crystal group's formula unit: the reduced formula of a record of the group that states it in
    whole numbers (TeSe, which Te0.5Se0.5's values are doubled to meet), else of its first record, amounts as they
    are (Fe0.947O1: never Fe947O1000, a thousand of those)."""
    fractional = records["reduced"].str.contains(".", regex=False)
    first = records.assign(group_id=group_ids, fractional=fractional).sort_values(["fractional", "record_id"])
    return group_ids.map(first.drop_duplicates("group_id").set_index("group_id")["reduced"])


def _species(original: str) -> str:
    """The species a record of a gas or liquid names: its formula as written, not reduced (O2, not O)."""
    return parse_formula(original, as_stored=True).species


def _state(phase: str | None, notes: str | None) -> str:
    """'' for a crystal, else the phase as it ends a group id (' (l)'). A JANAF 'cr,l' table is a crystal's unless
    it melts at or below the reference temperature (its notes: '265.9 K: CRYSTAL <--> LIQUID', Br2): its 298.15 K
    row, the one a crystal's values meet, is then the liquid's."""
    if phase is None or pd.isna(phase) or phase == CRYSTAL:
        return ""
    melting = _MELTING.search(notes) if isinstance(notes, str) else None
    if phase == "cr,l" and (melting is None or float(melting["kelvin"]) > REFERENCE_TEMPERATURE_K):
        return ""
    return f" ({phase})"


def _hull_energies(store: Store) -> dict[str, float]:
    """Each record's energy above its database's convex hull (the least, where it has several), by record id."""
    rows = store.read(
        "SELECT record_id, min(value) AS above FROM properties WHERE property = 'energy_above_hull' GROUP BY record_id"
    )
    return dict(zip(rows["record_id"], rows["above"], strict=True))


def _structures_to_match(store: Store, records: pd.DataFrame, crystal: pd.Series) -> dict[str, StructureDocument]:
    """Structures StructureMatcher needs, by record id; missing space groups derived from them (in `records`)."""
    # a formula held by one record needs no matching: its structure is never read
    matchable = crystal & records["has_structure"] & records.groupby("formula")["record_id"].transform("size").gt(1)
    structures = _structures(store, records[matchable & records["spacegroup_number"].isna()]["record_id"])
    _derive_spacegroups(records, structures)
    candidates = records[matchable]
    shared = candidates.groupby(["formula", "spacegroup_number"])["record_id"].transform("size").gt(1)
    structures.update(_structures(store, candidates[shared & ~candidates["record_id"].isin(structures)]["record_id"]))
    return structures


def _structures(store: Store, record_ids: pd.Series) -> dict[str, StructureDocument]:
    """The structure documents of these records (pymatgen JSON in the store), by record id: records of one document
    (a material each file of a dataset gives) share it, which spglib and StructureMatcher then read once."""
    if record_ids.empty:
        return {}
    rows = store.read(
        "SELECT record_id, structure FROM materials WHERE record_id IN (SELECT unnest(?))", [record_ids.tolist()]
    )
    documents = {text: StructureDocument(text) for text in rows["structure"].drop_duplicates()}
    return {record_id: documents[text] for record_id, text in rows.itertuples(index=False)}


def _derive_spacegroups(records: pd.DataFrame, structures: dict[str, StructureDocument]) -> None:
    """Fill missing space group numbers from the records' structures (`symmetry.spacegroup_numbers`), in place."""
    missing = records["spacegroup_number"].isna() & records["record_id"].isin(structures)
    documents = [structures[record_id] for record_id in records.loc[missing, "record_id"]]
    number_of = spacegroup_numbers(documents)
    records.loc[missing, "spacegroup_number"] = pd.array([number_of[doc.key] for doc in documents], dtype="Int64")


def _crystal_groups(
    records: pd.DataFrame, structures: dict[str, StructureDocument], hull: dict[str, float]
) -> dict[str, str]:
    """Crystals: formula + space group split by StructureMatcher, formula + named phase, then the records known by
    formula only, in the group of their formula's ground state (a record on a convex hull: `hull`, the records'
    energies above it), unless they state themselves to be above the hull."""
    groups: dict[str, str] = {}
    known = records[records["spacegroup_number"].notna()]
    for (formula, number), bucket in known.groupby(["formula", "spacegroup_number"], sort=True):
        groups.update(_spacegroup_groups(f"{formula}/{number}", bucket["record_id"], structures))
    unknown = records[records["spacegroup_number"].isna()]
    phases = [_named_phase(name, formula) for name, formula in unknown[["name", "formula"]].itertuples(index=False)]
    for record_id, formula, phase in zip(unknown["record_id"], unknown["formula"], phases, strict=True):
        if phase is not None:
            groups[record_id] = f"{formula}/{phase}"
    on_hull = {record_id for record_id, above in hull.items() if above <= ON_HULL_EV_PER_ATOM}
    formula_of = dict(zip(records["record_id"], records["formula"], strict=True))
    ground_states = _ground_state_groups(groups, formula_of, on_hull)
    for record_id, formula in unknown[["record_id", "formula"]].itertuples(index=False):
        if record_id not in groups:
            candidates = ground_states.get(formula, set())
            ground_state = len(candidates) == 1 and hull.get(record_id, 0.0) <= ON_HULL_EV_PER_ATOM
            groups[record_id] = next(iter(candidates)) if ground_state else formula
    return groups


def _ground_state_groups(groups: dict[str, str], formula_of: dict[str, str], on_hull: set[str]) -> dict[str, set[str]]:
    """Per formula, its groups that hold a record on a convex hull."""
    ground_states: dict[str, set[str]] = defaultdict(set)
    for record_id, group in groups.items():
        if record_id in on_hull:
            ground_states[formula_of[record_id]].add(group)
    return ground_states


def _named_phase(name: str | None, formula: str) -> str | None:
    """The crystal phase a record's name states, JANAF's way ('Aluminum Oxide, Alpha (Al2O3)': 'Alpha'), when the
    formula in its parentheses, read as a stored one (`parse_formula`'s `as_stored`: 'ZnO[0]' as the ZnO[+0] an older
    matreg stored of it), is the record's `formula`; None for any other name."""
    match = _NAMED_PHASE.fullmatch(name.strip()) if isinstance(name, str) else None
    if match is None:
        return None
    try:
        named = composition_key(parse_formula(match["formula"], as_stored=True).reduced)
    except FormulaError:
        return None
    return _phase_label(match["phase"]) if named == formula else None


def _phase_label(phase: str) -> str:
    """A named phase as its group id writes it, whatever its letter case and spacing: each word capitalized, roman
    numerals in capitals ('ALPHA' and 'alpha': 'Alpha'; 'red,  iv': 'Red, IV')."""
    words = " ".join(phase.split()).casefold()
    return re.sub(r"[^\W\d_]+", lambda word: _word_label(word[0]), words)


def _word_label(word: str) -> str:
    """One word of a phase's name: a roman numeral in capitals, any other word capitalized."""
    return word.upper() if _ROMAN_NUMERAL.fullmatch(word) else word.capitalize()


def _spacegroup_groups(
    prefix: str, record_ids: Iterable[str], structures: dict[str, StructureDocument]
) -> dict[str, str]:
    """Groups inside one formula + space group: one per StructureMatcher cluster, each named by its smallest record id
    when there are several."""
    ids = list(record_ids)
    clusters = _clusters([record_id for record_id in ids if record_id in structures], structures)
    if len(clusters) <= 1:
        return {record_id: prefix for record_id in ids}
    groups = {record_id: f"{prefix}/{cluster[0]}" for cluster in clusters for record_id in cluster}
    return {record_id: groups.get(record_id, prefix) for record_id in ids}


def _clusters(record_ids: list[str], structures: dict[str, StructureDocument]) -> list[list[str]]:
    """Record ids grouped by StructureMatcher, each cluster sorted; records of one structure document are one
    cluster's without matching."""
    sharing: dict[bytes, list[str]] = defaultdict(list)
    for record_id in record_ids:
        sharing[structures[record_id].key].append(record_id)
    if len(sharing) < 2:
        return [sorted(record_ids)] if record_ids else []
    key_of = {id(structures[ids[0]].structure): key for key, ids in sharing.items()}
    distinct = [structures[ids[0]].structure for ids in sharing.values()]
    matched = StructureMatcher().group_structures(distinct)
    return [sorted(chain.from_iterable(sharing[key_of[id(structure)]] for structure in cluster)) for cluster in matched]
