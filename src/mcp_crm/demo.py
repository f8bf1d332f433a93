"""A realistic, seeded demo data set, written through the operations layer (so every check and change event
applies): a sales team, its price list, and the organizations, contacts, deals and tasks it works on.

Dates are relative to today, so "deals closing this month" and "overdue tasks" always have answers."""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.lists import MemberRequest
from mcp_crm.operations.workspace import local_actor
from mcp_crm.query import Condition
from mcp_crm.store import Database, migrate

BATCH = 500
TEAM_DOMAIN = "northwind-sales.example"
Row = dict[str, Any]

USERS = [  # (name, role); the local owner exists already
    ("Amelia Hart", "admin"),
    ("Jonas Becker", "admin"),
    ("Priya Raman", "member"),
    ("Lucas Moreau", "member"),
    ("Sofia Álvarez", "member"),
]

SERVICES = [  # (sku, name, unit, currency, unit price)
    ("NW-CONS-DAY-EUR", "Consulting day", "day", "EUR", "1200"),
    ("NW-CONS-DAY-USD", "Consulting day", "day", "USD", "1350"),
    ("NW-CONS-DAY-GBP", "Consulting day", "day", "GBP", "1050"),
    ("NW-LIC-SEAT-EUR", "Platform license, annual", "seat", "EUR", "480"),
    ("NW-LIC-SEAT-USD", "Platform license, annual", "seat", "USD", "540"),
    ("NW-SUP-STD-EUR", "Standard support plan", "year", "EUR", "2400"),
    ("NW-SUP-STD-USD", "Standard support plan", "year", "USD", "2700"),
    ("NW-SUP-PRE-EUR", "Premium support plan", "year", "EUR", "9600"),
    ("NW-SUP-PRE-USD", "Premium support plan", "year", "USD", "10800"),
    ("NW-SUP-PRE-GBP", "Premium support plan", "year", "GBP", "8400"),
    ("NW-ONB-WS-EUR", "Onboarding workshop", "workshop", "EUR", "3500"),
    ("NW-ONB-WS-USD", "Onboarding workshop", "workshop", "USD", "3900"),
]
DEMO_SKUS = [s[0] for s in SERVICES]
SCALING_UNITS = ("day", "seat")  # a deal's size sets how many of these it needs


@dataclass(frozen=True)
class Country:
    name: str
    currency: str  # what its deals are priced in
    phone: str  # calling code
    legal_forms: tuple[str, ...]
    cultures: tuple[str, ...]  # where most of its people's names come from
    weight: int  # how many organizations are based there, relatively
    cities: tuple[tuple[str, str, str, str], ...]  # (city, region, postal code, area code)
    streets: tuple[str, ...]  # {n} is the house number


