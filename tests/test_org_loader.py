"""The org file loader: exactly what someone editing org.yaml is told for each kind of mistake,
and the lookups the approval engine makes, on the demo organisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from org.loader import OrgFileError, OrgProblem, load_org_file, parse_org_yaml
from org.model import Org
from tests.conftest import DEMO_ORG

DATA = Path(__file__).parent / "data" / "org"


def problems_in(name: str) -> list[str]:
    path = DATA / name
    with pytest.raises(OrgFileError) as info:
        load_org_file(path)
    assert info.value.source == str(path)
    return info.value.format_problems()


def lines(name: str, *located: str) -> list[str]:
    """Expected problems as `LINE: message`, prefixed with the fixture's path."""
    return [f"{DATA / name}:{text}" for text in located]


@pytest.fixture(scope="module")
def demo() -> Org:
    return load_org_file(DEMO_ORG)


# -- the demo organisation and its lookups ---------------------------------------------------


def test_demo_org_loads_every_department_person_and_site(demo: Org) -> None:
    assert demo.name == "示例集团"
    assert demo.timezone == "Asia/Shanghai"
    assert list(demo.departments) == [
        "gm_office",
        "admin_service",
        "hr_admin",
        "finance",
        "marketing",
        "engineering",
    ]
    assert len(demo.users) == 11
    assert all(u.active for u in demo.users.values())
    wu = demo.users["u_wu"]
    assert (wu.name, wu.department, wu.title, wu.manager) == ("吴昊", "marketing", "市场专员", "u_sun")
    assert wu.accounts == {"wecom": "wuhao", "dingtalk": "010009"}
    assert demo.users["u_wang"].roles == ("admin_service_manager", "seal_dept_head")
    hq = demo.sites["hq"]
    assert (hq.name, hq.lat, hq.lng, hq.radius_m, hq.coord_system) == (
        "集团总部",
        31.2304,
        121.4737,
        300.0,
        "gcj02",
    )


def test_direct_manager_and_manager_n_levels_up(demo: Org) -> None:
    assert demo.manager_of("u_wu") == "u_sun"
    assert demo.manager_of("u_wu", 2) == "u_li"
    assert demo.manager_of("u_wu", 3) == "u_zhang"
    assert demo.manager_of("u_wu", 4) is None
    assert demo.manager_of("u_zhang") is None
    assert demo.manager_chain("u_wu") == ["u_sun", "u_li", "u_zhang"]


def test_asking_for_zero_levels_up_is_an_error_not_the_person_themself(demo: Org) -> None:
    with pytest.raises(ValueError, match="levels must be 1 or more"):
        demo.manager_of("u_wu", 0)


def test_heads_of_a_named_department_and_of_the_initiators_department(demo: Org) -> None:
    assert demo.heads_of("engineering") == ["u_zhou"]
    assert demo.heads_of_user_department("u_zheng") == ["u_zhou"]
    assert demo.heads_of("no_such_department") == []
    assert demo.is_department_head("u_zhou")
    assert not demo.is_department_head("u_zheng")
    assert demo.is_department_head("u_wang", "admin_service")


def test_role_holders(demo: Org) -> None:
    assert demo.role_holders("seal_keeper") == ["u_chen"]
    assert demo.role_holders("fleet_dispatcher") == ["u_liu"]
    assert demo.role_holders("seal_dept_head") == ["u_wang"]
    assert demo.role_holders("no_such_role") == []


def test_user_by_platform_account(demo: Org) -> None:
    found = demo.user_by_account("dingtalk", "010009")
    assert found is not None and found.id == "u_wu"
    by_wecom = demo.user_by_account("wecom", "wuhao")
    assert by_wecom is not None and by_wecom.id == "u_wu"
    assert demo.user_by_account("wecom", "010009") is None
    assert demo.user_by_account("dingtalk", "999999") is None


def test_job_level(demo: Org) -> None:
    assert demo.level_of("u_wu") is None  # the demo file gives no levels
    later = load_org_file(DATA / "demo_updated.yaml")
    assert later.level_of("u_wu") == 5
    assert later.level_of("u_nobody") is None


def test_members_of_a_department_and_its_sub_departments(demo: Org) -> None:
    assert demo.members_of("admin_service") == ["u_wang", "u_chen", "u_liu"]
    assert demo.members_of("gm_office") == ["u_zhang", "u_li"]
    assert sorted(demo.members_of("gm_office", include_sub=True)) == sorted(demo.users)


