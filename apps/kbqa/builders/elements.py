"""Chemical elements KB from mendeleev's database: elements, isotopes, periodic-table groups,
periods and blocks, decay modes, discoverers, places of discovery, producer countries.

Derived by a stated rule only: an element's most abundant isotope (highest natural abundance),
most stable isotope (longest half-life), and "followed by" (next atomic number). Half-lives are
converted to seconds so kopl can compare them (it compares quantities of one unit only).
"""

from __future__ import annotations

import math
import re

from mendeleev.fetch import fetch_table

from apps.kbqa.builders import KBBuilder, provenance, quantity, string, year

NAME = "elements"
TITLE = "Chemical elements"
PACKAGES = ("mendeleev",)

SERIES_CONCEPTS = {  # mendeleev series name -> (concept id, name, is a metal)
    "Nonmetals": ("nonmetal", "nonmetal", False),
    "Noble gases": ("noble_gas", "noble gas", False),
    "Alkali metals": ("alkali_metal", "alkali metal", True),
    "Alkaline earth metals": ("alkaline_earth_metal", "alkaline earth metal", True),
    "Metalloids": ("metalloid", "metalloid", False),
    "Halogens": ("halogen", "halogen", False),
    "Poor metals": ("post_transition_metal", "post-transition metal", True),
    "Transition metals": ("transition_metal", "transition metal", True),
    "Lanthanides": ("lanthanide", "lanthanide", True),
    "Actinides": ("actinide", "actinide", True),
}
DECAY_MODES = {
    "A": "alpha decay",
    "B-": "beta-minus decay",
    "B+": "beta-plus decay",
    "EC": "electron capture",
    "SF": "spontaneous fission",
    "p": "proton emission",
    "2p": "two-proton emission",
    "n": "neutron emission",
    "2n": "two-neutron emission",
    "B-n": "beta-delayed neutron emission",
    "B+p": "beta-delayed proton emission",
    "2B-": "double beta-minus decay",
    "2B+": "double beta-plus decay",
    "IT": "isomeric transition",
}
LATTICES = {
    "BCC": "body-centred cubic",
    "FCC": "face-centred cubic",
    "HEX": "hexagonal",
    "CUB": "cubic",
    "DIA": "diamond cubic",
    "ORC": "orthorhombic",
    "MCL": "monoclinic",
    "RHL": "rhombohedral",
    "TET": "tetragonal",
}
SECONDS = {
    "ysec": 1e-24, "zsec": 1e-21, "asec": 1e-18, "psec": 1e-12, "nsec": 1e-9, "usec": 1e-6, "msec": 1e-3,
    "sec": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "year": 31_556_952.0,
}  # fmt: skip
for prefix, factor in {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}.items():
    SECONDS[f"{prefix}year"] = factor * SECONDS["year"]
PLACE_ALIASES = {"USA": "United States", "DRC": "Democratic Republic of the Congo", "Austrailia": "Australia"}


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _ranked_places(text: str) -> list[tuple[int, str]]:
    """'1) USA  2) Algeria  3) Russia' -> [(1, 'United States'), (2, 'Algeria'), (3, 'Russia')]."""
    places = []
    for rank, name in re.findall(r"(\d)\)\s*([^0-9]+?)\s*(?=\d\)|$)", text):
        name = re.sub(r"\s*\(.*\)\s*$", "", name).strip()
        if name and not name.lower().startswith("unknown"):
            places.append((int(rank), PLACE_ALIASES.get(name, name)))
    return places