# fmt: off
COUNTRIES = [
    Country("Germany", "EUR", "+49", ("GmbH", "AG"), ("german", "german", "turkish", "polish"), 9,
            (("Berlin", "Berlin", "10115", "30"), ("München", "Bayern", "80331", "89"),
             ("Hamburg", "Hamburg", "20095", "40")),
            ("Friedrichstraße {n}", "Lindenallee {n}", "Hauptstraße {n}")),
    Country("France", "EUR", "+33", ("SAS", "SA"), ("french", "french", "arabic"), 6,
            (("Paris", "Île-de-France", "75002", "1"), ("Lyon", "Auvergne-Rhône-Alpes", "69002", "4"),
             ("Toulouse", "Occitanie", "31000", "5")),
            ("{n} rue de Rivoli", "{n} avenue Jean Jaurès", "{n} boulevard Voltaire")),
    Country("United Kingdom", "GBP", "+44", ("Ltd", "plc"), ("british", "british", "indian", "nigerian"), 6,
            (("London", "Greater London", "EC2A 4NE", "20"), ("Manchester", "Greater Manchester", "M1 1AE", "161"),
             ("Edinburgh", "Scotland", "EH1 1YZ", "131")),
            ("{n} Baker Street", "{n} Deansgate", "{n} George Street")),
    Country("United States", "USD", "+1", ("Inc.", "LLC", "Corp."),
            ("american", "american", "chinese", "spanish", "nigerian"), 10,
            (("New York", "NY", "10001", "212"), ("Austin", "TX", "78701", "512"), ("Chicago", "IL", "60601", "312"),
             ("San Francisco", "CA", "94105", "415")),
            ("{n} Market Street", "{n} Congress Avenue", "{n} Lake Shore Drive")),
    Country("Netherlands", "EUR", "+31", ("B.V.",), ("dutch", "dutch", "turkish"), 4,
            (("Amsterdam", "Noord-Holland", "1012 AB", "20"), ("Rotterdam", "Zuid-Holland", "3011 AD", "10"),
             ("Utrecht", "Utrecht", "3511 AX", "30")),
            ("Keizersgracht {n}", "Coolsingel {n}", "Oudegracht {n}")),
    Country("Spain", "EUR", "+34", ("S.L.", "S.A."), ("spanish",), 4,
            (("Madrid", "Comunidad de Madrid", "28013", "91"), ("Barcelona", "Cataluña", "08002", "93"),
             ("Valencia", "Comunitat Valenciana", "46002", "96")),
            ("Calle de Alcalá, {n}", "Passeig de Gràcia, {n}", "Calle Colón, {n}")),
    Country("Sweden", "EUR", "+46", ("AB",), ("swedish", "swedish", "arabic"), 3,
            (("Stockholm", "Stockholms län", "111 52", "8"), ("Göteborg", "Västra Götalands län", "411 05", "31"),
             ("Malmö", "Skåne län", "211 20", "40")),
            ("Drottninggatan {n}", "Kungsgatan {n}", "Södra Förstadsgatan {n}")),
    Country("Japan", "USD", "+81", ("K.K.",), ("japanese",), 3,
            (("Tokyo", "Tokyo", "100-0005", "3"), ("Osaka", "Osaka", "530-0001", "6")),
            ("{n}-2 Marunouchi, Chiyoda-ku", "{n}-4 Umeda, Kita-ku")),
    Country("India", "USD", "+91", ("Pvt. Ltd.",), ("indian",), 3,
            (("Bengaluru", "Karnataka", "560001", "80"), ("Mumbai", "Maharashtra", "400001", "22"),
             ("Pune", "Maharashtra", "411001", "20")),
            ("{n} MG Road", "{n} Residency Road", "{n} FC Road")),
    Country("Brazil", "USD", "+55", ("Ltda.",), ("brazilian",), 2,
            (("São Paulo", "SP", "01310-100", "11"), ("Rio de Janeiro", "RJ", "20040-002", "21"),
             ("Curitiba", "PR", "80010-000", "41")),
            ("Avenida Paulista, {n}", "Rua XV de Novembro, {n}")),
]
# fmt: on

FIRST_NAMES = {
    "german": "Lukas Anna Jonas Lea Felix Marie Tobias Katharina Matthias Sabine",
    "french": "Camille Hugo Chloé Julien Manon Théo Élodie Nicolas",
    "british": "Oliver Amelia Harry Isla George Emily Jack Charlotte",
    "american": "James Olivia Michael Emma Ethan Ava Daniel Madison",
    "dutch": "Daan Sanne Bram Lotte Jesse Femke Thijs Anouk",
    "spanish": "Alejandro Lucía Pablo Carmen Javier Marta Diego Elena",
    "swedish": "Erik Astrid Lars Ingrid Oskar Maja Nils Elin",
    "japanese": "Haruto Yui Sota Aoi Ren Sakura Takumi Hina",
    "indian": "Aarav Priya Rohan Ananya Vikram Kavya Arjun Meera",
    "brazilian": "João Ana Gabriel Beatriz Rafael Larissa Mateus Camila",
    "nigerian": "Chinedu Ngozi Emeka Adaeze Tunde Folake Ifeanyi Amara",
    "chinese": "Wei Mei Jun Xin Hao Lan Yang Ling",
    "polish": "Jakub Zofia Piotr Agnieszka Tomasz Magdalena",
    "arabic": "Omar Layla Youssef Fatima Karim Nour",
    "turkish": "Emre Elif Mehmet Zeynep Can Ayşe",
}
LAST_NAMES = {  # _ stands for a space inside a name
    "german": "Müller Schmidt Schneider Fischer Weber Wagner Hoffmann Krüger",
    "french": "Martin Bernard Dubois Lefèvre Moreau Laurent Garnier Rousseau",
    "british": "Smith Jones Taylor Brown Evans Wilson Thompson Walker",
    "american": "Johnson Williams Miller Davis Anderson Clark Rodriguez Nguyen",
    "dutch": "de_Jong Jansen de_Vries van_den_Berg Bakker Visser Smit Meijer",
    "spanish": "García Fernández López Martínez Sánchez Romero Navarro Torres",
    "swedish": "Andersson Johansson Karlsson Nilsson Lindqvist Berg Holm Sjöberg",
    "japanese": "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura",
    "indian": "Sharma Patel Iyer Reddy Gupta Nair Menon Kapoor",
    "brazilian": "Silva Santos Oliveira Souza Pereira Costa Almeida Ferreira",
    "nigerian": "Okafor Adeyemi Eze Balogun Okonkwo Nwosu Adebayo Obi",
    "chinese": "Wang Li Zhang Liu Chen Zhao Huang Zhou",
    "polish": "Nowak Wójcik Kowalczyk Mazur Krawczyk Zając",
    "arabic": "Haddad Khalil Mansour Saleh Nasser Farah",
    "turkish": "Öztürk Kaya Demir Şahin Çelik Arslan",
}