def test_deputies_are_heads_after_the_leader_and_inactive_people_drop_out() -> None:
    org = parse_org_yaml(
        """
organization: 测试
timezone: Asia/Shanghai
departments:
  - {id: office, name: 办公室, leader: u_a, deputies: [u_b, u_c]}
users:
  - {id: u_a, name: 甲, department: office, roles: [registrar]}
  - {id: u_b, name: 乙, department: office, manager: u_a, roles: [registrar], accounts: {wecom: yi}}
  - {id: u_c, name: 丙, department: office, manager: u_a, active: false, accounts: {wecom: bing}}
"""
    )
    assert org.heads_of("office") == ["u_a", "u_b"]
    assert org.heads_of("office", active_only=False) == ["u_a", "u_b", "u_c"]
    assert org.is_department_head("u_b")
    assert org.role_holders("registrar") == ["u_a", "u_b"]
    left = org.user_by_account("wecom", "bing")
    assert left is not None and left.id == "u_c" and not left.active


def test_yaml_anchors_and_merge_keys_are_understood() -> None:
    org = parse_org_yaml(
        """
organization: 测试
timezone: UTC
departments: [{id: office, name: 办公室}]
users:
  - &clerk {id: u_a, name: 甲, department: office, title: 文员, roles: [clerk]}
  - <<: *clerk
    id: u_b
    name: 乙
"""
    )
    assert org.users["u_b"].title == "文员"
    assert org.users["u_b"].roles == ("clerk",)
    assert org.users["u_b"].name == "乙"


# -- every kind of mistake, each with its line ---------------------------------------------------


def test_unknown_references_are_each_reported_on_their_line() -> None:
    assert problems_in("bad_references.yaml") == lines(
        "bad_references.yaml",
        "10: department sales: unknown parent 'headquarters'; expected the id of a department in this file",
        "11: department sales: unknown leader 'u_nobody'; expected the id of a user in this file",
        "12: department sales: unknown deputy 'u_ghost'; expected the id of a user in this file",
        "19: user u_ann: unknown department 'sales_dept'; expected the id of a department in this file",
        "20: user u_ann: unknown manager 'u_bos'; expected the id of a user in this file",
    )


def test_manager_cycles_are_reported_once_each() -> None:
    assert problems_in("manager_cycle.yaml") == lines(
        "manager_cycle.yaml",
        "10: manager cycle u_a -> u_c -> u_b -> u_a; "
        "expected a chain of managers ending at someone with no manager",
        "22: user u_d: manager is themself; expected someone else or no manager",
    )


def test_department_tree_cycles_are_reported() -> None:
    assert problems_in("department_cycle.yaml") == lines(
        "department_cycle.yaml",
        "8: department cycle east -> west -> east; "
        "expected parents leading up to a top department with no parent",
        "14: department lab: parent is itself; expected another department or no parent",
    )


def test_duplicate_ids_keys_and_platform_accounts() -> None:
    assert problems_in("duplicates.yaml") == lines(
        "duplicates.yaml",
        "6: duplicate department id 'hq' (first on line 4); expected each id once",
        "15: user u_b: key 'name' appears twice (first on line 14); expected each key once",
        "17: user u_b: dingtalk account '0101' already belongs to u_a (line 12); "
        "expected each account to belong to one person",
        "18: duplicate user id 'u_a' (first on line 9); expected each id once",
        "24: duplicate site id 'hq' (first on line 23); expected each id once",
    )


def test_malformed_coordinates() -> None:
    assert problems_in("bad_sites.yaml") == lines(
        "bad_sites.yaml",
        "13: site north_pole: 'lat' is 91, out of range; expected a latitude from -90 to 90",
        "14: site north_pole: 'lng' is -180.5, out of range; expected a longitude from -180 to 180",
        "15: site north_pole: 'radius_m' is 0, out of range; expected a radius in metres greater than 0",
        "18: site nowhere: 'lat' is not a number (NaN); expected a latitude from -90 to 90",
        "20: site nowhere: 'radius_m' is -5, out of range; expected a radius in metres greater than 0",
        "21: site nowhere: 'coord_system' is 'bd09'; expected gcj02 or wgs84",
        "22: site text_coords: missing required key 'radius_m'; expected a radius in metres greater than 0",
        "24: site text_coords: 'lat' is the text '31.2'; expected a latitude from -90 to 90",
    )


def test_missing_required_keys() -> None:
    assert problems_in("missing_keys.yaml") == lines(
        "missing_keys.yaml",
        "1: missing required key 'timezone'; expected an IANA time zone such as Asia/Shanghai",
        "3: department hq: missing required key 'name'; expected the department's name",
        "4: department #2: missing required key 'id'; expected a unique department id such as finance",
        "6: user u_a: missing required key 'name'; expected the person's name",
        "8: user u_b: missing required key 'department'; expected the id of the person's department",
        "10: user #3: missing required key 'id'; expected a unique user id such as u_zhang",
    )


