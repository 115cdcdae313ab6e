"""Reads and validates an organisation file (YAML) into an `org.model.Org`.

The file has `organization`, `timezone`, `departments`, `users` and optional `sites`
(bot/data/demo_org.yaml is the reference). Every problem in the file is collected with the line
it is on and reported together in one `OrgFileError`; an `Org` comes back only when the whole
file is valid, so nothing half-checked ever reaches storage. Apart from reading the file this
module does no I/O: it must not touch the database (`storage.org_repo` writes the snapshot).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from org.model import (
    ACCOUNT_MAX_LEN,
    COORD_SYSTEMS,
    ID_MAX_LEN,
    NAME_MAX_LEN,
    PLATFORM_MAX_LEN,
    ROLE_MAX_LEN,
    TIMEZONE_MAX_LEN,
    Department,
    Org,
    Site,
    User,
)

TOP_LEVEL_KEYS = ("organization", "timezone", "departments", "users", "sites")
DEPARTMENT_KEYS = ("id", "name", "parent", "leader", "deputies")
USER_KEYS = ("id", "name", "department", "title", "manager", "roles", "accounts", "level", "active")
SITE_KEYS = ("id", "name", "lat", "lng", "radius_m", "coord_system")

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_PLATFORM_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_LEVEL_MAX = 2**31 - 1  # fits an INTEGER column


@dataclass(frozen=True)
class OrgProblem:
    """One thing wrong with an org file; `line` is 1-based, None when no line applies."""

    line: int | None
    message: str

    def format(self, source: str) -> str:
        """`FILE:LINE: message` (or `FILE: message` when there is no line)."""
        if self.line is None:
            return f"{source}: {self.message}"
        return f"{source}:{self.line}: {self.message}"

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


class OrgFileError(Exception):
    """The org file cannot be used; `problems` lists every problem found, in line order."""

    def __init__(self, source: str, problems: list[OrgProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.format_problems()))

    def format_problems(self) -> list[str]:
        """One `FILE:LINE: message` line per problem."""
        return [p.format(self.source) for p in self.problems]


def load_org_file(path: str | Path) -> Org:
    """Read and validate the org file at `path`, or raise OrgFileError naming every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OrgFileError(source, [OrgProblem(None, f"is not UTF-8 text ({exc.reason})")]) from exc
    except OSError as exc:
        raise OrgFileError(source, [OrgProblem(None, f"cannot be read ({exc.strerror or exc})")]) from exc
    return parse_org_yaml(text, source)


def parse_org_yaml(text: str, source: str = "<string>") -> Org:
    """Validate org YAML given as text, or raise OrgFileError; `source` names it in problems."""
    reader = _OrgReader()
    org = reader.read(text)
    if org is None or reader.problems:
        raise OrgFileError(source, sorted(reader.problems, key=lambda p: p.line or 0))
    return org