INDUSTRIES = {  # industry: words for company names
    "Software": ("Software", "Analytics", "Labs", "Digital"),
    "Manufacturing": ("Manufacturing", "Industries", "Components"),
    "Logistics": ("Logistics", "Freight", "Shipping"),
    "Healthcare": ("Health", "Medical", "Care"),
    "Retail": ("Retail", "Stores", "Market"),
    "Financial Services": ("Capital", "Finance", "Insurance"),
    "Energy": ("Energy", "Power", "Solar"),
    "Education": ("Academy", "Learning"),
    "Hospitality": ("Hotels", "Hospitality"),
    "Media": ("Media", "Studios"),
    "Telecommunications": ("Telecom", "Networks"),
}
STEMS = (  # of organization names, one per organization
    "Brightwave Kestrel Bluefjord Helios Copperleaf Ironbridge Silverline Lumen Orchard Granite Tidewater Aurora "
    "Meridian Pinecrest Riverside Summit Vantage Harbor Evergreen Quantum Atlas Cobalt Falcon Juniper Larkspur "
    "Nimbus Oakridge Polaris Redwood Sable Sterling Terra Vertex Willow Zephyr Alder Beacon Cedar Driftwood Ember "
    "Fernhill Glacier Highland Indigo Jasper Keystone Lighthouse Mosaic Northstar Opal Pioneer Quarry Saffron"
)
ORG_TAGS = ("enterprise", "mid-market", "smb", "strategic", "reference-customer", "expansion", "at-risk")
JOB_TITLES = (
    "CEO", "CTO", "CFO", "COO", "Head of Sales", "VP Engineering", "IT Manager", "Procurement Manager",
    "Operations Director", "Marketing Manager", "Product Manager", "Finance Controller", "Customer Success Lead",
    "Data Analyst", "Head of IT", "Project Manager",
)  # fmt: skip
CONTACT_TAGS = ("decision-maker", "champion", "technical", "billing", "newsletter", "vip")
DEAL_TOPICS = (
    "Platform rollout", "License expansion", "Support renewal", "Pilot project", "Data migration",
    "Onboarding programme", "Premium support upgrade", "Integration project", "Annual subscription",
    "Analytics add-on", "Team training",
)  # fmt: skip
DEAL_NOTES = (
    "Budget confirmed; waiting on procurement.",
    "Security review in progress.",
    "Competing offer on the table; price sensitive.",
    "Champion is pushing internally; legal needs the DPA.",
    "Decision expected after the board meeting.",
)
LOST_REASONS = (
    "Chose a competitor",
    "No budget this year",
    "Project postponed",
    "Price too high",
    "Went with an in-house solution",
)
BUYING_ROLES = ("decision maker", "champion", "technical evaluator", "billing contact", "influencer")
OPT_OUT_REASONS = ("unsubscribed from the newsletter", "asked by phone not to be emailed", "bounced: left the company")
LEAD_SOURCES = ("web form", "referral", "event", "cold outreach", "partner", "webinar")
LEAD_STAGE_MIX = ("New", "Contacted", "Qualified", "Unqualified")  # picked 4:3:2:1
LEAD_TOPICS = ("asked for a demo", "pricing enquiry", "met at the trade fair", "downloaded the whitepaper",
               "referred by a customer", "trial sign-up")  # fmt: skip