def test_wrong_types_name_the_key_what_was_found_and_what_is_expected() -> None:
    assert problems_in("wrong_types.yaml") == lines(
        "wrong_types.yaml",
        "1: 'organization' is a list; expected the organisation's name",
        "2: 'timezone' 'Asia/Shanghia' is not a known time zone; expected an IANA time zone such as Asia/Shanghai",
        "6: department hq: 'deputies' is the text 'u_a'; expected a list of user ids such as [u_li]",
        "7: department #2 is the text 'just a name'; expected a mapping of key: value",
        "10: user u_a: 'name' is the number 12345; expected the person's name (put it in quotes: \"12345\")",
        "12: user u_a: 'roles' is the text 'seal_keeper'; expected a list such as [seal_keeper]",
        "13: user u_a: 'level' is the text 'senior'; expected a whole number 0 or more",
        "14: user u_a: 'active' is the text 'no'; expected true or false",
        "18: user u_b: 'accounts' is a list; "
        'expected platform: account pairs such as {wecom: zhangwei, dingtalk: "010001"}',
        "19: user u_b: 'level' is the number -1; expected a whole number 0 or more",
        "23: user u_c: dingtalk account is the number 010001; "
        'expected the dingtalk account id (put it in quotes: "010001")',
        "23: user u_c: 'WeCom' is not a platform name; expected lower-case letters such as wecom",
        "25: 'sites' is a mapping; expected a list of sites (- id: ...)",
    )


def test_unknown_keys_at_every_level() -> None:
    assert problems_in("unknown_keys.yaml") == lines(
        "unknown_keys.yaml",
        "3: unknown top-level key 'employees'; expected one of organization, timezone, departments, users, sites",
        "7: department hq: unknown key 'head'; expected one of id, name, parent, leader, deputies",
        "12: user u_a: unknown key 'manger'; "
        "expected one of id, name, department, title, manager, roles, accounts, level, active",
        "13: user u_a: unknown key 'email'; "
        "expected one of id, name, department, title, manager, roles, accounts, level, active",
        "15: site hq: missing required key 'radius_m'; expected a radius in metres greater than 0",
        "19: site hq: unknown key 'radius'; expected one of id, name, lat, lng, radius_m, coord_system",
    )


def test_malformed_yaml_is_reported_with_its_line() -> None:
    assert problems_in("malformed.yaml") == lines(
        "malformed.yaml",
        "11: malformed YAML: expected ',' or ']', but got ':' (while parsing a flow sequence that starts on line 10)",
    )


def test_an_empty_file_is_refused() -> None:
    assert problems_in("empty.yaml") == lines(
        "empty.yaml", "1: the file is empty; expected organization, timezone, departments and users"
    )


def test_an_empty_user_list_is_refused_rather_than_deactivating_everyone() -> None:
    with pytest.raises(OrgFileError) as info:
        parse_org_yaml("organization: x\ntimezone: UTC\ndepartments: [{id: a, name: A}]\nusers: []\n")
    assert info.value.format_problems() == ["<string>:4: 'users' is empty; expected at least one user"]


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(OrgFileError) as info:
        parse_org_yaml("- just\n- a list\n", source="org.yaml")
    assert info.value.format_problems() == [
        "org.yaml:1: the file is a list; expected organization, timezone, departments and users"
    ]


def test_too_long_ids_and_ids_with_spaces_are_refused() -> None:
    long_id = "d" * 65
    text = (
        "organization: x\ntimezone: UTC\n"
        f"departments: [{{id: {long_id}, name: A}}, {{id: b, name: B}}]\n"
        "users: [{id: u a, name: A, department: b}]\n"
    )
    with pytest.raises(OrgFileError) as info:
        parse_org_yaml(text)
    assert info.value.format_problems() == [
        "<string>:3: department #1: 'id' is 65 characters long; expected at most 64",
        "<string>:4: user #1: id 'u a' contains spaces; expected a unique user id such as u_zhang",
    ]


def test_unreadable_files_name_the_file_without_a_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(OrgFileError) as info:
        load_org_file(missing)
    assert info.value.format_problems() == [f"{missing}: cannot be read (No such file or directory)"]

    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes("organization: 示例集团\n".encode("gbk"))
    with pytest.raises(OrgFileError) as info:
        load_org_file(gbk)
    assert info.value.format_problems() == [f"{gbk}: is not UTF-8 text (invalid start byte)"]


def test_problem_and_error_text() -> None:
    assert str(OrgProblem(3, "bad")) == "line 3: bad"
    assert str(OrgProblem(None, "bad")) == "bad"
    assert OrgProblem(3, "bad").format("org.yaml") == "org.yaml:3: bad"
    error = OrgFileError("org.yaml", [OrgProblem(1, "a"), OrgProblem(2, "b")])
    assert str(error) == "org.yaml:1: a\norg.yaml:2: b"
