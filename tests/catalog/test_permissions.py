"""Who may change a window: one grant must reach both the window's hall and its department."""
import pytest

from backend.catalog.permissions import require_window_hall, require_window_scope
from backend.kit.auth import Grant, Principal
from backend.kit.errors import AppError

ZHUOZI, JINING, CITY, ZHUOZISHAN = ["150921", "150900"], ["150902", "150900"], ["150900"], \
    ["150921106", "150921", "150900"]


def staff(*grants: Grant) -> Principal:
    return Principal(kind="staff", id=1, grants=grants)


def allowed(principal: Principal, lineage: list[str], department: str) -> bool:
    try:
        require_window_hall(principal, lineage)
        require_window_scope(principal, lineage, department)
    except AppError as refused:
        assert refused.status == 403 and refused.code == "out_of_scope"
        return False
    return True


class TestRequireWindowScope:
    def test_a_department_grant_reaches_only_that_departments_windows(self):
        clerk = staff(Grant("window_clerk", hall="150921", department="150921-ga"))
        assert allowed(clerk, ZHUOZI, "150921-ga")
        assert not allowed(clerk, ZHUOZI, "150921-bdc")

    def test_comprehensive_windows_need_a_grant_without_a_department(self):
        assert not allowed(staff(Grant("window_clerk", hall="150921", department="150921-ga")), ZHUOZI, "")
        assert allowed(staff(Grant("window_clerk", hall="150921")), ZHUOZI, "")

    def test_a_grant_without_a_department_reaches_every_department_of_its_hall(self):
        assert allowed(staff(Grant("window_clerk", hall="150921")), ZHUOZI, "150921-bdc")
        assert allowed(staff(Grant("admin")), JINING, "150902-ga")

    @pytest.mark.parametrize("other", [Grant("supervisor", hall="150902"), Grant("window_clerk", hall="150902"),
                                       Grant("supervisor", hall="150921", department="150921-scjg")])
    def test_hall_and_department_are_checked_on_the_same_grant(self, other):
        clerk = staff(Grant("window_clerk", hall="150921", department="150921-ga"), other)
        assert not allowed(clerk, ZHUOZI, "150921-bdc")

    def test_a_department_supervisor_reaches_down_only_to_that_department(self):
        supervisor = staff(Grant("supervisor", hall="150921", department="150921-ga"))
        assert allowed(supervisor, ZHUOZISHAN, "150921-ga")
        assert not allowed(supervisor, ZHUOZISHAN, "")

    def test_a_role_without_window_rights_reaches_nothing(self):
        assert not allowed(staff(Grant("approver")), ZHUOZI, "150921-ga")
