"""The published data dictionary documents every variable as the platform marks it."""

import html
import re

import pytest

from lmdp_pipeline.dictionary import ONE_LOCK, TWO_LOCKS, publish


@pytest.fixture(scope="module")
def published(tmp_path_factory, contracts):
    return publish(contracts, tmp_path_factory.mktemp("home") / "dictionary")


def page(published, register: str, fmt: str = "html") -> str:
    return (published.directory / fmt / f"{register}.{fmt}").read_text(encoding="utf-8")


def section(text: str, variable: str) -> str:
    """The HTML section of one variable."""
    match = re.search(rf'<section class="variable" id="{variable}">(.*?)</section>', text, re.S)
    assert match, variable
    return html.unescape(match.group(1))


def test_one_page_per_register_in_html_and_markdown(published, contracts):
    for fmt in ("html", "md"):
        assert (published.directory / fmt / f"index.{fmt}").is_file()
        for register in contracts.registers:
            assert (published.directory / fmt / f"{register}.{fmt}").is_file()
        for name in contracts.code_lists:
            assert (published.directory / fmt / "code_lists" / f"{name}.{fmt}").is_file()


def test_every_variable_is_documented_with_its_levels(published, contracts):
    for contract in contracts:
        text = page(published, contract.register)
        markdown = page(published, contract.register, "md")
        for v in contract.variables:
            body = section(text, v.name)
            assert html.unescape(v.description) in body
            assert v.format in body and v.source in body and v.protection.value in body
            for level in v.levels:
                assert f"<td>{level.name}</td>" in body
            assert f"`{v.name}`" in markdown


def test_protection_marks(published):
    individuals = page(published, "individuals")
    assert ONE_LOCK in section(individuals, "i_citizenship")
    assert TWO_LOCKS not in section(individuals, "i_citizenship")
    assert ONE_LOCK not in section(individuals, "i_sex")
    absences = page(published, "absences")
    assert TWO_LOCKS in section(absences, "ab_diagnosis")
    assert "not delivered" in section(absences, "ab_diagnosis")
    heading = re.search(r"<h1>(.*?)</h1>", absences).group(1)
    assert TWO_LOCKS in heading, "a restricted register carries two locks"


def test_code_lists_with_labels(published):
    citizenship = section(page(published, "individuals"), "i_citizenship")
    assert 'href="code_lists/countries.html"' in citizenship
    countries = (published.directory / "html" / "code_lists" / "countries.html").read_text(encoding="utf-8")
    assert "Other EU-27" in countries and "Portugal" in countries
    reasons = section(page(published, "absences"), "ab_reason")
    assert "Accident at work or on the way to work" in reasons
    assert "mapped to level 'group' of the code list" in reasons


def test_republishing_switches_atomically_and_leaves_no_debris(published, contracts):
    parent = published.directory.parent
    before = published.directory.resolve()
    again = publish(contracts, published.directory)
    assert again.directory.is_symlink()
    assert again.directory.resolve() != before and not before.exists()
    leftovers = [p.name for p in parent.iterdir() if p.name.startswith(".dictionary") and p != again.directory.resolve()]
    assert leftovers == []


def test_a_real_folder_in_the_way_is_not_overwritten(tmp_path, contracts):
    target = tmp_path / "dictionary"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="move it away"):
        publish(contracts, target)
    assert (target / "notes.txt").read_text() == "mine"


def test_html_pages_escape_what_the_contracts_say(contracts_copy, tmp_path):
    """A description is text, never markup: a contract edit cannot inject a script into the published pages."""
    from lmdp_pipeline.contracts import load_contracts

    path = contracts_copy / "individuals.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "description: Month the row describes.", "description: Month the row <script>alert(1)</script> describes."), encoding="utf-8")
    text = page(publish(load_contracts(contracts_copy), tmp_path / "dictionary"), "individuals")
    assert "<script>" not in text and "&lt;script&gt;" in text