ACTIVITIES = {  # activity type: subjects, with {contact}, {org} and {deal}
    "call": ("Discovery call with {contact}", "Pricing call: {deal}", "Check-in call with {contact}"),
    "meeting": ("Demo for {org}", "Kick-off: {deal}", "Quarterly review with {org}"),
    "email": ("Sent proposal to {contact}", "Follow-up email: {deal}", "Sent case studies to {contact}"),
    "lunch": ("Lunch with {contact}",),
    "deadline": ("Proposal due: {deal}", "Contract signature: {deal}"),
}
NOTES_ABOUT = (
    "{contact} prefers email over calls; best reached before 10:00.",
    "Met {contact} at the partner summit: interested in the analytics add-on.",
    "**Next steps**: security questionnaire, then a pilot with two teams.",
    "{org} is consolidating vendors this year; we are on the shortlist.",
    "Procurement at {org} needs three quotes for anything over 50k.",
    "Budget owner changed: {contact} now signs off.",
)
TASKS_FOR = {  # what a task is linked to: names with {contact}, {org} and {deal}
    "deal": (
        "Send revised quote to {contact}",
        "Follow up with {contact} on the proposal",
        "Prepare contract draft: {deal}",
        "Book a demo with {contact}",
        "Negotiate terms with {org}",
        "Update forecast: {deal}",
    ),
    "contact": (
        "Call {contact}",
        "Send the product brochure to {contact}",
        "Check in with {contact}",
        "Invite {contact} to the customer webinar",
    ),
    "organization": (
        "Quarterly business review with {org}",
        "Update the account plan for {org}",
        "Check the renewal status of {org}",
    ),
}


