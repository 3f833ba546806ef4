from tortoise import fields
from tortoise.models import Model

__all__ = [
    "Hall", "Department", "ServiceItem", "Topic", "ServiceItemTopic", "HallItem", "QueueCategory", "Window",
    "HolidayOverride", "CatalogRevision",
]


class Hall(Model):
    """A service hall at one of four levels: city, county (banner/district), township, village agency point (代办点)."""
    code = fields.CharField(max_length=12, primary_key=True)   # administrative division code
    name = fields.CharField(max_length=64)
    name_mn = fields.CharField(max_length=128, default="")
    name_en = fields.CharField(max_length=128, default="")
    level = fields.CharField(max_length=8)                     # city | county | township | village
    parent = fields.ForeignKeyField("ehall.Hall", related_name="children", null=True,
                                    on_delete=fields.RESTRICT)
    address = fields.CharField(max_length=128, default="")
    phone = fields.CharField(max_length=32, default="")        # the hall's public service line
    hours_workday = fields.JSONField(default=list)             # ["09:00-12:00", "13:30-17:30"]
    hours_note = fields.CharField(max_length=128, default="")
    # GCJ-02 (国测局) coordinates, the datum wx.openLocation and Chinese map SDKs expect; not WGS-84
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    # village agency points (代办点): the agent's posted visiting schedule and contact (halls.toml [hall.agency])
    agency = fields.JSONField(null=True)

    class Meta:
        table = "hall"


class Department(Model):
    """A department stationed (进驻) in a hall."""
    code = fields.CharField(max_length=32, primary_key=True)
    hall = fields.ForeignKeyField("ehall.Hall", related_name="departments", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=64)
    short_name = fields.CharField(max_length=32)
    name_mn = fields.CharField(max_length=128, default="")
    name_en = fields.CharField(max_length=128, default="")

    class Meta:
        table = "department"


class ServiceItem(Model):
    """A service item (事项) a department handles, with its promised time limit (承诺时限) in working days."""
    code = fields.CharField(max_length=48, primary_key=True)   # 事项编码
    department = fields.ForeignKeyField("ehall.Department", related_name="items", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=128)
    name_mn = fields.CharField(max_length=256, default="")    # Traditional Mongolian script
    name_en = fields.CharField(max_length=256, default="")
    kind = fields.CharField(max_length=16)                     # 行政许可, 公共服务, ...
    promised_days = fields.IntField()
    legal_days = fields.IntField()
    instant = fields.BooleanField()                            # 即办件
    materials = fields.JSONField(default=list)
    fee_yuan = fields.DecimalField(max_digits=10, decimal_places=2, default=0)
    fee_note = fields.CharField(max_length=128, default="")
    online = fields.BooleanField()                             # 外网申报
    appointment = fields.BooleanField()
    keywords = fields.JSONField(default=list)
    search_text = fields.TextField(default="")   # names (zh, mn, en lowercased) + keywords + department
    conditions = fields.JSONField(default=list)                # 受理条件
    steps = fields.JSONField(default=list)                     # 办理流程
    legal_basis = fields.JSONField(default=list)               # 设定依据
    location = fields.CharField(max_length=128, default="")   # where in the hall: "一楼B区 08-10号窗口"
    phone = fields.CharField(max_length=32, default="")        # 咨询电话
    for_personal = fields.BooleanField(default=False)          # 个人办事
    for_enterprise = fields.BooleanField(default=False)        # 法人办事
    # the application form (外网申报) an app renders from data: [{name, type, label{zh,mn,en}, required,
    # choices?, max_length?, min?, max?}] (config/catalog/forms.toml, loaded per item)
    form = fields.JSONField(default=list)
    # departments that review an application at the same time as the item's own (并联审批, 联合审图,
    # 联合验收); the item's department leads. `review_kind` names the procedure when there is one.
    review_departments = fields.JSONField(default=list)
    review_kind = fields.CharField(max_length=16, default="")

    class Meta:
        table = "service_item"


class Topic(Model):
    """A theme to browse service items by (主题: 户籍, 社保, 不动产 ...)."""
    code = fields.CharField(max_length=32, primary_key=True)
    name = fields.CharField(max_length=64)
    name_mn = fields.CharField(max_length=128, default="")
    name_en = fields.CharField(max_length=128, default="")
    position = fields.IntField(default=0)                      # order in config/catalog/topics.toml

    class Meta:
        table = "topic"


class ServiceItemTopic(Model):
    id = fields.IntField(primary_key=True)
    item = fields.ForeignKeyField("ehall.ServiceItem", related_name="topic_links", on_delete=fields.CASCADE)
    topic = fields.ForeignKeyField("ehall.Topic", related_name="item_links", on_delete=fields.CASCADE)

    class Meta:
        table = "service_item_topic"
        unique_together = (("item", "topic"),)


class HallItem(Model):
    """A service item a township hall accepts and passes up (mode "accept"), or one a village agency
    point's agent (代办员) can take on a citizen's behalf (mode "agent")."""
    id = fields.IntField(primary_key=True)
    hall = fields.ForeignKeyField("ehall.Hall", related_name="item_links", on_delete=fields.CASCADE)
    item = fields.ForeignKeyField("ehall.ServiceItem", related_name="hall_links", on_delete=fields.CASCADE)
    mode = fields.CharField(max_length=8)                      # accept | agent

    class Meta:
        table = "hall_item"
        unique_together = (("hall", "item"),)


class QueueCategory(Model):
    """A queue of a hall. Its tickets are numbered with its prefix letter (A001)."""
    id = fields.IntField(primary_key=True)
    hall = fields.ForeignKeyField("ehall.Hall", related_name="queue_categories", on_delete=fields.RESTRICT)
    prefix = fields.CharField(max_length=1)
    name = fields.CharField(max_length=64)
    name_mn = fields.CharField(max_length=128, default="")
    name_en = fields.CharField(max_length=128, default="")
    departments = fields.JSONField(default=list)
    mean_service_minutes = fields.IntField()

    class Meta:
        table = "queue_category"
        unique_together = (("hall", "prefix"),)


class Window(Model):
    """A service window (窗口) of a hall and the queue categories it calls from."""
    id = fields.IntField(primary_key=True)
    hall = fields.ForeignKeyField("ehall.Hall", related_name="windows", on_delete=fields.RESTRICT)
    number = fields.CharField(max_length=8)
    name = fields.CharField(max_length=64)
    categories = fields.JSONField(default=list)
    department_code = fields.CharField(max_length=32, default="")
    status = fields.CharField(max_length=8, default="closed")   # open | paused | closed

    class Meta:
        table = "window"
        unique_together = (("hall", "number"),)


class HolidayOverride(Model):
    """A day the calendar package does not know or gets wrong: a holiday, or a make-up working day (调休)."""
    date = fields.DateField(primary_key=True)
    is_workday = fields.BooleanField()
    name = fields.CharField(max_length=32, default="")

    class Meta:
        table = "holiday_override"


class CatalogRevision(Model):
    """Bumped whenever the catalogue is (re)loaded: part of the key of every kept catalogue answer."""
    id = fields.IntField(primary_key=True)
    revision = fields.IntField(default=0)
    loaded_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "catalog_revision"
