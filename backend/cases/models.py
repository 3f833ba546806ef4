"""Applications (办件): the case, its department steps, its immutable history, its materials, the receipt
counter, and what a citizen entered once and is offered again (一口录入、多部门共享)."""
from tortoise import fields
from tortoise.models import Model

from backend.kit.pii import NAME_MAX_CHARS, sealed_length

__all__ = [
    "Case", "CaseStep", "CaseHistory", "Document", "CaseMaterial", "Enterprise", "ReceiptCounter", "Mandate",
    "CASE_STATUSES", "UNDECIDED_STATUSES", "CLOCK_STATUSES", "STEP_STATUSES",
]

# submitted (已申报) -> accepted (已受理) | refused (不予受理) | supplement_required (补正) -> in_review (办理中)
# -> approved (办结·准予) | denied (办结·不予) -> certificate_issued (已出证) -> delivered (已送达) | collected
# (已领取); withdrawn (撤回) by the applicant before a decision. backend/cases/machine.py says which moves
# exist and who may make them.
CASE_STATUSES = ("submitted", "accepted", "refused", "supplement_required", "in_review", "approved", "denied",
                 "certificate_issued", "delivered", "collected", "withdrawn")
# the applicant may still withdraw; the time limit may still run out
UNDECIDED_STATUSES = ("submitted", "accepted", "supplement_required", "in_review")
# accepted and not yet decided: the promised time (承诺时限) is running, or paused
CLOCK_STATUSES = ("accepted", "supplement_required", "in_review")
# a department's step of the review: pending -> approved | rejected; closed when the case ends without it
STEP_STATUSES = ("pending", "approved", "rejected", "closed")


class Case(Model):
    """One application for one service item, from declaration to delivery of the certificate."""
    id = fields.BigIntField(primary_key=True)
    receipt = fields.CharField(max_length=32, unique=True)     # 受理编号: hall code, date, sequence, check
    item_code = fields.CharField(max_length=48)
    department_code = fields.CharField(max_length=32)           # the lead (牵头) department: the item's own
    hall_code = fields.CharField(max_length=12)                 # the lead department's hall
    # the account the application belongs to: the applicant, or the person acting for the enterprise
    citizen_id = fields.BigIntField()
    applicant_kind = fields.CharField(max_length=10)            # person | enterprise
    # who applies, as declared (kept as it was then: a later profile change does not rewrite an application)
    applicant_name_enc = fields.CharField(max_length=sealed_length(NAME_MAX_CHARS))
    applicant_id_number_enc = fields.CharField(max_length=160)
    enterprise_name = fields.CharField(max_length=128, null=True)
    enterprise_uscc = fields.CharField(max_length=18, null=True)  # 统一社会信用代码: not personal data
    # HMAC blind indexes of the last 4 characters of the applicant's ID number and phone: the progress
    # lookup without an account compares them, nothing else can be read from them
    id_tail_index = fields.CharField(max_length=64)
    phone_tail_index = fields.CharField(max_length=64, null=True)
    form = fields.JSONField(default=dict)                        # the item's form, checked; personal fields sealed
    channel = fields.CharField(max_length=8)                     # online | window | agent
    submitted_by = fields.CharField(max_length=32)               # "citizen:42" | "staff:7"
    mandate_id = fields.BigIntField(null=True)                   # the 委托 an agent declared under
    status = fields.CharField(max_length=24, default="submitted")
    # 补正: what is missing, and the status the case goes back to when the applicant resubmits
    missing = fields.JSONField(default=list)
    resume_status = fields.CharField(max_length=24, null=True)
    instant = fields.BooleanField(default=False)                 # 即办件
    finished_at_acceptance = fields.BooleanField(default=False)  # counts toward the instant-completion rate
    promised_days = fields.IntField(default=0)
    submitted_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)
    decided_at = fields.DatetimeField(null=True)
    # the time limit: the end of the deadline's working day; pauses (补正, 特别程序) push it back
    deadline_at = fields.DatetimeField(null=True)
    paused_since = fields.DatetimeField(null=True)
    pause_kind = fields.CharField(max_length=24, null=True)      # supplement | special_procedure
    pause_reason = fields.CharField(max_length=200, null=True)
    paused_working_days = fields.IntField(default=0)
    warning_level = fields.SmallIntField(default=0)              # 0 none, 1 黄牌 yellow, 2 红牌 red
    updated_at = fields.DatetimeField()

    class Meta:
        table = "cases"   # "case" is an SQL keyword
        # (department, status, hall, id): a department's submitted cases of the halls an approver reaches,
        # read from the index alone for the staff queue (service.list_staff_cases)
        indexes = (("citizen_id", "id"), ("department_code", "status", "id"), ("hall_code", "status", "id"),
                   ("status", "deadline_at"), ("department_code", "status", "hall_code", "id"))


