"""Demo tables: valid identifiers, determinism, cross-table consistency, and the CSV / SQLite writers."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.errors import InvalidInput
from ledger.gateway import demodata
from ledger.gateway.demodata import KEY_FIELDS, TABLES, generate, person, write_csv, write_sqlite
from ledger.gateway.masking import Masker
from ledger.gateway.shaping import verify
from ledger.identity.id_number import birth_date, sex, validate_id_number
from ledger.identity.uscc import validate_uscc
from ledger.sharing.catalog import ResourceSpec
from ledger.types import MaskingRule, OpenType, ShareType

N = 3000
TODAY = date(2025, 1, 1)


@pytest.fixture(scope="module")
def tables() -> dict[str, list[dict[str, Any]]]:
    return {name: list(generate(name, N)) for name in TABLES}


def test_rows_have_exactly_the_catalog_fields_and_plain_values(
    tables: dict[str, list[dict[str, Any]]],
) -> None:
    for name, rows in tables.items():
        assert len(rows) == N, name
        names = [f.name for f in TABLES[name]]
        for row in rows:
            assert list(row) == names
            assert all(v is None or type(v) in (str, int, float, bool) for v in row.values())


@pytest.mark.parametrize("table", list(TABLES))
def test_catalog_fields_are_a_valid_resource(table: str) -> None:
    spec = ResourceSpec(
        code=f"GY-DEMO-{table}",
        name=table,
        format="table",
        share_type=ShareType.CONDITIONAL,
        open_type=OpenType.NONE,
        level=2,
        update_frequency="daily",
        legal_basis="demo",
        fields=TABLES[table],
    )
    spec.validate()  # raises on a sensitive field without a rule, or a rule on a public one
    assert KEY_FIELDS[table] in {f.name for f in TABLES[table]}


def test_population_identity_numbers_are_valid_unique_and_consistent(
    tables: dict[str, list[dict[str, Any]]],
) -> None:
    rows = tables["population"]
    for row in rows:
        number = validate_id_number(row["id_number"], today=TODAY)
        assert number == row["id_number"]
        assert number[:6] in demodata.DISTRICTS  # GB/T 2260 divisions of Guiyang
        assert birth_date(number, today=TODAY).isoformat() == row["birth_date"]
        assert row["sex"] == ("男" if sex(number, today=TODAY).value == "male" else "女")
        assert re.fullmatch(r"1[3-9][0-9]{9}", row["phone"])
        assert row["address"].startswith("贵州省贵阳市" + row["district"])
        assert row["district"] in demodata.DISTRICTS.values()
        assert row["household_type"] in ("家庭户", "集体户")
    assert len({r["id_number"] for r in rows}) == len(rows)


def test_names_are_two_to_four_characters_with_compound_surnames(
    tables: dict[str, list[dict[str, Any]]],
) -> None:
    names = [r["name"] for r in tables["population"]]
    lengths = Counter(len(n) for n in names)
    assert set(lengths) == {2, 3, 4}
    assert any(n[:2] in ("欧阳", "司马", "诸葛", "上官") for n in names)


def test_other_identity_numbers_are_valid(tables: dict[str, list[dict[str, Any]]]) -> None:
    numbers = [r["id_number"] for r in tables["social_security"]]
    numbers += [r["owner_id_number"] for r in tables["real_estate"]]
    numbers += [r["legal_rep_id_number"] for r in tables["legal_persons"]]
    for number in numbers:
        assert validate_id_number(number, today=TODAY) == number
    assert len(set(r["id_number"] for r in tables["social_security"])) == N


def test_credit_codes_are_valid(tables: dict[str, list[dict[str, Any]]]) -> None:
    codes = [r["uscc"] for r in tables["legal_persons"]] + [r["uscc"] for r in tables["credit"]]
    codes += [r["employer_uscc"] for r in tables["social_security"] if r["employer_uscc"] is not None]
    for code in codes:
        assert validate_uscc(code) == code
        assert code.startswith("91520")  # 工商 / 企业, registered in Guiyang
    assert len({r["uscc"] for r in tables["legal_persons"]}) == N
    # The credit table rates the same legal persons, row by row.
    assert [r["uscc"] for r in tables["credit"]] == [r["uscc"] for r in tables["legal_persons"]]
    assert {r["rating"] for r in tables["credit"]} == set("ABCD")


def test_deterministic_by_seed() -> None:
    for table in TABLES:
        assert list(generate(table, 200)) == list(generate(table, 200, seed=2021))
        assert list(generate(table, 200, seed=7)) == list(generate(table, 200, seed=7))
        assert list(generate(table, 200, seed=7)) != list(generate(table, 200))
    # A prefix of a longer run is the shorter run: row i does not depend on n.
    assert list(generate("real_estate", 50)) == list(generate("real_estate", 300))[:50]


def test_person_is_random_access_into_the_population(tables: dict[str, list[dict[str, Any]]]) -> None:
    rows = tables["population"]
    for i in (0, 1, 17, N - 1):
        assert person(i) == rows[i]
    assert person(5, seed=9) == next(iter(list(generate("population", 6, seed=9))[5:]))


def test_cross_table_overlap_gives_yes_and_no_verify_answers(tables: dict[str, list[dict[str, Any]]]) -> None:
    population = {r["id_number"]: r for r in tables["population"]}
    insured_rows = [r for r in tables["social_security"] if r["insured"]]
    ss_ids = {r["id_number"] for r in tables["social_security"]}
    in_both = ss_ids & population.keys()
    assert len(in_both) > 0.8 * N * 0.75  # mostly population people ...
    assert ss_ids - population.keys()  # ... plus a few from outside
    assert population.keys() - ss_ids  # and population people without social security
    answers = verify(insured_rows, key="id_number", subjects=list(population)[:200])
    assert {a["match"] for a in answers} == {True, False}

    estates = tables["real_estate"]
    for row in estates:
        owner = population.get(row["owner_id_number"])
        if owner is not None:
            assert owner["name"] == row["owner_name"]  # same person, same name, across tables
    owners = {r["owner_id_number"] for r in estates}
    assert owners & population.keys() and population.keys() - owners
    first_homes = [r for r in estates if r["is_first_home"]]
    assert first_homes and len(first_homes) < len(estates)
    assert len({r["cert_no"] for r in estates}) == len(estates)
    # 是否首套房: "does this person already own a home here?" has both answers among residents.
    answers = verify(estates, key="owner_id_number", subjects=list(population)[:200])
    assert {a["match"] for a in answers} == {True, False}
    for row in tables["social_security"]:
        assert (row["employer_uscc"] is None) == (row["monthly_base"] is None)


def test_demo_rows_mask_cleanly(tables: dict[str, list[dict[str, Any]]]) -> None:
    masker = Masker(pseudonym_key=b"demo-pseudonym-key-32-bytes-long", scope="grant-demo")
    for table, rows in tables.items():
        for row in rows[:200]:
            masked = masker.mask_row(row, TABLES[table])
            for f in TABLES[table]:
                if f.masking is MaskingRule.ID_NUMBER:
                    assert masked[f.name][6:14] == "********"
                if f.masking is MaskingRule.ADDRESS:
                    assert masked[f.name].endswith("****") and "号" not in masked[f.name]


@pytest.mark.parametrize(
    ("table", "n", "code"), [("people", 1, "unknown_table"), ("credit", -1, "invalid_demo_count")]
)
def test_generate_rejects(table: str, n: int, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        generate(table, n)
    assert info.value.code == code


def test_person_rejects_index_out_of_range() -> None:
    with pytest.raises(InvalidInput) as info:
        person(-1)
    assert info.value.code == "invalid_demo_index"


def _from_csv(value: str, type_: str) -> Any:
    if value == "":
        return None
    if type_ == "integer":
        return int(value)
    if type_ == "number":
        return float(value)
    if type_ == "boolean":
        return value == "true"
    return value


@pytest.mark.parametrize("table", list(TABLES))
def test_write_csv_round_trips(tmp_path: Path, table: str) -> None:
    path = tmp_path / f"{table}.csv"
    assert write_csv(path, table, 120, seed=3) == 120
    types = {f.name: f.type for f in TABLES[table]}
    with path.open(encoding="utf-8", newline="") as fh:
        assert fh.readline().strip() == ",".join(types)
        fh.seek(0)
        read = [{k: _from_csv(v, types[k]) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert read == list(generate(table, 120, seed=3))


@pytest.mark.parametrize("table", list(TABLES))
def test_write_sqlite_round_trips(tmp_path: Path, table: str) -> None:
    path = tmp_path / "demo.sqlite"
    assert write_sqlite(path, table, 130, seed=3, chunk=50) == 130  # three chunks, the last partial
    assert write_sqlite(f"sqlite:///{path}", table, 120, seed=3) == 120  # rewrites, no duplicate keys
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            columns = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(table)}
            result = conn.execute(sa.text(f"SELECT * FROM {table}"))
            read = [dict(r._mapping) for r in result]
            dates = [f.name for f in TABLES[table] if f.type == "date"]
            typed = conn.execute(sa.select(demodata.sql_table(table))).mappings().all()
    finally:
        engine.dispose()
    expected = list(generate(table, 120, seed=3))
    assert list(columns) == [f.name for f in TABLES[table]]
    assert isinstance(columns[dates[0]], sa.Date)
    assert len(read) == len(typed) == 120
    normalised = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()} for row in typed]
    assert normalised == expected
