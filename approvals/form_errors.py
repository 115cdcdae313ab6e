"""The refusal of a filled-in form: every field's problem at once, in words the user reads.

Kept apart from `approvals.errors` so the form validator has no dependency on the engine;
`approvals.errors` re-exports `FormInvalid`. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field. `label` is None for a field the template does not have."""

    key: str
    label: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.label or self.key}: {self.message}"


class FormInvalid(Exception):
    """The form was refused; `fields` lists every problem, in the template's field order."""

    code = "form_invalid"

    def __init__(self, fields: list[FieldProblem]) -> None:
        super().__init__("; ".join(str(p) for p in fields))
        self.fields = fields
        self.message = "表单有误: " + "; ".join(str(p) for p in fields)