def build() -> tuple[dict, str]:
    """(KoPL data, provenance text)."""
    elements = fetch_table("elements").sort_values("atomic_number")
    isotopes = fetch_table("isotopes").sort_values(["atomic_number", "mass_number"])
    groups = fetch_table("groups").set_index("group_id")
    series = fetch_table("series").set_index("id")
    decays = fetch_table("isotopedecaymodes")
    oxidation = fetch_table("oxidationstates")
    ionization = fetch_table("ionizationenergies")
    phases = fetch_table("phasetransitions")
    kb = KBBuilder()

    c_substance = kb.concept("chemical_entity", "chemical entity")
    c_element = kb.concept("chemical_element", "chemical element", (c_substance,))
    c_metal = kb.concept("metal", "metal", (c_element,))
    for cid, name, is_metal in SERIES_CONCEPTS.values():
        kb.concept(cid, name, (c_metal if is_metal else c_element,))
    c_radioactive_element = kb.concept("radioactive_element", "radioactive element", (c_element,))
    c_isotope = kb.concept("isotope", "isotope", (c_substance,))
    c_stable = kb.concept("stable_isotope", "stable isotope", (c_isotope,))
    c_unstable = kb.concept("radioactive_isotope", "radioactive isotope", (c_isotope,))
    c_table_part = kb.concept("periodic_table_part", "part of the periodic table")
    c_group = kb.concept("group", "group of the periodic table", (c_table_part,))
    c_period = kb.concept("period", "period of the periodic table", (c_table_part,))
    c_block = kb.concept("block", "block of the periodic table", (c_table_part,))
    c_decay = kb.concept("decay_mode", "decay mode")
    c_person = kb.concept("person", "person")
    c_place = kb.concept("place", "country or region")
    c_lattice = kb.concept("crystal_system", "crystal structure")
    c_goldschmidt = kb.concept("goldschmidt_class", "Goldschmidt class")
    c_geochemical = kb.concept("geochemical_class", "geochemical class")

    for group_id, row in groups.iterrows():
        label = f"group {int(group_id)}"
        eid = kb.entity(f"group:{int(group_id)}", label, [c_group])
        kb.attr(eid, "group number", quantity(group_id))
        kb.attr(eid, "CAS group label", string(row["symbol"]))
        if row["name"].strip():
            kb.attr(eid, "trivial name", string(row["name"].strip()))
    for period in sorted(elements["period"].unique()):
        kb.attr(kb.entity(f"period:{period}", f"period {period}", [c_period]), "period number", quantity(period))
    for block in sorted(elements["block"].unique()):
        kb.entity(f"block:{block}", f"{block}-block", [c_block])

    for _, el in elements.iterrows():
        z = int(el["atomic_number"])
        concepts = [c_element]
        if _present(el["series_id"]):
            concepts.append(SERIES_CONCEPTS[series.loc[int(el["series_id"]), "name"]][0])
        if el["is_radioactive"]:
            concepts.append(c_radioactive_element)
        eid = kb.entity(f"element:{z}", el["name"].lower(), concepts)
        kb.attr(eid, "atomic number", quantity(z))
        kb.attr(eid, "element symbol", string(el["symbol"]))
        numeric = {
            "atomic weight": ("atomic_weight", "dalton"),
            "density": ("density", "gram per cubic centimetre"),
            "electronegativity": ("en_pauling", "1"),
            "atomic radius": ("atomic_radius", "picometre"),
            "covalent radius": ("covalent_radius_pyykko", "picometre"),
            "van der Waals radius": ("vdw_radius", "picometre"),
            "electron affinity": ("electron_affinity", "electronvolt"),
            "thermal conductivity": ("thermal_conductivity", "watt per metre kelvin"),
            "specific heat capacity": ("specific_heat_capacity", "joule per gram kelvin"),
            "abundance in Earth's crust": ("abundance_crust", "milligram per kilogram"),
            "lattice constant": ("lattice_constant", "angstrom"),
            "price": ("price_per_kg", "US dollar per kilogram"),
        }
        for key, (column, unit) in numeric.items():
            if _present(el[column]):
                kb.attr(eid, key, quantity(round(float(el[column]), 6), unit))
        for key, column in (("CAS Registry Number", "cas"), ("electron configuration", "electronic_configuration")):
            if _present(el[column]):
                kb.attr(eid, key, string(el[column]))
        if _present(el["discovery_year"]):
            kb.attr(eid, "time of discovery", year(el["discovery_year"]))
        if _present(el["name_origin"]):
            kb.attr(eid, "name origin", string(el["name_origin"]))
        for _, state in oxidation[oxidation["atomic_number"] == z].sort_values("oxidation_state").iterrows():
            kb.attr(
                eid, "oxidation state", quantity(state["oxidation_state"]), {"category": [string(state["category"])]}
            )
        first = ionization[(ionization["atomic_number"] == z) & (ionization["ion_charge"] < 3)]
        for _, energy in first.sort_values("ion_charge").iterrows():
            if _present(energy["ionization_energy"]):
                kb.attr(
                    eid,
                    "ionization energy",
                    quantity(round(float(energy["ionization_energy"]), 6), "electronvolt"),
                    {"ion charge": [quantity(energy["ion_charge"])]},
                )
        transitions = phases[(phases["atomic_number"] == z) & phases["allotrope"].isna()]
        if not transitions.empty:
            row = transitions.iloc[0]
            for key, column in (("melting point", "melting_point"), ("boiling point", "boiling_point")):
                if _present(row[column]):
                    kb.attr(eid, key, quantity(round(float(row[column]), 3), "kelvin"))

    # Isotopes with their decay modes
    modes = {}
    for _, decay in decays.iterrows():
        modes.setdefault(int(decay["isotope_id"]), []).append(decay)
    for code in sorted({str(m) for m in decays["mode"]}):
        eid = kb.entity(f"decay:{_slug(code) or code}", DECAY_MODES.get(code, f"{code} decay"), [c_decay])
        kb.attr(eid, "decay mode code", string(code))
    elements_by_z = {int(el["atomic_number"]): el for _, el in elements.iterrows()}
    most_abundant: dict[int, tuple[float, str]] = {}
    most_stable: dict[int, tuple[float, str]] = {}
    for _, iso in isotopes.iterrows():
        z, a = int(iso["atomic_number"]), int(iso["mass_number"])
        name = f"{elements_by_z[z]['name'].lower()}-{a}"
        stable = not iso["is_radioactive"]
        eid = kb.entity(f"isotope:{z}-{a}", name, [c_stable if stable else c_unstable])
        kb.attr(eid, "mass number", quantity(a))
        kb.attr(eid, "neutron number", quantity(a - z))
        if _present(iso["mass"]):
            kb.attr(eid, "atomic mass", quantity(round(float(iso["mass"]), 8), "dalton"))
        if _present(iso["abundance"]):
            kb.attr(eid, "natural abundance", quantity(float(iso["abundance"]), "percent"))
            if iso["abundance"] > most_abundant.get(z, (-1.0, ""))[0]:
                most_abundant[z] = (float(iso["abundance"]), eid)
        if _present(iso["half_life"]) and iso["half_life_unit"] in SECONDS:
            seconds = float(f"{float(iso['half_life']) * SECONDS[iso['half_life_unit']]:.6g}")
            kb.attr(
                eid,
                "half-life",
                quantity(seconds, "second"),
                {"as published": [string(f"{iso['half_life']:g} {iso['half_life_unit']}")]},
            )
            if seconds > most_stable.get(z, (-1.0, ""))[0]:
                most_stable[z] = (seconds, eid)
        if _present(iso["spin"]):
            kb.attr(eid, "nuclear spin", string(iso["spin"]))
        if _present(iso["discovery_year"]):
            kb.attr(eid, "time of discovery", year(iso["discovery_year"]))
        kb.rel(eid, "isotope of", f"element:{z}")
        for decay in modes.get(int(iso["id"]), []):
            qualifiers = {}
            if _present(decay["intensity"]) and str(decay["relation"]).strip() in ("=", "~"):
                qualifiers["branching ratio"] = [quantity(float(decay["intensity"]), "percent")]
            kb.rel(eid, "decay mode", f"decay:{_slug(str(decay['mode'])) or decay['mode']}", qualifiers)

    # Element relations
    places: set[str] = set()
    for _, el in elements.iterrows():
        for text in (el["discovery_location"], el["top_3_producers"], el["top_3_reserve_holders"]):
            if not _present(text):
                continue
            names = [n for _, n in _ranked_places(text)] if ")" in text else text.split("/")
            places.update(n.strip() for n in names if n.strip())
    for place in sorted(places):
        kb.entity(f"place:{_slug(place)}", place, [c_place])
    for code, label in LATTICES.items():
        kb.attr(kb.entity(f"lattice:{code}", label, [c_lattice]), "lattice code", string(code))
    for name in sorted({str(c) for c in elements["goldschmidt_class"] if _present(c)}):
        # mendeleev spells lithophile "litophile"; the entity keeps the usual spelling.
        kb.entity(f"goldschmidt:{name}", name.replace("litophile", "lithophile"), [c_goldschmidt])
    for name in sorted({str(c) for c in elements["geochemical_class"] if _present(c)}):
        kb.entity(f"geochemical:{_slug(name)}", name, [c_geochemical])

    for _, el in elements.iterrows():
        z = int(el["atomic_number"])
        eid = f"element:{z}"
        if _present(el["geochemical_class"]):
            kb.rel(eid, "geochemical class", f"geochemical:{_slug(el['geochemical_class'])}")
        if _present(el["group_id"]):
            kb.rel(eid, "group", f"group:{int(el['group_id'])}")
        kb.rel(eid, "period", f"period:{int(el['period'])}")
        kb.rel(eid, "block", f"block:{el['block']}")
        kb.rel(eid, "followed by", f"element:{z + 1}")
        if _present(el["lattice_structure"]):
            kb.rel(eid, "crystal structure", f"lattice:{el['lattice_structure']}")
        if _present(el["goldschmidt_class"]):
            kb.rel(eid, "Goldschmidt class", f"goldschmidt:{el['goldschmidt_class']}")
        if z in most_abundant:
            kb.rel(eid, "most abundant isotope", most_abundant[z][1])
        if z in most_stable:
            kb.rel(eid, "most stable isotope", most_stable[z][1])
        when = {"point in time": [year(el["discovery_year"])]} if _present(el["discovery_year"]) else {}
        if _present(el["discoverers"]) and not el["discoverers"].lower().startswith("known to the ancients"):
            for person in re.split(r",\s*|\s+and\s+", el["discoverers"]):
                person = person.strip(" .")
                if not person:
                    continue
                pid = f"person:{_slug(person)}"
                if pid not in kb.entities:
                    kb.entity(pid, person, [c_person])
                kb.rel(eid, "discovered by", pid, when)
        if _present(el["discovery_location"]):
            for place in el["discovery_location"].split("/"):
                kb.rel(eid, "location of discovery", f"place:{_slug(place.strip())}", when)
        for column, relation in (("top_3_producers", "top producer"), ("top_3_reserve_holders", "top reserve holder")):
            if _present(el[column]):
                for rank, place in _ranked_places(el[column]):
                    kb.rel(eid, relation, f"place:{_slug(place)}", {"rank": [quantity(rank)]})

    return kb.data(), provenance(*PACKAGES)
