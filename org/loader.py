"""Reads and validates an organisation file (YAML) into an `org.model.Org`.

The file has `organization`, `timezone`, `departments`, `users` and optional `sites`
(bot/data/demo_org.yaml is the reference). It is read with `org.yaml_lines` (every scalar as
written, with its line) and each entry is validated by a pydantic model whose validators word
what is wrong (`'level' is the text 'high'; expected a whole number 0 or more`); the rules
across entries (unique ids, references, one owner per account, no cycles) then run over the ids
and references as written. Every problem is collected with its line and reported together in
one `OrgFileError`; an `Org` comes back only when the whole file is valid, so nothing
half-checked ever reaches storage. Apart from reading the file this module does no I/O: it must
not touch the database (`storage.org_repo` writes the snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from org.file_schema import OrgFile, Ref, account_refs, deputy_refs, describe, ref_id, written_ref
from org.model import Org
from org.yaml_lines import LinedList, LinedMap, YamlProblem, YamlSyntaxError, load_lined

_KINDS = {"departments": "department", "users": "user", "sites": "site"}


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
    org, problems = _read(text)
    if org is None or problems:
        raise OrgFileError(source, sorted(problems, key=lambda p: p.line or 0))
    return org


# -- reading -----------------------------------------------------------------------------
def _read(text: str) -> tuple[Org | None, list[OrgProblem]]:
    try:
        document = load_lined(text, scalars=True, later_wins=True)
    except YamlSyntaxError as exc:
        message = exc.problem
        if exc.context:
            started = ""
            if exc.context_line is not None and exc.context_line != exc.line:
                started = f" that starts on line {exc.context_line}"
            message = f"{exc.problem} ({exc.context}{started})"
        return None, [OrgProblem(exc.line, f"malformed YAML: {message}")]
    data = document.data
    expected = "organization, timezone, departments and users"
    if data is None:
        return None, [OrgProblem(1, f"the file is empty; expected {expected}")]
    if not isinstance(data, LinedMap):
        return None, [
            OrgProblem(getattr(data, "line", 1), f"the file is {describe(data)}; expected {expected}")
        ]
    problems = [_yaml_problem(data, p) for p in document.problems if _read_here(data, p.path)]
    org, found = _check(data)
    return org, problems + found


def check_org_data(data: LinedMap, source: str = "<data>") -> Org:
    """Validate an org-file document already in lined form (built, not read: a directory
    sync's) by the same rules as a file, or raise OrgFileError naming every problem."""
    org, problems = _check(data)
    if org is None or problems:
        raise OrgFileError(source, sorted(problems, key=lambda p: p.line or 0))
    return org


def _check(data: LinedMap) -> tuple[Org | None, list[OrgProblem]]:
    problems: list[OrgProblem] = []
    org = None
    try:
        org = OrgFile.model_validate(data).to_org()
    except ValidationError as exc:
        problems += [_problem(data, e) for e in exc.errors()]
    problems += _Links(data).problems
    return org, problems


def _entry(data: LinedMap, loc: Sequence[str | int]) -> tuple[str, Any] | None:
    """(subject, item) of the department, user or site at the start of `loc`, if any."""
    if len(loc) < 2 or loc[0] not in _KINDS or not isinstance(loc[1], int):
        return None
    item = data[str(loc[0])][loc[1]]
    ref = _id(item) if isinstance(item, LinedMap) else None
    kind = _KINDS[str(loc[0])]
    return (f"{kind} {ref.value}" if ref else f"{kind} #{loc[1] + 1}"), item


def _id(item: LinedMap) -> Ref | None:
    try:
        return ref_id(item.get("id"), "")
    except ValueError:
        return None


def _problem(data: LinedMap, error: ErrorDetails) -> OrgProblem:
    """One validation error as `subject: message` on its line (its mapping's when it has none)."""
    ctx = error.get("ctx") or {}
    entry = _entry(data, error["loc"])
    subject, item = entry if entry is not None else ("", data)
    line = ctx.get("line") or getattr(item, "line", None)
    if ctx.get("whole"):
        return OrgProblem(line, f"{subject} {error['msg']}")
    return OrgProblem(line, f"{subject}: {error['msg']}" if subject else error["msg"])


def _read_here(data: LinedMap, path: Sequence[str | int]) -> bool:
    """Whether `path` is a mapping this module reads: the file, an entry or an entry's accounts."""
    if not path:
        return True
    return _entry(data, path) is not None and (len(path) == 2 or tuple(path[2:]) == ("accounts",))


def _yaml_problem(data: LinedMap, problem: YamlProblem) -> OrgProblem:
    entry = _entry(data, problem.path)
    subject = entry[0] if entry is not None else ""
    if len(problem.path) > 2:  # a mapping inside an entry: its `accounts`
        subject = f"{subject}: {problem.path[2]!r}"
    prefix = f"{subject}: " if subject else ""
    if problem.kind == "duplicate":
        message = (
            f"key {problem.key!r} appears twice (first on line {problem.first_line}); expected each key once"
        )
    elif problem.kind == "key":
        message = f"a key is {describe(problem.found)}; expected a name"
    else:
        message = problem.detail
    return OrgProblem(problem.line, f"{prefix}{message}")


# -- rules across entries, over the ids and references as written ----------------------------
@dataclass
class _DepartmentDraft:
    subject: str
    id: Ref | None
    parent: Ref | None
    leader: Ref | None
    deputies: list[Ref]


@dataclass
class _UserDraft:
    subject: str
    id: Ref | None
    department: Ref | None
    manager: Ref | None
    accounts: list[tuple[str, Ref]]


@dataclass
class _Ids:
    """First line of each id, for duplicate and reference checks."""

    lines: dict[str, int] = field(default_factory=dict)

    def __contains__(self, value: object) -> bool:
        return value in self.lines


def _items(data: LinedMap, key: str) -> list[tuple[str, LinedMap]]:
    """(subject, item) of each entry of a list that is a mapping."""
    items = data.get(key)
    out: list[tuple[str, LinedMap]] = []
    for i in range(len(items) if isinstance(items, LinedList) else 0):
        entry = _entry(data, (key, i))
        if entry is not None and isinstance(entry[1], LinedMap):
            out.append((entry[0], entry[1]))
    return out


def _department(subject: str, item: LinedMap) -> _DepartmentDraft:
    leader = written_ref(item.get("leader"))
    deputies = deputy_refs(item.get("deputies"), leader)[0]
    return _DepartmentDraft(subject, _id(item), written_ref(item.get("parent")), leader, deputies)


def _user(subject: str, item: LinedMap) -> _UserDraft:
    return _UserDraft(
        subject,
        _id(item),
        written_ref(item.get("department")),
        written_ref(item.get("manager")),
        account_refs(item.get("accounts"))[0],
    )


class _Links:
    """Unique ids, references that resolve, one owner per account, no cycles."""

    def __init__(self, data: LinedMap) -> None:
        self.problems: list[OrgProblem] = []
        departments = [_department(subject, item) for subject, item in _items(data, "departments")]
        users = [_user(subject, item) for subject, item in _items(data, "users")]
        dept_ids = self._unique_ids("department", (d.id for d in departments))
        user_ids = self._unique_ids("user", (u.id for u in users))
        self._unique_ids("site", (_id(item) for _, item in _items(data, "sites")))
        self._check_department_refs(departments, dept_ids, user_ids)
        self._check_user_refs(users, dept_ids, user_ids)
        self._check_accounts(users)
        self._check_parent_cycles(_first_links((d.id, d.parent) for d in departments))
        self._check_manager_cycles(_first_links((u.id, u.manager) for u in users))

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(OrgProblem(line, message))

    def _unique_ids(self, kind: str, refs: Iterable[Ref | None]) -> _Ids:
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

    def _check_parent_cycles(self, parents: dict[str, Ref | None]) -> None:
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

    def _check_manager_cycles(self, managers: dict[str, Ref | None]) -> None:
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


def _first_links(pairs: Iterable[tuple[Ref | None, Ref | None]]) -> dict[str, Ref | None]:
    """id -> link, keeping the first entry of a duplicated id (the duplicate is reported already)."""
    links: dict[str, Ref | None] = {}
    for id_ref, link in pairs:
        if id_ref is not None and id_ref.value not in links:
            links[id_ref.value] = link
    return links


def _cycles(links: dict[str, Ref | None]) -> list[tuple[list[str], int | None]]:
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