class CaseStep(Model):
    """The part of one department in the review. An item reviewed in parallel (并联审批, 联合审图, 联合验收)
    has a step per department, decided independently; the lead department's step is marked."""
    id = fields.BigIntField(primary_key=True)
    case = fields.ForeignKeyField("ehall.Case", related_name="steps", on_delete=fields.CASCADE)
    department_code = fields.CharField(max_length=32)
    hall_code = fields.CharField(max_length=12)
    lead = fields.BooleanField(default=False)
    status = fields.CharField(max_length=10, default="pending")
    decided_by = fields.BigIntField(null=True)                   # staff id
    decided_at = fields.DatetimeField(null=True)
    comment = fields.CharField(max_length=500, default="")

    class Meta:
        table = "case_step"
        unique_together = (("case", "department_code"),)
        # the hall too, so the staff queue's pending steps of the halls an approver reaches come from the index alone
        indexes = (("department_code", "status", "hall_code", "case_id"),)


class CaseHistory(Model):
    """What happened to a case, appended with every move and never changed: who, when, from, to, why."""
    id = fields.BigIntField(primary_key=True)
    case = fields.ForeignKeyField("ehall.Case", related_name="history", on_delete=fields.CASCADE)
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=32)                      # "citizen:42" | "staff:7" | "system"
    action = fields.CharField(max_length=24)
    from_status = fields.CharField(max_length=24, null=True)
    to_status = fields.CharField(max_length=24)
    department_code = fields.CharField(max_length=32, null=True)  # a step's department
    comment = fields.CharField(max_length=500, default="")
    detail = fields.JSONField(default=dict)

    class Meta:
        table = "case_history"
        indexes = (("case_id", "id"),)


class Document(Model):
    """A file a citizen (or staff for them) uploaded once: an ID card copy, a business licence. It is
    offered again for later applications instead of being asked again."""
    id = fields.BigIntField(primary_key=True)
    citizen_id = fields.BigIntField()
    material = fields.CharField(max_length=64)                  # the material it is, by the item's list
    storage_key = fields.CharField(max_length=80, unique=True)
    content_type = fields.CharField(max_length=32)
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64)
    uploaded_by = fields.CharField(max_length=32)
    created_at = fields.DatetimeField()

    class Meta:
        table = "case_document"
        indexes = (("citizen_id", "material", "id"),)


class CaseMaterial(Model):
    """A document given for one of the required materials of a case, and every department of the case sees it."""
    id = fields.BigIntField(primary_key=True)
    case = fields.ForeignKeyField("ehall.Case", related_name="materials", on_delete=fields.CASCADE)
    document = fields.ForeignKeyField("ehall.Document", related_name="uses", on_delete=fields.RESTRICT)
    material = fields.CharField(max_length=64)
    attached_at = fields.DatetimeField()

    class Meta:
        table = "case_material"
        unique_together = (("case", "document"),)


class Enterprise(Model):
    """An enterprise a citizen has applied for, offered again next time (name and credit code)."""
    id = fields.BigIntField(primary_key=True)
    citizen_id = fields.BigIntField()
    uscc = fields.CharField(max_length=18)
    name = fields.CharField(max_length=128)
    last_used_at = fields.DatetimeField()

    class Meta:
        table = "case_enterprise"
        unique_together = (("citizen_id", "uscc"),)


class ReceiptCounter(Model):
    """The last receipt sequence a hall gave on a business date, incremented under its row lock."""
    id = fields.BigIntField(primary_key=True)
    hall_code = fields.CharField(max_length=12)
    day = fields.DateField()
    last_seq = fields.IntField(default=0)

    class Meta:
        table = "case_receipt_counter"
        unique_together = (("hall_code", "day"),)


class Mandate(Model):
    """The 委托 of a citizen to a village agent (代办员): who, for which items, signed how. The agent declares
    and follows applications for the citizen under it."""
    id = fields.BigIntField(primary_key=True)
    agent_id = fields.BigIntField()                               # the agent's staff id
    hall_code = fields.CharField(max_length=12)                   # the agency point (代办点)
    citizen_id = fields.BigIntField()
    name_enc = fields.CharField(max_length=sealed_length(NAME_MAX_CHARS))
    id_number_enc = fields.CharField(max_length=160)
    phone_enc = fields.CharField(max_length=160)
    items = fields.JSONField(default=list)
    signature_document_id = fields.BigIntField(null=True)         # a photo or scan of the signed form
    reference = fields.CharField(max_length=64, default="")       # or the paper form's number
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "case_mandate"
        indexes = (("agent_id", "id"), ("citizen_id",))