def _ascii(text: str) -> str:
    """For email addresses and domains: 'Sofia Álvarez' -> 'sofiaalvarez', 'de_Jong' -> 'dejong'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", "").replace("_", "")


def _month_start(today: date, offset: int) -> date:
    years, month = divmod(today.month - 1 + offset, 12)
    return date(today.year + years, month + 1, 1)


def _day_in_month(rng: random.Random, today: date, offset: int) -> date:
    start = _month_start(today, offset)
    return start + timedelta(days=rng.randrange((_month_start(today, offset + 1) - start).days))


def _at_work_hour(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(rng.choice((8, 9, 10, 11, 13, 14, 15, 16)), rng.choice((0, 30))), UTC)


def _expected_close(rng: random.Random, today: date, plan: str) -> date:
    if plan == "slipped":  # open, but should have closed last month or before
        return _month_start(today, 0) - timedelta(days=rng.randint(1, 45))
    offsets = {"this month": 0, "next month": 1}
    return _day_in_month(rng, today, offsets[plan] if plan in offsets else rng.choice((2, 2, 3)))


def _amount(rng: random.Random, low: int, high: int) -> int:
    """Log-uniform between low and high, rounded to hundreds: many small deals, a few large ones."""
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high))), -2))


def user_rows() -> list[Row]:
    return [{"name": n, "email": f"{_ascii(n.replace(' ', '.'))}@{TEAM_DOMAIN}", "role": r} for n, r in USERS]


def service_rows() -> list[Row]:
    return [
        {
            "sku": sku,
            "name": name,
            "unit": unit,
            "currency": currency,
            "amount": Decimal(amount),
            "description": f"{name}, priced per {unit} in {currency}.",
        }
        for sku, name, unit, currency, amount in SERVICES
    ]


def organization_rows(rng: random.Random, owners: list[str], count: int = 50) -> list[Row]:
    rows = []
    for stem in rng.sample(STEMS.split(), count):
        country = rng.choices(COUNTRIES, [c.weight for c in COUNTRIES])[0]
        industry = rng.choice(list(INDUSTRIES))
        short = f"{stem} {rng.choice(INDUSTRIES[industry])}"
        city, region, postal, area = rng.choice(country.cities)
        domain = f"{_ascii(short.replace(' ', '-'))}.example"
        rows.append(
            {
                "name": f"{short} {rng.choice(country.legal_forms)}",
                "domain": domain,
                "website": f"https://www.{domain}",
                "industry": industry,
                "relationship": rng.choices(("prospect", "customer", "partner", "vendor"), (9, 8, 2, 1))[0],
                "status": rng.choices(("active", "inactive"), (9, 1))[0],
                "employee_count": 5 + int(rng.lognormvariate(5, 1.4)),
                "phone": f"{country.phone} {area} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "address": {
                    "street": rng.choice(country.streets).format(n=rng.randint(1, 180)),
                    "city": city,
                    "region": region,
                    "postal_code": postal,
                    "country": country.name,
                },
                "tags": rng.sample(ORG_TAGS, rng.choice((0, 1, 1, 2))),
                "owner_id": rng.choice(owners),
            }
        )
    return rows


def contact_rows(rng: random.Random, orgs: list[Row], owners: list[str], count: int = 150) -> list[Row]:
    countries = {c.name: c for c in COUNTRIES}
    homes = orgs + rng.choices(orgs, [3 if o["relationship"] == "customer" else 1 for o in orgs], k=count - len(orgs))
    used: set[str] = set()
    rows = []
    for org in homes:
        country = countries[org["address"]["country"]]
        culture = rng.choice(country.cultures) if rng.random() < 0.8 else rng.choice(list(FIRST_NAMES))
        first = rng.choice(FIRST_NAMES[culture].split())
        last = rng.choice(LAST_NAMES[culture].split()).replace("_", " ")
        member_of = [org] + ([rng.choice(orgs)] if rng.random() < 0.1 else [])
        member_of = list({o["id"]: o for o in member_of}.values())
        emails = []
        for i, where in enumerate(member_of):
            local = f"{_ascii(first)}.{_ascii(last)}"
            while f"{local}@{where['domain']}" in used:
                local += str(rng.randint(1, 9))
            used.add(f"{local}@{where['domain']}")
            emails.append({"value": f"{local}@{where['domain']}", "label": "work", "primary": i == 0})
        if len(emails) == 1 and rng.random() < 0.2:
            emails.append({"value": f"{_ascii(first[0] + last)}@{org['domain']}", "label": "other", "primary": False})
        extension = f"{org['phone'][:-4]}{rng.randint(1000, 9999)}"  # the organization's switchboard, another line
        phones = [{"value": extension, "label": "work", "primary": True}]
        if rng.random() < 0.4:
            phones.append({"value": f"{country.phone} {rng.randint(150, 179)} {rng.randint(1000000, 9999999)}",
                           "label": "mobile", "primary": False})  # fmt: skip
        rows.append(
            {
                "first_name": first,
                "last_name": last,
                "emails": emails,
                "phones": phones,
                "job_title": rng.choice(JOB_TITLES),
                "birthday": date(rng.randint(1962, 1999), rng.randint(1, 12), rng.randint(1, 28))
                if rng.random() < 0.3
                else None,
                "tags": rng.sample(CONTACT_TAGS, rng.choice((0, 0, 1, 1, 2))),
                "owner_id": org["owner_id"] if rng.random() < 0.8 else rng.choice(owners),
                "organization_ids": [
                    {"organization_id": o["id"], "is_primary": i == 0, "role": _buying_role(rng)}
                    for i, o in enumerate(member_of)
                ],
            }
        )
    return rows


def _buying_role(rng: random.Random) -> str | None:
    return rng.choice(BUYING_ROLES) if rng.random() < 0.5 else None


def _line_items(rng: random.Random, services: list[Row], target: int) -> tuple[list[Row], Decimal]:
    """Line items worth at least `target`: some small extras, then the main (per seat/day) service fills up."""
    main = rng.choice([s for s in services if s["unit"] in SCALING_UNITS])
    fits = [s for s in services if s is not main and Decimal(s["amount"]) * 4 <= target]
    extras = rng.sample(fits, min(len(fits), rng.choice((0, 1, 2))))
    total = sum((Decimal(s["amount"]) for s in extras), Decimal(0))
    quantity = max(1, math.ceil((target - total) / Decimal(main["amount"])))
    items = [{"service_id": s["id"], "quantity": 1} for s in extras]
    items.append({"service_id": main["id"], "quantity": quantity})
    return items, total + Decimal(main["amount"]) * quantity


OPEN_STAGES = ((10, "Qualified"), (30, "Contact made"), (60, "Proposal made"), (100, "Negotiation"))


def deal_rows(
    rng: random.Random, today: date, orgs: list[Row], contacts: list[Row], services: list[Row], stages: dict[str, str]
) -> list[Row]:
    """`stages`: the default pipeline's stage ids by name; each deal sits where its plan puts it."""
    currencies = {c.name: c.currency for c in COUNTRIES}
    members: dict[str, list[str]] = {o["id"]: [] for o in orgs}
    for contact in contacts:
        for org in contact["organizations"]:
            members[org["id"]].append(contact["id"])
    weights = {"customer": 4, "prospect": 3, "partner": 1, "vendor": 0}
    buyers = [o for o in orgs if o["status"] == "active"]
    # how each deal ends or when it should close; the first few closing this month are over 10k, so
    # "which deals over 10k close this month?" always has answers
    plans = ["won"] * 13 + ["lost"] * 7 + ["this month"] * 16 + ["next month"] * 14 + ["later"] * 12 + ["slipped"] * 8
    rng.shuffle(plans)
    topics: set[tuple[str, str]] = set()
    rows, large_this_month = [], 0
    for plan in plans:
        org = rng.choices(buyers, [weights[o["relationship"]] for o in buyers])[0]
        short = org["name"].rsplit(" ", 1)[0].removesuffix(" Pvt.")
        topic = rng.choice([t for t in DEAL_TOPICS if (org["id"], t) not in topics] or DEAL_TOPICS)
        topics.add((org["id"], topic))
        target = _amount(rng, 2_000, 220_000)
        if plan == "this month" and large_this_month < 5:
            target, large_this_month = _amount(rng, 12_000, 150_000), large_this_month + 1
        currency = currencies[org["address"]["country"]]
        priced = [s for s in services if s["currency"] == currency]
        items, value = _line_items(rng, priced, target) if rng.random() < 0.55 else ([], Decimal(target))
        row: Row = {
            "name": f"{short} {topic[0].lower()}{topic[1:]}",
            "value": None if items else value,  # with line items the value is their total
            "currency": currency,
            "organization_ids": [org["id"]],
            "contact_ids": rng.sample(members[org["id"]], min(len(members[org["id"]]), rng.choice((1, 1, 2)))),
            "services": items,
            "owner_id": org["owner_id"],
            "description": rng.choice(DEAL_NOTES) if rng.random() < 0.4 else None,
        }
        if plan in ("won", "lost"):
            closed = _at_work_hour(rng, today - timedelta(days=rng.randint(1, 120)))
            row |= {"stage_id": stages["Won" if plan == "won" else "Lost"], "expected_close_date": closed.date()}
            row |= {"won_at": closed} if plan == "won" else {"lost_at": closed, "lost_reason": rng.choice(LOST_REASONS)}
        else:
            when = _expected_close(rng, today, plan)
            probability = rng.choice((10, 20, 30, 40, 50, 60, 70, 80, 90))
            stage = next(name for bound, name in OPEN_STAGES if probability <= bound)
            row |= {"stage_id": stages[stage], "probability": probability, "expected_close_date": when}
        rows.append(row)
    return rows


