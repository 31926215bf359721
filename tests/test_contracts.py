"""The nine contracts load with real content, and a malformed one is refused by file and field."""

from pathlib import Path

import pytest
import yaml

from lmdp_pipeline.contracts import NOT_DELIVERED, ContractError, Protection, VariableType, load_contracts

REGISTERS = {
    "individuals", "affiliation", "jobs", "enterprises", "cash_benefits",
    "absences", "reclassifications", "family_links", "benefits_in_kind",
}


def test_all_nine_registers_load(contracts):
    assert set(contracts.registers) == REGISTERS


def test_every_register_documents_what_spec_section_3_asks(contracts):
    for c in contracts:
        assert c.title and c.source and c.grain and c.description and c.version
        assert c.key and c.delivery.month_column in c.key or c.delivery.month_column in [v.name for v in c.variables]
        assert any(v.identifier for v in c.variables), c.register
        for v in c.variables:
            assert v.name.startswith(c.prefix)
            assert v.description and v.format and v.source
            if v.type is VariableType.code:
                assert all(code.label for level in v.codes.levels for code in level.codes)


def test_restricted_registers(contracts):
    restricted = {c.register for c in contracts if c.protection == "restricted"}
    assert restricted == {"absences", "benefits_in_kind"}


def test_quasi_identifiers_are_marked(contracts):
    individuals = contracts["individuals"]
    marked = {v.name for v in individuals.variables if v.quasi_identifier}
    assert marked == {"i_birth_date", "i_sex", "i_citizenship", "i_residence"}


def test_citizenship_is_delivered_in_the_platforms_seven_groups(contracts):
    citizenship = contracts["individuals"].variable("i_citizenship")
    assert citizenship.protection is Protection.aggregated
    assert citizenship.default == "group"
    groups = citizenship.codes.level("group").labels
    assert groups == {
        "0": "Luxembourg", "1": "Germany", "2": "Belgium", "3": "France",
        "4": "Portugal", "5": "Other EU-27", "6": "Other",
    }
    to_group = citizenship.codes.mapping("group")
    assert to_group["LU"] == "0" and to_group["PT"] == "4" and to_group["IT"] == "5" and to_group["US"] == "6"
    assert sum(1 for group in to_group.values() if group in "012345") == 27  # the EU-27


def test_residence_has_luxembourgs_100_communes_in_12_cantons(contracts):
    residence = contracts.code_lists["residence"]
    to_country = residence.mapping("country")
    communes = [code for code, country in to_country.items() if country == "LU"]
    cantons = [c for c in residence.level("canton").codes if c.parent == "LU"]
    assert len(communes) == 100 and len(cantons) == 12
    assert residence.mapping("canton")[next(c.code for c in residence.finest.codes if c.label == "Esch-sur-Alzette")] == next(
        c.code for c in cantons if c.label == "Esch-sur-Alzette"
    )
    assert {"FR", "BE", "DE"} <= {code for code, country in to_country.items() if country != "LU"}


def test_classifications_are_complete(contracts):
    nace = contracts.code_lists["nace_rev2"]
    assert [len(level.codes) for level in nace.levels] == [615, 88, 21]
    assert nace.mapping("section")["62.01"] == "J"
    isco = contracts.code_lists["isco08"]
    assert [len(level.codes) for level in isco.levels] == [436, 43, 10]
    assert isco.mapping("major")["2512"] == "2"


def test_every_aggregated_variable_defaults_coarser_and_restricted_is_not_delivered(contracts):
    for c in contracts:
        for v in c.variables:
            if v.protection is Protection.aggregated:
                assert v.default != v.levels[0].name and v.default in v.level_names
            if v.protection is Protection.restricted:
                assert v.default == NOT_DELIVERED
    assert contracts["absences"].variable("ab_diagnosis").default == NOT_DELIVERED


def test_levels_from_the_spec_example_exist(contracts):
    assert contracts["jobs"].variable("j_isco").level_names == ["4digit", "2digit", "1digit"]
    assert contracts["individuals"].variable("i_residence").level_names == ["commune", "canton", "country"]
    assert contracts["individuals"].variable("i_birth_date").level_names == ["day", "month", "year"]


# --- malformed contracts -------------------------------------------------------------------


def edit(directory: Path, name: str, change) -> Path:
    path = directory / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def variable(data: dict, name: str) -> dict:
    return next(v for v in data["variables"] if v["name"] == name)


def set_in(mapping: dict, key: str, value):
    mapping[key] = value


