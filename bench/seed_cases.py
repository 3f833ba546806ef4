"""Seeds what bench/cases.py needs, in the environment of the server under test (the same database and
keys): real-name citizens with a session each, and many applications (办件) of theirs, written in bulk.

    python bench/seed_cases.py CASES CITIZENS OUT_DIR --staff-id N [--queue 10000] [--department nmyj]

The citizens are registered through the accounts service functions, as bench/seed_rush.py does (phone,
name, a valid ID number, a session). The cases are made in Python and written with PostgreSQL COPY,
tens of thousands a second, with the values the cases service writes (backend/cases/service.py,
declare_for and the moves): a receipt of `cases.receipt_format` with its MOD 11-2 check character and
every hall's day counter set past the numbers given; the applicant's name and ID number sealed by the
app's PiiCipher (same keys as the server); the tail blind indexes of service.tail_index; the form
checked by the catalogue's check_application_form and its phone fields sealed; the deadline counted
on the working calendar from acceptance (deadlines.deadline_at) with the 黄牌/红牌 level the warnings
job would have set; one history row per move with the move's actor, statuses and comment; a step per
reviewing department (the lead first) from acceptance on, decided as the status says; for half the
cases a material, given from a document the citizen uploaded once (一口录入, reused across their cases).

Not written: the domain events of the moves (the outbox rows notify would deliver; a bench of reads
needs none), the personal-data contact log, enterprise applicants, agents' mandates, and the files
behind the documents (only their rows: nothing here reads a file).

Writes to OUT_DIR: citizens.tsv (citizen id, access token, phone, ID number), cases.tsv (case id,
owner citizen id, receipt, status, ID tail, phone tail) and seed.json (what was made, the queue's
department and hall, how long each part took)."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.accounts import citizens, sessions  # noqa: E402
from backend.accounts.schemas import ProfilePatch  # noqa: E402
from backend.app import build_runtime  # noqa: E402
from backend.cases import deadlines  # noqa: E402
from backend.cases.service import FORM, _item, _review_departments, tail_index  # noqa: E402
from backend.catalog.models import ServiceItem  # noqa: E402
from backend.catalog.service import check_application_form, get_department, load_working_calendar  # noqa: E402
from backend.kit import clock  # noqa: E402
from backend.kit.db import close_db, init_db  # noqa: E402
from backend.kit.identity import id_number_check_char, mod11_2_check_char  # noqa: E402
from backend.kit.pii import ID_NUMBER, NAME  # noqa: E402
from backend.kit.uow import unit_of_work  # noqa: E402
from backend.settings import load_settings  # noqa: E402

DAYS_BACK = 180
# the statuses of the cases outside the approver's queue, with their shares
MIX = [("submitted", 8), ("accepted", 10), ("supplement_required", 5), ("in_review", 15), ("refused", 3),
       ("approved", 12), ("denied", 3), ("certificate_issued", 9), ("delivered", 10), ("collected", 20),
       ("withdrawn", 5)]
# the queue department's cases that are not waiting: no pending step, not submitted
DONE = [("approved", 3), ("denied", 1), ("certificate_issued", 2), ("delivered", 2), ("collected", 4),
        ("refused", 1), ("withdrawn", 1)]
CASE_COLUMNS = ["id", "receipt", "item_code", "department_code", "hall_code", "citizen_id", "applicant_kind",
                "applicant_name_enc", "applicant_id_number_enc", "enterprise_name", "enterprise_uscc",
                "id_tail_index", "phone_tail_index", "form", "channel", "submitted_by", "mandate_id", "status",
                "missing", "resume_status", "instant", "finished_at_acceptance", "promised_days", "submitted_at",
                "accepted_at", "decided_at", "deadline_at", "paused_since", "pause_kind", "pause_reason",
                "paused_working_days", "warning_level", "updated_at"]
HISTORY_COLUMNS = ["case_id", "at", "actor", "action", "from_status", "to_status", "department_code", "comment",
                   "detail"]
STEP_COLUMNS = ["case_id", "department_code", "hall_code", "lead", "status", "decided_by", "decided_at", "comment"]
DOCUMENT_COLUMNS = ["id", "citizen_id", "material", "storage_key", "content_type", "size", "sha256", "uploaded_by",
                    "created_at"]
MATERIAL_COLUMNS = ["case_id", "document_id", "material", "attached_at"]


def _id_number(n: int) -> str:
    first17 = f"150902{1960 + n % 40}{n % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return first17 + id_number_check_char(first17)


def _pick(mix: list[tuple[str, int]], rng: random.Random) -> str:
    return rng.choices([s for s, _ in mix], weights=[w for _, w in mix])[0]


def _form_answer(fields: list[dict], phone: str) -> dict:
    """A declaration that fills every field of a form, as an app would send it."""
    answer: dict = {}
    for field in fields:
        kind = field["type"]
        if kind in ("text", "textarea"):
            answer[field["name"]] = "察右后旗白音察干镇"[:field.get("max_length", 200)]
        elif kind == "integer":
            answer[field["name"]] = field.get("min", 1)
        elif kind == "decimal":
            answer[field["name"]] = str(max(field.get("min", 1), 1))
        elif kind == "date":
            answer[field["name"]] = clock.today().isoformat()
        elif kind == "choice":
            answer[field["name"]] = field["choices"][0]["value"]
        elif kind == "multi_choice":
            answer[field["name"]] = [field["choices"][0]["value"]]
        elif kind == "boolean":
            answer[field["name"]] = True
        elif kind == "phone":
            answer[field["name"]] = phone
    return answer


async def seed_citizens(rt, count: int) -> list[dict]:
    base = random.randrange(10**8)
    made = []
    for n in range(count):
        phone, id_number, name = f"13{(base + n) % 10**9:09d}", _id_number(base + n), "牧民" + str(n)
        async with unit_of_work(rt) as uow:
            citizen = await citizens.register_citizen(rt, channel="sms", phone=phone, uow=uow)
            await citizens.update_profile(rt, citizen_id=citizen.id, tx=uow, patch=ProfilePatch(
                name=name, id_number=id_number))
            pair = await sessions.open_session(rt, kind="citizen", subject_id=citizen.id, uow=uow)
        made.append({"id": citizen.id, "token": pair.access_token, "phone": phone, "id_number": id_number,
                     "name": name})
    return made


class Writer:
    """The rows of every case, made in order of submission (ids and receipts grow with time, as the
    service gives them)."""

    def __init__(self, rt, calendar, items: dict, departments: dict, staff_id: int, rng: random.Random):
        self.rt, self.calendar, self.items, self.departments = rt, calendar, items, departments
        self.staff, self.rng, self.now = f"staff:{staff_id}", rng, clock.now()
        self.staff_id = staff_id
        self.settings = rt.settings.cases
        self.cases: list[tuple] = []
        self.history: list[tuple] = []
        self.steps: list[tuple] = []
        self.documents: dict[tuple[int, str], tuple] = {}
        self.materials: list[tuple] = []
        self.counters: dict[tuple[str, object], int] = {}
        self.listing: list[str] = []
        self.sealed: dict[int, tuple[str, str, str, str | None]] = {}

    def _seal_citizen(self, citizen: dict) -> tuple[str, str, str, str | None]:
        # each case seals the applicant anew (a fresh nonce), as declare_for does
        cipher = self.rt.cipher
        return (cipher.encrypt(citizen["name"], purpose=NAME), cipher.encrypt(citizen["id_number"], purpose=ID_NUMBER),
                tail_index(self.rt, citizen["id_number"]), tail_index(self.rt, citizen["phone"]))

    def _later(self, at: datetime, max_hours: float) -> datetime:
        return min(self.now, at + timedelta(seconds=self.rng.uniform(60, max_hours * 3600)))

    def add(self, case_id: int, citizen: dict, code: str, status: str, submitted_at: datetime) -> None:
        item = self.items[code]
        rng, rt = self.rng, self.rt
        hall, department = item["detail"].hall, item["detail"].department
        day = submitted_at.astimezone(clock.business_zone()).date()
        seq = self.counters[(hall, day)] = self.counters.get((hall, day), 0) + 1
        body = self.settings.receipt_format.format(hall=hall, date=day, seq=seq)
        receipt = body + mod11_2_check_char(body)
        name_enc, id_enc, id_tail, phone_tail = self._seal_citizen(citizen)
        # the form as checked for this item, its phone fields the applicant's phone, sealed (_seal_form)
        form = {key: rt.cipher.encrypt(citizen["phone"], purpose=FORM) if key in item["phones"] and value else value
                for key, value in item["form"].items()}
        window = rng.random() < 0.2
        channel, submitted_by = ("window", self.staff) if window else ("online", f"citizen:{citizen['id']}")
        history = [(submitted_at, submitted_by, "submit", None, "submitted", None, "", {})]
        row = {"accepted_at": None, "decided_at": None, "deadline_at": None, "paused_since": None,
               "pause_kind": None, "pause_reason": None, "missing": [], "resume_status": None, "warning_level": 0}
        steps: list[list] = []
        at, current = submitted_at, "submitted"

        def move(to: str, action: str, actor: str, comment: str = "", department_code: str | None = None,
                 detail: dict | None = None, hours: float = 48) -> datetime:
            nonlocal at, current
            at = self._later(at, hours)
            history.append((at, actor, action, current, to, department_code, comment, detail or {}))
            current = to
            return at

        if status == "refused":
            row["decided_at"] = move("refused", "refuse", self.staff, "材料不属于本事项受理范围")
        elif status == "withdrawn" and rng.random() < 0.5:
            move("withdrawn", "withdraw", submitted_by, "")
        elif status == "supplement_required" and rng.random() < 0.4:
            move("supplement_required", "request_supplement", self.staff, "请补充材料",
                 detail={"missing": ["户口簿复印件"]})
            row |= {"missing": ["户口簿复印件"], "resume_status": "submitted"}
        elif status != "submitted":
            accepted = row["accepted_at"] = move("accepted", "accept", self.staff, "")
            deadline = deadlines.deadline_at(self.calendar, accepted_at=accepted,
                                             working_days=item["detail"].promised_days,
                                             close=self.settings.deadline_time)
            row["deadline_at"] = deadline
            for position, review in enumerate(item["reviewers"]):
                steps.append([review, self.departments[review], position == 0, "pending", None, None, ""])
            if status == "supplement_required":
                paused = move("supplement_required", "request_supplement", self.staff, "请补充材料",
                              detail={"missing": ["户口簿复印件"]})
                row |= {"missing": ["户口簿复印件"], "resume_status": "accepted", "paused_since": paused,
                        "pause_kind": "supplement"}
            elif status == "withdrawn":
                move("withdrawn", "withdraw", submitted_by, "")
                for step in steps:
                    step[3] = "closed"
            elif status != "accepted":
                denied = status == "denied"
                decide = steps if status != "in_review" else steps[:max(1, len(steps) - 1)]
                for index, step in enumerate(decide):
                    verdict = "rejected" if denied and index == 0 else "approved"
                    step_at = move("in_review", "decide_step", self.staff, "同意" if verdict == "approved" else "不符合条件",
                                   department_code=step[0], detail={"decision": verdict})
                    step[3:6] = [verdict, self.staff_id, step_at]
                    step[6] = history[-1][6]
                    if denied:
                        break
                if status != "in_review":
                    row["decided_at"] = move("denied" if denied else "approved", "decide", self.staff,
                                             "准予许可" if not denied else "不予许可")
                    for step in steps:
                        if step[3] == "pending":
                            step[3] = "closed"
                if status in ("certificate_issued", "delivered", "collected"):
                    move("certificate_issued", "issue_certificate", self.staff, "")
                if status in ("delivered", "collected"):
                    move(status, "deliver", self.staff, "")
            if current in ("accepted", "in_review") and row["deadline_at"] is not None:
                yellow = deadlines.yellow_at(self.calendar, deadline=deadline,
                                             working_days=self.settings.yellow_working_days,
                                             close=self.settings.deadline_time)
                row["warning_level"] = 0 if self.now < yellow else (1 if self.now < deadline else 2)
        assert current == status, (current, status)
        self.cases.append((
            case_id, receipt, code, department, hall, citizen["id"], "person", name_enc, id_enc, None, None, id_tail,
            phone_tail, orjson.dumps(form).decode(), channel, submitted_by, None, status,
            orjson.dumps(row["missing"]).decode(), row["resume_status"], item["detail"].instant, False,
            item["detail"].promised_days, submitted_at, row["accepted_at"], row["decided_at"], row["deadline_at"],
            row["paused_since"], row["pause_kind"], row["pause_reason"], 0, row["warning_level"], at))
        for h in history:
            self.history.append((case_id, h[0], h[1], h[2], h[3], h[4], h[5], h[6], orjson.dumps(h[7]).decode()))
        for step in steps:
            self.steps.append((case_id, step[0], step[1], step[2], step[3], step[4], step[5], step[6]))
        if item["materials"] and rng.random() < 0.5:
            material = item["materials"][0]
            key = (citizen["id"], material)
            if key not in self.documents:
                self.documents[key] = (len(self.documents) + 1, citizen["id"], material, secrets.token_hex(16),
                                       "image/jpeg", 180_000 + rng.randrange(50_000), secrets.token_hex(32),
                                       submitted_by, submitted_at)
            self.materials.append((case_id, self.documents[key][0], material, submitted_at))
        self.listing.append(f"{case_id}\t{citizen['id']}\t{receipt}\t{status}\t{citizen['id_number'][-4:]}\t"
                            f"{citizen['phone'][-4:]}")


async def seed_cases(cases: int, citizen_count: int, out: Path, staff_id: int, queue: int, department: str) -> None:
    timings: dict[str, float] = {}
    settings = load_settings()
    await init_db(settings)
    rt = build_runtime(settings)
    rng = random.Random(8)
    try:
        started = time.monotonic()
        people = await seed_citizens(rt, citizen_count)
        timings["citizens_s"] = time.monotonic() - started
        started = time.monotonic()
        items, departments = {}, {}
        for row in await ServiceItem.filter(for_personal=True).values("code"):
            detail = await _item(rt, row["code"])
            reviewers = _review_departments(detail)
            for code in reviewers:
                departments[code] = (await get_department(rt, code=code)).hall
            try:
                form = await check_application_form(rt, item_code=detail.code, data=_form_answer(
                    [f.model_dump(exclude_none=True) for f in detail.form], "13800000000"))
            except Exception as exc:  # a form this filler cannot answer: the item is left out
                print(f"seed_cases: item {detail.code} left out: {exc}", file=sys.stderr)
                continue
            items[detail.code] = {"detail": detail, "reviewers": reviewers, "form": form,
                                  "phones": {f.name for f in detail.form if f.type == "phone"},
                                  "materials": [m.name for m in detail.materials]}
        queue_items = [code for code, item in items.items() if item["detail"].department == department]
        other_items = [code for code, item in items.items() if item["detail"].department != department
                       and department not in item["reviewers"]]
        if not queue_items:
            raise SystemExit(f"seed_cases: no personal item of department {department}")
        calendar = await load_working_calendar(rt)
        writer = Writer(rt, calendar, items, departments, staff_id, rng)
        queue_hall = items[queue_items[0]]["detail"].hall
        # the department's own cases: `queue` waiting (submitted, or accepted with its step pending),
        # a fifth as many more already done; everything else spread over the other items
        plan = [("queue", _pick([("submitted", 3), ("accepted", 7)], rng)) for _ in range(queue)]
        plan += [("queue", _pick(DONE, rng)) for _ in range(queue // 5)]
        plan += [("other", _pick(MIX, rng)) for _ in range(max(0, cases - len(plan)))]
        rng.shuffle(plan)
        now = clock.now()
        times = sorted(now - timedelta(seconds=rng.uniform(600, DAYS_BACK * 86_400)) for _ in plan)
        for case_id, ((kind, status), submitted_at) in enumerate(zip(plan, times), start=1):
            code = rng.choice(queue_items if kind == "queue" else other_items)
            writer.add(case_id, people[rng.randrange(len(people))], code, status, submitted_at)
        timings["build_s"] = time.monotonic() - started
        started = time.monotonic()
        db = await asyncpg.connect(settings.database_url.split("?", 1)[0])
        try:
            async with db.transaction():
                await db.copy_records_to_table("cases", records=writer.cases, columns=CASE_COLUMNS)
                await db.copy_records_to_table("case_history", records=writer.history, columns=HISTORY_COLUMNS)
                await db.copy_records_to_table("case_step", records=writer.steps, columns=STEP_COLUMNS)
                await db.copy_records_to_table("case_document", records=list(writer.documents.values()),
                                               columns=DOCUMENT_COLUMNS)
                await db.copy_records_to_table("case_material", records=writer.materials, columns=MATERIAL_COLUMNS)
                await db.copy_records_to_table(
                    "case_receipt_counter", records=[(hall, day, seq) for (hall, day), seq in writer.counters.items()],
                    columns=["hall_code", "day", "last_seq"])
                for table in ("cases", "case_document"):
                    await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))")
            # as autovacuum would soon after: index-only scans need the visibility map
            await db.execute("VACUUM ANALYZE")
        finally:
            await db.close()
        timings["copy_s"] = time.monotonic() - started
    finally:
        await close_db()
    out.mkdir(parents=True, exist_ok=True)
    (out / "citizens.tsv").write_text("".join(f"{p['id']}\t{p['token']}\t{p['phone']}\t{p['id_number']}\n"
                                              for p in people))
    (out / "cases.tsv").write_text("".join(line + "\n" for line in writer.listing))
    statuses: dict[str, int] = {}
    for row in writer.cases:
        statuses[row[17]] = statuses.get(row[17], 0) + 1
    (out / "seed.json").write_text(json.dumps({
        "cases": len(writer.cases), "history": len(writer.history), "steps": len(writer.steps),
        "documents": len(writer.documents), "materials": len(writer.materials), "citizens": len(people),
        "items": len(items), "queue_department": department, "queue_hall": queue_hall,
        "queue_items": queue_items, "statuses": dict(sorted(statuses.items())), "timings": timings}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cases", type=int)
    parser.add_argument("citizens", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--staff-id", type=int, required=True, help="the staff member the moves are recorded for")
    parser.add_argument("--queue", type=int, default=10_000)
    parser.add_argument("--department", default="nmyj")
    args = parser.parse_args()
    asyncio.run(seed_cases(args.cases, args.citizens, args.out, args.staff_id, args.queue, args.department))


if __name__ == "__main__":
    main()