# -- reading -----------------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_text(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _STR


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _describe(node: Node) -> str:
    """How a value reads to the person who wrote it, for "... is <this>" in messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = str(node.value)
    if node.tag == _NULL:
        return "empty"
    if node.tag in (_INT, _FLOAT):
        return f"the number {value}"
    if node.tag == _BOOL:
        return f"the boolean {value}"
    if node.tag == _STR:
        return f"the text {value!r}"
    return f"{value!r} tagged {node.tag}"


@dataclass(frozen=True)
class _Ref:
    """An id as written in the file, with the line it is on."""

    value: str
    line: int


@dataclass
class _Fields:
    """One mapping from the file. `values`: key -> value node, later keys winning (YAML merges)."""

    node: MappingNode
    values: dict[str, Node]
    duplicates: list[tuple[str, int, int]]  # key, line, line of its first occurrence
    odd_keys: list[Node]  # keys that are not text

    def get(self, key: str) -> Node | None:
        """The value node, or None when the key is absent or its value empty."""
        node = self.values.get(key)
        return None if node is None or _is_null(node) else node


@dataclass
class _DepartmentDraft:
    subject: str
    id: _Ref | None
    parent: _Ref | None
    leader: _Ref | None
    deputies: list[_Ref]
    department: Department | None


@dataclass
class _UserDraft:
    subject: str
    id: _Ref | None
    department: _Ref | None
    manager: _Ref | None
    accounts: list[tuple[str, _Ref]]
    user: User | None


@dataclass
class _SiteDraft:
    id: _Ref | None
    site: Site | None


@dataclass
class _Ids:
    """First line of each id, for duplicate and reference checks."""

    lines: dict[str, int] = field(default_factory=dict)

    def __contains__(self, value: object) -> bool:
        return value in self.lines


class _OrgReader:
    """Walks the composed YAML tree, collecting problems instead of stopping at the first.

    Composed nodes (not plain Python values) are walked so every problem keeps its line.
    """

    def __init__(self) -> None:
        self.problems: list[OrgProblem] = []
        self._constructor = SafeConstructor()

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(OrgProblem(line, message))

    # -- whole document ----------------------------------------------------------------
    def read(self, text: str) -> Org | None:
        root = self._compose(text)
        if root is None:
            return None
        top = self._mapping(root, "the file", "organization, timezone, departments and users")
        if top is None:
            return None
        self._check_keys(top, "", TOP_LEVEL_KEYS, what="top-level key")
        name = self._text(top, "organization", "", "the organisation's name", NAME_MAX_LEN, required=True)
        timezone = self._timezone(top)
        departments = [
            self._read_department(node, i)
            for i, node in enumerate(self._list(top, "departments", "department", required=True), 1)
        ]
        users = [
            self._read_user(node, i)
            for i, node in enumerate(self._list(top, "users", "user", required=True), 1)
        ]
        sites = [
            self._read_site(node, i)
            for i, node in enumerate(self._list(top, "sites", "site", required=False), 1)
        ]

        dept_ids = self._unique_ids("department", (d.id for d in departments))
        user_ids = self._unique_ids("user", (u.id for u in users))
        self._unique_ids("site", (s.id for s in sites))
        self._check_department_refs(departments, dept_ids, user_ids)
        self._check_user_refs(users, dept_ids, user_ids)
        self._check_accounts(users)
        self._check_parent_cycles(_first_links((d.id, d.parent) for d in departments))
        self._check_manager_cycles(_first_links((u.id, u.manager) for u in users))

        if self.problems or name is None or timezone is None:
            return None
        return Org(
            name=name,
            timezone=timezone,
            departments={d.department.id: d.department for d in departments if d.department},
            users={u.user.id: u.user for u in users if u.user},
            sites={s.site.id: s.site for s in sites if s.site},
        )

    def _compose(self, text: str) -> Node | None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = str(exc.problem or exc.context)
            if exc.context and exc.problem:
                started = ""
                if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
                    started = f" that starts on line {exc.context_mark.line + 1}"
                message = f"{exc.problem} ({exc.context}{started})"
            self.problem(mark.line + 1 if mark else None, f"malformed YAML: {message}")
            return None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, max(exc.position, 0)) + 1
            self.problem(line, f"malformed YAML: unacceptable character #x{exc.character:04X}")
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises only the two above
            self.problem(None, f"malformed YAML: {exc}")
            return None
        if root is None:
            self.problem(1, "the file is empty; expected organization, timezone, departments and users")
        return root

    # -- entries -------------------------------------------------------------------------
    def _read_department(self, node: Node, index: int) -> _DepartmentDraft:
        fields = self._mapping(node, f"department #{index}")
        if fields is None:
            return _DepartmentDraft(f"department #{index}", None, None, None, [], None)
        id_ref = self._id(fields, f"department #{index}", "a unique department id such as finance")
        subject = f"department {id_ref.value}" if id_ref else f"department #{index}"
        self._check_keys(fields, subject, DEPARTMENT_KEYS)
        name = self._text(fields, "name", subject, "the department's name", NAME_MAX_LEN, required=True)
        parent = self._ref(fields, "parent", subject, "the id of the parent department")
        leader = self._ref(fields, "leader", subject, "the user id of the department's leader")
        deputies = self._deputies(fields, subject, leader)
        department = None
        if id_ref is not None and name is not None:
            department = Department(
                id=id_ref.value,
                name=name,
                parent=parent.value if parent else None,
                leader=leader.value if leader else None,
                deputies=tuple(d.value for d in deputies),
            )
        return _DepartmentDraft(subject, id_ref, parent, leader, deputies, department)

    def _read_user(self, node: Node, index: int) -> _UserDraft:
        fields = self._mapping(node, f"user #{index}")
        if fields is None:
            return _UserDraft(f"user #{index}", None, None, None, [], None)
        id_ref = self._id(fields, f"user #{index}", "a unique user id such as u_zhang")
        subject = f"user {id_ref.value}" if id_ref else f"user #{index}"
        self._check_keys(fields, subject, USER_KEYS)
        name = self._text(fields, "name", subject, "the person's name", NAME_MAX_LEN, required=True)
        department = self._ref(
            fields, "department", subject, "the id of the person's department", required=True
        )
        title = self._text(fields, "title", subject, "the job title", NAME_MAX_LEN, required=False)
        manager = self._ref(fields, "manager", subject, "the user id of the direct manager")
        roles = self._roles(fields, subject)
        accounts = self._accounts(fields, subject)
        level = self._level(fields, subject)
        active = self._bool(fields, "active", subject, default=True)
        user = None
        if id_ref is not None and name is not None and department is not None:
            user = User(
                id=id_ref.value,
                name=name,
                department=department.value,
                title=title or "",
                manager=manager.value if manager else None,
                roles=roles,
                accounts={platform: ref.value for platform, ref in accounts},
                level=level,
                active=active,
            )
        return _UserDraft(subject, id_ref, department, manager, accounts, user)

    def _read_site(self, node: Node, index: int) -> _SiteDraft:
        fields = self._mapping(node, f"site #{index}")
        if fields is None:
            return _SiteDraft(None, None)
        id_ref = self._id(fields, f"site #{index}", "a unique site id such as hq")
        subject = f"site {id_ref.value}" if id_ref else f"site #{index}"
        self._check_keys(fields, subject, SITE_KEYS)
        name = self._text(fields, "name", subject, "the site's name", NAME_MAX_LEN, required=True)
        lat = self._number(fields, "lat", subject, "a latitude from -90 to 90", low=-90.0, high=90.0)
        lng = self._number(fields, "lng", subject, "a longitude from -180 to 180", low=-180.0, high=180.0)
        radius = self._number(fields, "radius_m", subject, "a radius in metres greater than 0", low=0.0)
        coord_system = self._coord_system(fields, subject)
        site = None
        if id_ref and name is not None and lat is not None and lng is not None and radius is not None:
            site = Site(id_ref.value, name, lat=lat, lng=lng, radius_m=radius, coord_system=coord_system)
        return _SiteDraft(id_ref, site)

    # -- cross-references ----------------------------------------------------------------
    def _unique_ids(self, kind: str, refs: Iterable[_Ref | None]) -> _Ids:
        ids = _Ids()
        for ref in refs:
            if ref is None:
                continue
            if ref.value in ids.lines:
                self.problem(
                    ref.line,
                    f"duplicate {kind} id {ref.value!r} (first on line {ids.lines[ref.value]}); "
                    "expected each id once",
                )
            else:
                ids.lines[ref.value] = ref.line
        return ids

    def _check_department_refs(
        self, departments: list[_DepartmentDraft], dept_ids: _Ids, user_ids: _Ids
    ) -> None:
        for d in departments:
            if d.parent and d.parent.value not in dept_ids:
                self.problem(
                    d.parent.line,
                    f"{d.subject}: unknown parent {d.parent.value!r}; expected the id of a department in this file",
                )
            if d.leader and d.leader.value not in user_ids:
                self.problem(
                    d.leader.line,
                    f"{d.subject}: unknown leader {d.leader.value!r}; expected the id of a user in this file",
                )
            for deputy in d.deputies:
                if deputy.value not in user_ids:
                    self.problem(
                        deputy.line,
                        f"{d.subject}: unknown deputy {deputy.value!r}; expected the id of a user in this file",
                    )

    def _check_user_refs(self, users: list[_UserDraft], dept_ids: _Ids, user_ids: _Ids) -> None:
        for u in users:
            if u.department and u.department.value not in dept_ids:
                self.problem(
                    u.department.line,
                    f"{u.subject}: unknown department {u.department.value!r}; "
                    "expected the id of a department in this file",
                )
            if u.manager and u.manager.value not in user_ids:
                self.problem(
                    u.manager.line,
                    f"{u.subject}: unknown manager {u.manager.value!r}; expected the id of a user in this file",
                )

    def _check_accounts(self, users: list[_UserDraft]) -> None:
        owners: dict[tuple[str, str], tuple[str, int]] = {}
        seen_ids: set[str] = set()
        for u in users:
            if u.id is not None:
                if u.id.value in seen_ids:
                    continue  # a duplicated person: the duplicate id is the problem to report
                seen_ids.add(u.id.value)
            for platform, account in u.accounts:
                key = (platform, account.value)
                if key in owners:
                    owner, line = owners[key]
                    self.problem(
                        account.line,
                        f"{u.subject}: {platform} account {account.value!r} already belongs to {owner} "
                        f"(line {line}); expected each account to belong to one person",
                    )
                else:
                    owners[key] = (u.subject.removeprefix("user "), account.line)

    def _check_parent_cycles(self, parents: dict[str, _Ref | None]) -> None:
        for cycle, line in _cycles(parents):
            if len(cycle) == 1:
                self.problem(
                    line, f"department {cycle[0]}: parent is itself; expected another department or no parent"
                )
            else:
                chain = " -> ".join([*cycle, cycle[0]])
                self.problem(
                    line,
                    f"department cycle {chain}; expected parents leading up to a top department with no parent",
                )

    def _check_manager_cycles(self, managers: dict[str, _Ref | None]) -> None:
        for cycle, line in _cycles(managers):
            if len(cycle) == 1:
                self.problem(
                    line, f"user {cycle[0]}: manager is themself; expected someone else or no manager"
                )
            else:
                chain = " -> ".join([*cycle, cycle[0]])
                self.problem(
                    line,
                    f"manager cycle {chain}; expected a chain of managers ending at someone with no manager",
                )

    # -- shapes --------------------------------------------------------------------------
    def _mapping(self, node: Node, subject: str, expected: str = "a mapping of key: value") -> _Fields | None:
        if not isinstance(node, MappingNode):
            self.problem(_line(node), f"{subject} is {_describe(node)}; expected {expected}")
            return None
        first_lines: dict[str, int] = {}
        duplicates: list[tuple[str, int, int]] = []
        odd_keys: list[Node] = []
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                continue
            if not _is_text(key_node):
                odd_keys.append(key_node)
            elif key_node.value in first_lines:
                duplicates.append((key_node.value, _line(key_node), first_lines[key_node.value]))
            else:
                first_lines[key_node.value] = _line(key_node)
        try:
            self._constructor.flatten_mapping(node)  # applies YAML merge keys (<<: *defaults)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.problem(mark.line + 1 if mark else _line(node), f"{subject}: {exc.problem}")
        values = {str(k.value): v for k, v in node.value if _is_text(k)}
        return _Fields(node, values, duplicates, odd_keys)

    def _check_keys(
        self, fields: _Fields, subject: str, allowed: tuple[str, ...] | None, *, what: str = "key"
    ) -> None:
        """Report keys that are not text, appear twice or (when `allowed` is given) are unknown."""
        prefix = f"{subject}: " if subject else ""
        for key_node in fields.odd_keys:
            self.problem(_line(key_node), f"{prefix}a key is {_describe(key_node)}; expected a name")
        for key, line, first in fields.duplicates:
            self.problem(
                line, f"{prefix}key {key!r} appears twice (first on line {first}); expected each key once"
            )
        if allowed is None:
            return
        for key_node, _ in fields.node.value:
            if _is_text(key_node) and key_node.value not in allowed:
                self.problem(
                    _line(key_node),
                    f"{prefix}unknown {what} {key_node.value!r}; expected one of {', '.join(allowed)}",
                )

    def _list(self, top: _Fields, key: str, item: str, *, required: bool) -> list[Node]:
        node = top.values.get(key)
        if node is None:
            if required:
                self.problem(_line(top.node), f"missing required key {key!r}; expected a list of {key}")
            return []
        if _is_null(node) or (isinstance(node, SequenceNode) and not node.value):
            if required:
                self.problem(_line(node), f"{key!r} is empty; expected at least one {item}")
            return []
        if not isinstance(node, SequenceNode):
            self.problem(_line(node), f"{key!r} is {_describe(node)}; expected a list of {key} (- id: ...)")
            return []
        return list(node.value)

    def _missing(self, fields: _Fields, key: str, prefix: str, expected: str) -> None:
        if key in fields.values:
            self.problem(_line(fields.values[key]), f"{prefix}{key!r} is empty; expected {expected}")
        else:
            self.problem(_line(fields.node), f"{prefix}missing required key {key!r}; expected {expected}")

    # -- values --------------------------------------------------------------------------
    def _construct(self, node: Node) -> Any:
        """The Python value of an int/float/bool scalar; None if its explicit tag lies (!!int abc)."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError):
            return None

    def _text(
        self, fields: _Fields, key: str, subject: str, expected: str, max_len: int, *, required: bool
    ) -> str | None:
        prefix = f"{subject}: " if subject else ""
        node = fields.get(key)
        if node is None:
            if required:
                self._missing(fields, key, prefix, expected)
            return None
        return self._text_value(node, f"{prefix}{key!r}", expected, max_len)

    def _text_value(self, node: Node, what: str, expected: str, max_len: int) -> str | None:
        if not _is_text(node):
            hint = ""
            if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT, _BOOL):
                # YAML reads 010001 as the number 4097 and no as false; quoting keeps the text.
                hint = f' (put it in quotes: "{node.value}")'
            self.problem(_line(node), f"{what} is {_describe(node)}; expected {expected}{hint}")
            return None
        value = str(node.value).strip()
        if not value:
            self.problem(_line(node), f"{what} is empty; expected {expected}")
            return None
        if len(value) > max_len:
            self.problem(_line(node), f"{what} is {len(value)} characters long; expected at most {max_len}")
            return None
        return value

    def _id(self, fields: _Fields, subject: str, expected: str) -> _Ref | None:
        value = self._text(fields, "id", subject, expected, ID_MAX_LEN, required=True)
        node = fields.get("id")
        if value is None or node is None:
            return None
        if any(c.isspace() for c in value):
            self.problem(_line(node), f"{subject}: id {value!r} contains spaces; expected {expected}")
            return None
        return _Ref(value, _line(node))

    def _ref(
        self, fields: _Fields, key: str, subject: str, expected: str, *, required: bool = False
    ) -> _Ref | None:
        value = self._text(fields, key, subject, expected, ID_MAX_LEN, required=required)
        node = fields.get(key)
        return None if value is None or node is None else _Ref(value, _line(node))

    def _deputies(self, fields: _Fields, subject: str, leader: _Ref | None) -> list[_Ref]:
        node = fields.get("deputies")
        if node is None:
            return []
        if not isinstance(node, SequenceNode):
            self.problem(
                _line(node),
                f"{subject}: 'deputies' is {_describe(node)}; expected a list of user ids such as [u_li]",
            )
            return []
        deputies: list[_Ref] = []
        for item in node.value:
            value = self._text_value(item, f"{subject}: 'deputies' item", "a user id", ID_MAX_LEN)
            if value is None:
                continue
            if leader is not None and value == leader.value:
                self.problem(
                    _line(item),
                    f"{subject}: deputy {value!r} is also the leader; expected deputies besides the leader",
                )
            elif value in (d.value for d in deputies):
                self.problem(
                    _line(item), f"{subject}: deputy {value!r} is listed twice; expected each deputy once"
                )
            else:
                deputies.append(_Ref(value, _line(item)))
        return deputies

    def _roles(self, fields: _Fields, subject: str) -> tuple[str, ...]:
        node = fields.get("roles")
        if node is None:
            return ()
        if not isinstance(node, SequenceNode):
            self.problem(
                _line(node), f"{subject}: 'roles' is {_describe(node)}; expected a list such as [seal_keeper]"
            )
            return ()
        roles: list[str] = []
        for item in node.value:
            role = self._text_value(item, f"{subject}: 'roles' item", "a role name", ROLE_MAX_LEN)
            if role is not None and role not in roles:
                roles.append(role)
        return tuple(roles)

    def _accounts(self, fields: _Fields, subject: str) -> list[tuple[str, _Ref]]:
        node = fields.get("accounts")
        if node is None:
            return []
        if not isinstance(node, MappingNode):
            self.problem(
                _line(node),
                f"{subject}: 'accounts' is {_describe(node)}; "
                'expected platform: account pairs such as {wecom: zhangwei, dingtalk: "010001"}',
            )
            return []
        accounts_fields = self._mapping(node, f"{subject}: 'accounts'")
        if accounts_fields is None:  # pragma: no cover - checked just above
            return []
        self._check_keys(accounts_fields, f"{subject}: 'accounts'", None)
        accounts: list[tuple[str, _Ref]] = []
        for platform, value_node in accounts_fields.values.items():
            if not _PLATFORM_RE.match(platform) or len(platform) > PLATFORM_MAX_LEN:
                self.problem(
                    _line(value_node),
                    f"{subject}: {platform!r} is not a platform name; expected lower-case letters such as wecom",
                )
            elif not _is_null(value_node):  # `dingtalk:` left empty: no account on that platform yet
                account = self._text_value(
                    value_node,
                    f"{subject}: {platform} account",
                    f"the {platform} account id",
                    ACCOUNT_MAX_LEN,
                )
                if account is not None:
                    accounts.append((platform, _Ref(account, _line(value_node))))
        return accounts

    def _level(self, fields: _Fields, subject: str) -> int | None:
        node = fields.get("level")
        if node is None:
            return None
        value = self._construct(node) if isinstance(node, ScalarNode) and node.tag == _INT else None
        if not isinstance(value, int) or not 0 <= value <= _LEVEL_MAX:
            self.problem(
                _line(node), f"{subject}: 'level' is {_describe(node)}; expected a whole number 0 or more"
            )
            return None
        return value

    def _bool(self, fields: _Fields, key: str, subject: str, *, default: bool) -> bool:
        node = fields.get(key)
        if node is None:
            return default
        value = self._construct(node) if isinstance(node, ScalarNode) and node.tag == _BOOL else None
        if not isinstance(value, bool):
            self.problem(_line(node), f"{subject}: {key!r} is {_describe(node)}; expected true or false")
            return default
        return value

    def _number(
        self, fields: _Fields, key: str, subject: str, expected: str, *, low: float, high: float | None = None
    ) -> float | None:
        node = fields.get(key)
        if node is None:
            self._missing(fields, key, f"{subject}: ", expected)
            return None
        value = self._construct(node) if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.problem(_line(node), f"{subject}: {key!r} is {_describe(node)}; expected {expected}")
            return None
        number = float(value)
        if math.isnan(number):
            self.problem(_line(node), f"{subject}: {key!r} is not a number (NaN); expected {expected}")
            return None
        in_range = low < number if high is None else low <= number <= high
        if not in_range or math.isinf(number):
            self.problem(
                _line(node), f"{subject}: {key!r} is {node.value}, out of range; expected {expected}"
            )
            return None
        return number

    def _coord_system(self, fields: _Fields, subject: str) -> str:
        expected = " or ".join(COORD_SYSTEMS)
        node = fields.get("coord_system")
        if node is None:
            return COORD_SYSTEMS[0]
        value = self._text_value(node, f"{subject}: 'coord_system'", expected, 16)
        if value is not None and value.lower() not in COORD_SYSTEMS:
            self.problem(_line(node), f"{subject}: 'coord_system' is {value!r}; expected {expected}")
            return COORD_SYSTEMS[0]
        return value.lower() if value else COORD_SYSTEMS[0]

    def _timezone(self, top: _Fields) -> str | None:
        expected = "an IANA time zone such as Asia/Shanghai"
        value = self._text(top, "timezone", "", expected, TIMEZONE_MAX_LEN, required=True)
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(
                _line(top.values["timezone"]),
                f"'timezone' {value!r} is not a known time zone; expected {expected}",
            )
            return None
        return value


def _first_links(pairs: Iterable[tuple[_Ref | None, _Ref | None]]) -> dict[str, _Ref | None]:
    """id -> link, keeping the first entry of a duplicated id (the duplicate is reported already)."""
    links: dict[str, _Ref | None] = {}
    for id_ref, link in pairs:
        if id_ref is not None and id_ref.value not in links:
            links[id_ref.value] = link
    return links


def _cycles(links: dict[str, _Ref | None]) -> list[tuple[list[str], int | None]]:
    """Each cycle in `id -> links[id]` once, starting at its member that comes first in the file,
    with the line of that member's link."""
    order = {node: i for i, node in enumerate(links)}
    done: set[str] = set()
    found: list[tuple[list[str], int | None]] = []
    for start in links:
        path: list[str] = []
        on_path: dict[str, int] = {}
        current: str | None = start
        while current is not None and current not in done and current not in on_path:
            on_path[current] = len(path)
            path.append(current)
            ref = links.get(current)
            current = ref.value if ref else None
        if current is not None and current in on_path:
            cycle = path[on_path[current] :]
            first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
            cycle = cycle[first:] + cycle[:first]
            ref = links[cycle[0]]
            found.append((cycle, ref.line if ref else None))
        done.update(path)
    return found
