"""Role and scope rules of a principal: which halls and departments a grant reaches."""
from backend.kit.auth import Grant, Principal

ZHUOZI, JINING, ZHUOZISHAN, VILLAGE, CITY = "150921", "150902", "150921106", "150921106202", "150900"


def staff(*grants: Grant) -> Principal:
    return Principal(kind="staff", id=1, grants=grants)


def test_a_clerk_reaches_exactly_their_hall():
    clerk = staff(Grant("window_clerk", hall=ZHUOZI))
    assert clerk.covers_hall([ZHUOZI, CITY], ["window_clerk"])
    assert not clerk.covers_hall([JINING, CITY], ["window_clerk"])
    assert not clerk.covers_hall([ZHUOZISHAN, ZHUOZI, CITY], ["window_clerk"])


def test_a_supervisor_reaches_down_the_tree_but_not_sideways_or_up():
    supervisor = staff(Grant("supervisor", hall=ZHUOZI))
    assert supervisor.covers_hall([VILLAGE, ZHUOZISHAN, ZHUOZI, CITY], ["supervisor"])
    assert not supervisor.covers_hall([JINING, CITY], ["supervisor"])
    assert not supervisor.covers_hall([CITY], ["supervisor"])


def test_a_grant_without_a_hall_reaches_every_hall_but_only_for_its_role():
    admin = staff(Grant("admin"))
    assert admin.covers_hall([JINING, CITY], ["admin"])
    assert not admin.covers_hall([JINING, CITY], ["window_clerk"])


def test_a_department_in_a_grant_narrows_it_to_that_department():
    approver = staff(Grant("approver", hall=CITY, department="zjw"))
    assert approver.covers([CITY], "zjw", ["approver"])
    assert not approver.covers([CITY], "gaj", ["approver"])
    assert staff(Grant("approver", hall=CITY)).covers([CITY], "gaj", ["approver"])