BREAKAGES = [
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_sex"), "protection", "secret"),
        "variables[i_sex].protection", "'open', 'aggregated' or 'restricted'", id="unknown-protection-class",
    ),
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_residence"), "default", "district"),
        "variables[i_residence]", "default level 'district' is not among the levels", id="default-not-a-level",
    ),
    pytest.param(
        "individuals",
        lambda d: variable(d, "i_sex")["codes"]["levels"][0]["codes"].append({"code": "1", "label": "Again"}),
        "variables[i_sex].codes.levels[sex]", "duplicate code '1'", id="duplicate-code",
    ),
    pytest.param(
        "cash_benefits",
        lambda d: set_in(variable(d, "cb_type")["codes"]["levels"][0]["codes"][0], "parent", "wellbeing"),
        "variables[cb_type].codes", "maps to 'wellbeing', which is not a code of level 'branch'", id="mapping-to-missing-code",
    ),
    pytest.param(
        "jobs", lambda d: set_in(variable(d, "j_isco"), "codes", "isco88"),
        "variables[j_isco].codes", "unknown code list 'isco88'", id="unknown-code-list",
    ),
    pytest.param(
        "jobs", lambda d: set_in(d, "key", ["j_matricule", "j_job_id"]),
        "(top level)", "key column 'j_job_id' is not a variable", id="key-not-a-variable",
    ),
    pytest.param(
        "jobs", lambda d: set_in(variable(d, "j_wage"), "protection", "open"),
        "variables[j_wage]", "an open variable is delivered as is", id="open-with-coarse-default",
    ),
    pytest.param(
        "absences", lambda d: set_in(variable(d, "ab_diagnosis"), "default", "chapter"),
        "variables[ab_diagnosis]", "a restricted variable is not delivered by default", id="restricted-delivered-by-default",
    ),
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_sex"), "default", "none"),
        "variables[i_sex]", "only a restricted variable has default 'none'", id="open-not-delivered",
    ),
    pytest.param(
        "jobs", lambda d: variable(d, "j_hours")["levels"].append({"name": "year", "truncate": "year"}),
        "variables[j_hours]", "'truncate' applies to date and month variables only", id="truncate-a-number",
    ),
    pytest.param(
        "individuals", lambda d: variable(d, "i_residence")["levels"].append({"name": "district", "code_level": "district"}),
        "variables[i_residence]", "code_level 'district' is not a coarser level", id="unknown-code-level",
    ),
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_sex"), "colour", "blue"),
        "variables[i_sex].colour", "Extra inputs are not permitted", id="unknown-field",
    ),
    pytest.param(
        "individuals", lambda d: variable(d, "i_birth_date").pop("type"),
        "variables[i_birth_date].type", "Field required", id="missing-type",
    ),
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_matricule"), "levels", [{"name": "raw"}]),
        "variables[i_matricule]", "an identifier has exactly one level, a pseudonym level", id="identifier-delivered-raw",
    ),
    pytest.param(
        "affiliation", lambda d: d["variables"].append(dict(variable(d, "a_status"))),
        "(top level)", "duplicate variables ['a_status']", id="duplicate-variable",
    ),
    pytest.param(
        "jobs", lambda d: set_in(d["quality"]["references"][0], "register", "persons"),
        "quality.references[j_matricule]", "unknown register 'persons'", id="reference-to-unknown-register",
    ),
    pytest.param(
        "jobs", lambda d: set_in(d["quality"]["references"][1], "to_column", "e_matricule"),
        "quality.references[j_employer]", "has no column 'e_matricule'", id="reference-to-unknown-column",
    ),
    pytest.param(
        "individuals",
        lambda d: d.setdefault("quality", {}).setdefault("references", []).append(
            {"column": "i_matricule", "register": "jobs", "to_column": "j_matricule"}),
        "field quality.references", "reference each other in a cycle", id="reference-cycle",
    ),
    pytest.param(
        "individuals", lambda d: set_in(d, "register", "persons"),
        "field register", "must match the file name", id="register-name-mismatch",
    ),
    pytest.param(
        "individuals", lambda d: set_in(variable(d, "i_sex"), "name", "x_sex"),
        "(top level)", "does not start with the register prefix 'i_'", id="wrong-prefix",
    ),
]


@pytest.mark.parametrize(("register", "change", "field", "message"), BREAKAGES)
def test_malformed_contract_is_refused_naming_file_and_field(contracts_copy, register, change, field, message):
    path = edit(contracts_copy, register, change)
    with pytest.raises(ContractError) as raised:
        load_contracts(contracts_copy)
    text = str(raised.value)
    assert str(path) in text
    assert field in text
    assert message in text


def test_malformed_code_list_is_refused(contracts_copy):
    path = contracts_copy / "code_lists" / "residence.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["levels"][0]["codes"][0]["parent"] = "99"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError, match=r"residence\.yaml: field \(top level\): code '0101' of level 'commune' maps to '99'"):
        load_contracts(contracts_copy)


def test_invalid_yaml_is_refused(contracts_copy):
    path = contracts_copy / "jobs.yaml"
    path.write_text("register: jobs\nvariables: [\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"jobs\.yaml: not valid YAML"):
        load_contracts(contracts_copy)


def test_empty_contract_directory_is_refused(tmp_path):
    with pytest.raises(ContractError, match="no register contracts"):
        load_contracts(tmp_path)


def test_each_register_is_ingested_after_the_registers_its_checks_read(contracts):
    order = contracts.ingestion_order
    assert sorted(order) == sorted(contracts.registers)
    for contract in contracts:
        for ref in contract.quality.references:
            if ref.register != contract.register:
                assert order.index(ref.register) < order.index(contract.register), f"{contract.register} reads {ref.register}"


def test_a_new_delivery_rechecks_every_register_that_reads_it_even_through_another(contracts):
    """Hand-derived from the contracts: absences read affiliation, which reads individuals and enterprises."""
    assert contracts.dependents["affiliation"] == {"absences", "benefits_in_kind", "cash_benefits", "reclassifications"}
    assert contracts.dependents["enterprises"] == {"affiliation", "jobs", "absences", "benefits_in_kind", "cash_benefits",
                                                   "reclassifications"}
    assert contracts.dependents["individuals"] == set(contracts.registers) - {"individuals", "enterprises"}
    assert contracts.dependents["jobs"] == set()
