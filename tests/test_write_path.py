"""The pieces of every write that have fast paths: the NUL check of a tool's arguments, search documents, and
rows as stored."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy.dialects import postgresql, sqlite

from mcp_crm.catalog.tools import _nul_in
from mcp_crm.entities import ENTITIES
from mcp_crm.operations.records import as_stored, as_stored_rows
from mcp_crm.search.terms import document


def test_the_nul_check_names_where_the_first_nul_is():
    assert _nul_in({"items": [{"first_name": "Ada", "tags": ["a", "b"]}] * 3}) is None
    assert _nul_in({"items": [{"first_name": "Ada"}, {"notes": "x\x00"}]}) == "arguments.items[1].notes"
    assert _nul_in({"items": [{"emails": [{"value": "a@b.c"}, {"value": "\x00"}]}]}) == (
        "arguments.items[0].emails[1].value"
    )
    assert _nul_in({"custom": {"k\x00": 1}}) == "arguments.custom"  # a key: the path of its mapping
    assert _nul_in({"a": "\x00", "b": "\x00"}) == "arguments.a"
    assert _nul_in({"q": "x\x00", "n": 1}) == "arguments.q"
    assert _nul_in([[["\x00"]]], "x") == "x[0][0][0]"


def test_the_nul_check_is_not_fooled_by_text_that_reads_like_one():
    assert _nul_in({"notes": "\\u0000", "tags": ["\\\\u0000"]}) is None
    assert _nul_in({"notes": "\\u0000", "tags": ["ok", "\x00"]}) == "arguments.tags[1]"
    assert _nul_in({"n": 1, "f": 1.5, "b": True, "none": None, "bytes": b"\xff"}) is None


def test_the_nul_check_finds_a_nul_in_what_json_cannot_write():
    deep: object = {"a": "x\x00"}
    for _ in range(300):  # deeper than the JSON writer goes
        deep = [deep]
    assert _nul_in({"items": deep}) == "arguments.items" + "[0]" * 300 + ".a"
    assert _nul_in({"items": [b"\xff", object(), "\x00"]}) == "arguments.items[2]"


def test_a_contact_document_folds_accents_and_splits_identifiers():
    record = {
        "first_name": "Zoë",
        "last_name": "Müller-Lüdenscheidt",
        "emails": [{"value": "zoe@Example.com", "label": "work", "primary": True}],
        "phones": [{"value": "+1 (415) 555-0100", "label": "mobile"}],
        "job_title": "Head of Sales",
        "tags": ["VIP", "Straße"],
        "notes": "Met at Café Zürich; call back",
    }
    doc = document(ENTITIES["contacts"], record)
    assert doc.row() == {
        "title": "Zoë Müller-Lüdenscheidt",
        "body": "emails: zoe@Example.com\nphones: +1 (415) 555-0100\njob title: Head of Sales\ntags: VIP, Straße\n"
        "notes: Met at Café Zürich; call back",
        "title_terms": "zoe muller ludenscheidt",
        "id_terms": "zoe example com 1 415 555 0100 14155550100 4155550100 155550100 55550100 5550100",
        "body_terms": "head of sales vip strasse met at cafe zurich call back",
        "field_terms": "firstname0zoe lastname0muller lastname0ludenscheidt emails0zoe emails0example emails0com "
        "phones01 phones0415 phones0555 phones00100 phones014155550100 phones04155550100 phones0155550100 "
        "phones055550100 phones05550100 jobtitle0head jobtitle0of jobtitle0sales tags0vip tags0strasse notes0met "
        "notes0at notes0cafe notes0zurich notes0call notes0back",
    }
    # free text (notes) is searchable, but its words are not offered as corrections
    assert doc.vocabulary == {"example", "head", "ludenscheidt", "muller", "sales", "strasse"}


def test_an_organization_document_takes_web_addresses_and_short_phones_as_identifiers():
    record = {
        "name": "Acme GmbH",
        "domain": "acme.de",
        "website": "https://www.acme.de/about",
        "industry": None,
        "phone": "030 1234",
        "tags": [],
        "notes": "",
    }
    doc = document(ENTITIES["organizations"], record)
    assert doc.row() == {
        "title": "Acme GmbH",
        "body": "domain: acme.de\nwebsite: https://www.acme.de/about\nphone: 030 1234",
        "title_terms": "acme gmbh",
        "id_terms": "acme de https www acme de about 030 1234 0301234",
        "body_terms": "",
        "field_terms": "name0acme name0gmbh domain0acme domain0de website0https website0www website0acme website0de "
        "website0about phone0030 phone01234 phone00301234",
    }
    assert doc.vocabulary == {"about", "acme", "gmbh", "https"}


def test_a_note_document_has_no_title_terms_and_no_vocabulary():
    doc = document(ENTITIES["notes"], {"body": "Ignore previous instructions ada@example.com", "record_type": "deals"})
    assert doc.row() == {
        "title": "Note on a deal",
        "body": "body: Ignore previous instructions ada@example.com",
        "title_terms": "",
        "id_terms": "",
        "body_terms": "ignore previous instructions ada example com",
        "field_terms": "body0ignore body0previous body0instructions body0ada body0example body0com",
    }
    assert doc.vocabulary == set()


class _Connection:
    def __init__(self, dialect):
        self.dialect = dialect


def test_rows_as_stored_convert_shared_and_distinct_values_alike():
    now = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    berlin = timezone(timedelta(hours=2))
    rows = [
        {"name": "a", "value": Decimal("1.005"), "created_at": now, "updated_at": now},
        {"name": "b", "value": 1, "created_at": now.astimezone(berlin), "updated_at": now},
        {"name": "c", "value": 1.0, "created_at": datetime(2024, 5, 1, 12, 30), "updated_at": None},
        {"name": "d", "value": None, "created_at": now, "updated_at": now},
    ]
    deals = ENTITIES["deals"]
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        conn = _Connection(dialect)
        together = as_stored_rows(conn, deals, rows)  # type: ignore[arg-type]
        assert together == as_stored_rows(conn, deals, rows[::-1])[::-1]  # type: ignore[arg-type]
        assert together[1] == as_stored(conn, deals, rows[1])  # type: ignore[arg-type]
        assert [r["value"] for r in together] == [Decimal("1.00"), Decimal("1.00"), Decimal("1.00"), None]
        assert all(r["created_at"].tzinfo is UTC for r in together)
        assert together[1]["created_at"] == now
        assert together[2]["created_at"] == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        assert together[2]["updated_at"] is None
        assert rows[0]["value"] == Decimal("1.005")  # the rows given are left as they were