def task_rows(
    rng: random.Random, deals: list[Row], contacts: list[Row], orgs: list[Row], count: int = 120
) -> list[Row]:
    now = datetime.now(UTC)
    open_deals = [d for d in deals if d["status"] == "open"]
    rows = []
    for _ in range(count):
        kind = rng.choices(("deal", "contact", "organization"), (5, 3, 2))[0]
        if kind == "deal":
            deal = rng.choice(open_deals)
            org, contact = deal["organizations"][0], rng.choice(deal["contacts"])
            links = {"deal_id": deal["id"], "organization_id": org["id"], "contact_id": contact["id"]}
            names, owner = {"deal": deal["name"], "org": org["name"], "contact": contact["name"]}, deal["owner_id"]
        elif kind == "contact":
            person = rng.choice(contacts)
            org = person["organizations"][0]
            links = {"contact_id": person["id"], "organization_id": org["id"]}
            names, owner = {"contact": f"{person['first_name']} {person['last_name']}"}, person["owner_id"]
        else:
            company = rng.choice(orgs)
            links, names, owner = {"organization_id": company["id"]}, {"org": company["name"]}, company["owner_id"]
        due = _at_work_hour(rng, now.date() + timedelta(days=rng.randint(-7, 30)))
        done = rng.random() < (0.55 if due < now else 0.08)
        rows.append(
            {
                "name": rng.choice(TASKS_FOR[kind]).format(**names),
                "due_at": due,
                "done": done,
                "completed_at": min(now, _at_work_hour(rng, due.date() - timedelta(days=rng.randint(0, 2))))
                if done
                else None,
                "priority": rng.choices(("low", "normal", "high", "urgent"), (3, 10, 5, 2))[0],
                "assignee_id": owner,
                **links,
            }
        )
    return rows


