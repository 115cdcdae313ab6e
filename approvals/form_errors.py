"""The refusal of a filled-in form: every field's problem at once.

Kept apart from `approvals.errors` so the form validator has no dependency on the engine. A
`DomainError` of category invalid whose context lists the fields, so the edges show it like any
other refusal (`notifications.messages` says the whole refusal in one line). No I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from org.errors import Category, DomainError


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field. `label` is None for a field the template does not have."""

    key: str
    label: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.label or self.key}: {self.message}"


class FormInvalid(DomainError):
    """The form was refused; `fields` lists every problem, in the template's field order."""

    code = "form_invalid"
    category = Category.INVALID

    def __init__(self, fields: list[FieldProblem]) -> None:
        super().__init__(fields=[asdict(p) for p in fields])
        self.fields = fields

    def __str__(self) -> str:
        """One line for chat and logs: `label: problem; ...`."""
        return "; ".join(str(p) for p in self.fields)