def lead_rows(
    rng: random.Random, today: date, orgs: list[Row], contacts: list[Row], stages: dict[str, str], count: int = 30
) -> list[Row]:
    """`stages`: the lead stage ids by name; most leads are new or contacted, a few already (un)qualified."""
    prospects = [o for o in orgs if o["relationship"] == "prospect"] or orgs
    rows = []
    for _ in range(count):
        org = rng.choice(prospects)
        people = [c for c in contacts if any(o["id"] == org["id"] for o in c["organizations"])]
        rows.append(
            {
                "title": f"{org['name']}: {rng.choice(LEAD_TOPICS)}",
                "organization_id": org["id"],
                "contact_id": rng.choice(people)["id"] if people else None,
                "value": Decimal(_amount(rng, 3_000, 60_000)) if rng.random() < 0.7 else None,
                "source": rng.choice(LEAD_SOURCES),
                "expected_close_date": today + timedelta(days=rng.randint(20, 150)) if rng.random() < 0.5 else None,
                "labels": rng.sample(("hot", "warm", "cold", "inbound", "outbound"), rng.choice((0, 1, 1, 2))),
                "owner_id": org["owner_id"],
                "stage_id": stages[rng.choices(LEAD_STAGE_MIX, (4, 3, 2, 1))[0]],
            }
        )
    return rows


def activity_rows(rng: random.Random, deals: list[Row], contacts: list[Row], count: int = 220) -> list[Row]:
    """Done activities in the past weeks and planned ones ahead, about deals or people."""
    now = datetime.now(UTC)
    rows = []
    for _ in range(count):
        kind = rng.choices(tuple(ACTIVITIES), (5, 3, 4, 1, 1))[0]
        deal = rng.choice(deals) if rng.random() < 0.7 else None
        person = rng.choice(deal["contacts"]) if deal and deal["contacts"] else {"id": rng.choice(contacts)["id"]}
        contact = next(c for c in contacts if c["id"] == person["id"])
        org = contact["organizations"][0]
        names = {
            "contact": f"{contact['first_name']} {contact['last_name']}",
            "org": org["name"],
            "deal": deal["name"] if deal else org["name"],
        }
        past = (deal is not None and deal["status"] != "open") or rng.random() < 0.6
        due = _at_work_hour(rng, now.date() + timedelta(days=-rng.randint(1, 60) if past else rng.randint(0, 30)))
        rows.append(
            {
                "type": kind,
                "subject": rng.choice(ACTIVITIES[kind]).format(**names),
                "due_at": due,
                "duration_minutes": rng.choice((15, 30, 45, 60)) if kind in ("call", "meeting", "lunch") else None,
                "done": past and rng.random() < 0.9,
                "deal_id": deal["id"] if deal else None,
                "contact_id": contact["id"],
                "organization_id": org["id"],
                "participant_ids": [contact["id"]],
                "owner_id": deal["owner_id"] if deal else contact["owner_id"],
            }
        )
    return rows


def note_rows(rng: random.Random, deals: list[Row], contacts: list[Row], count: int = 60) -> list[Row]:
    rows = []
    for _ in range(count):
        contact = rng.choice(contacts)
        org = contact["organizations"][0]
        names = {"contact": f"{contact['first_name']} {contact['last_name']}", "org": org["name"]}
        about = rng.choices(("contacts", "organizations", "deals"), (2, 2, 1))[0]
        record_id = {"contacts": contact["id"], "organizations": org["id"], "deals": rng.choice(deals)["id"]}[about]
        rows.append(
            {
                "body": rng.choice(NOTES_ABOUT).format(**names),
                "record_type": about,
                "record_id": record_id,
                "pinned": rng.random() < 0.1,
            }
        )
    return rows


def with_opt_outs(contacts: list[Row]) -> list[Row]:
    """Every 25th contact (from the 8th) has opted out of email, with a reason."""
    for i, row in enumerate(contacts[7::25]):
        row.update(email_opt_out=True, email_opt_out_reason=OPT_OUT_REASONS[i % len(OPT_OUT_REASONS)])
    return contacts


def list_rows() -> list[Row]:
    """A static list (its members are added after) and a dynamic one."""
    return [
        {"name": "Q3 webinar", "description": "Invitees of the September product webinar.", "kind": "static"},
        {
            "name": "Webinar leads",
            "description": "Every open lead that came from a webinar.",
            "kind": "dynamic",
            "entity": "leads",
            "filter": {
                "and": [
                    {"field": "source", "op": "eq", "value": "webinar"},
                    {"field": "archived", "op": "eq", "value": False},
                ]
            },
        },
    ]


async def _refuse_if_loaded(crm: Crm, actor: Actor) -> None:
    query = ListQuery(filter=Condition(field="sku", op="in", value=DEMO_SKUS), limit=1, fields=["sku"])
    found = (await crm.list(actor, ENTITIES["services"], query)).items
    if found:
        raise CrmError(
            f"The demo data is already loaded in this database (service '{found[0]['sku']}' exists); "
            "nothing was changed. Load it into a new, empty database instead."
        )


async def load_demo(database_url: str, seed: int = 7) -> dict[str, int]:
    """Create and migrate the database, then fill the local workspace; returns how many of each were created."""
    rng, today = random.Random(seed), date.today()
    db = Database(database_url)
    try:
        await migrate(db)
        crm, actor = Crm(db), (await local_actor(db, via="cli")).using("demo")
        await _refuse_if_loaded(crm, actor)
        counts: dict[str, int] = {}
        columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:

            async def create(name: str, rows: list[Row]) -> list[Row]:
                model = create_model_for(ENTITIES[name])
                items = [model(**row) for row in rows]  # every row is checked before the first write
                bar = progress.add_task(name, total=len(items))
                created: list[Row] = []
                for start in range(0, len(items), BATCH):
                    created += await crm.create_many(actor, ENTITIES[name], items[start : start + BATCH])
                    progress.advance(bar, len(items[start : start + BATCH]))
                counts[name] = len(created)
                return created

            # services first: their SKUs mark the workspace as loaded, even if a later step fails
            services = await create("services", service_rows())
            users = await create("users", user_rows())
            owners = [actor.user_id or users[0]["id"]] + [u["id"] for u in users] * 2  # reps own the most
            orgs = await create("organizations", organization_rows(rng, owners))
            contacts = await create("contacts", with_opt_outs(contact_rows(rng, orgs, owners)))
            stages = (await crm.list(actor, ENTITIES["stages"], ListQuery(limit=200))).items
            by_name = {stage["name"]: stage["id"] for stage in stages}
            deals = await create("deals", deal_rows(rng, today, orgs, contacts, services, by_name))
            await create("tasks", task_rows(rng, deals, contacts, orgs))
            lead_stages = (await crm.list(actor, ENTITIES["lead_stages"], ListQuery(limit=200))).items
            await create("leads", lead_rows(rng, today, orgs, contacts, {s["name"]: s["id"] for s in lead_stages}))
            await create("activities", activity_rows(rng, deals, contacts))
            await create("notes", note_rows(rng, deals, contacts))
            webinar = (await create("lists", list_rows()))[0]
            invited = MemberRequest(ids={"contacts": [c["id"] for c in contacts[::6]]})
            await crm.change_members(actor, webinar["id"], invited, adding=True)
        return counts
    finally:
        await db.dispose()
