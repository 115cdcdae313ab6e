"""Polls 调查: whether a ballot may be cast, what the votes add up to, who chose what.

- `check_ballot` refuses a ballot that does not fit the poll (an unknown question, a second
  choice on a single-choice question, an option that is not there, free text where none is
  asked for or longer than `TEXT_MAX`, nothing answered) or that comes after the closing time.
  It returns the ballot normalised (choices sorted, each once; text stripped).
- `tally` counts every voter once per question: when a person voted several times (a changed
  vote), the last one wins. Percentages are of the people who answered that question, so on a
  multiple-choice question they may add up to more than 100.
- `choices_by_person` (who chose what) exists only for named polls: an anonymous poll raises
  `PollAnonymous` whoever asks, the author included.

Pure: no I/O, no clock; `now` comes in. A refusal changes nothing and is a `PollRefused`
carrying its reason (the words are in `notifications.messages`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from org.errors import Category, DomainError

TEXT_MAX = 500  # characters of a free-text answer


class PollRefused(DomainError):
    """A ballot that cannot be counted as given (the poll's rules, or it has closed)."""

    code = "poll_refused"
    category = Category.INVALID


class PollClosed(PollRefused):
    code = "poll_closed"
    category = Category.CONFLICT


class PollAnonymous(PollRefused):
    """Who chose what was asked of an anonymous poll."""

    code = "poll_anonymous"
    category = Category.FORBIDDEN


class QuestionLike(Protocol):
    """What a question must offer (`notices.model.Question`)."""

    @property
    def id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def multiple(self) -> bool: ...
    @property
    def options(self) -> tuple[str, ...]: ...
    @property
    def free_text(self) -> bool: ...


class PollLike(Protocol):
    """What a poll must offer (`notices.model.Poll`)."""

    @property
    def questions(self) -> Sequence[QuestionLike]: ...
    @property
    def anonymous(self) -> bool: ...
    @property
    def closes_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Answer:
    """One person's answer to one question: option indexes (0-based) and optional free text."""

    choices: tuple[int, ...] = ()
    text: str | None = None


Ballot = Mapping[str, Answer]  # question id -> answer


@dataclass(frozen=True)
class Vote:
    """An answer as stored: who, to which question, when."""

    person: str
    question_id: str
    choices: tuple[int, ...]
    text: str | None
    at: datetime


@dataclass(frozen=True)
class OptionCount:
    index: int
    label: str
    count: int
    percent: float  # of the people who answered the question, 0-100, one decimal


@dataclass(frozen=True)
class QuestionResult:
    question_id: str
    text: str
    multiple: bool
    voters: int  # people who answered this question
    options: tuple[OptionCount, ...]
    texts: tuple[str, ...]  # the free-text answers, in the order given, without names


@dataclass(frozen=True)
class PollResults:
    voters: int  # people who answered at least one question
    questions: tuple[QuestionResult, ...]


@dataclass(frozen=True)
class PersonChoice:
    """What one person chose on one question (named polls only)."""

    person: str
    question_id: str
    labels: tuple[str, ...]
    text: str | None


def is_closed(poll: PollLike, now: datetime) -> bool:
    return poll.closes_at is not None and now >= poll.closes_at


def _question(poll: PollLike, question_id: str) -> QuestionLike:
    for q in poll.questions:
        if q.id == question_id:
            return q
    raise PollRefused("poll_refused.unknown_question", question_id=question_id)


def _check_answer(q: QuestionLike, answer: Answer) -> Answer:
    choices = tuple(sorted(set(answer.choices)))
    if len(choices) != len(answer.choices):
        raise PollRefused("poll_refused.repeated_option", shown={"question": q.text})
    for index in choices:
        if not 0 <= index < len(q.options):
            raise PollRefused("poll_refused.unknown_option", option=index, shown={"question": q.text})
    if len(choices) > 1 and not q.multiple:
        raise PollRefused("poll_refused.single_choice", shown={"question": q.text})
    text = (answer.text or "").strip() or None
    if text is not None and not q.free_text:
        raise PollRefused("poll_refused.no_free_text", shown={"question": q.text})
    if text is not None and len(text) > TEXT_MAX:
        raise PollRefused("poll_refused.text_too_long", limit=TEXT_MAX, shown={"question": q.text})
    if not choices and text is None:
        raise PollRefused("poll_refused.unanswered", shown={"question": q.text})
    return Answer(choices, text)


def check_ballot(poll: PollLike, ballot: Ballot, *, now: datetime) -> dict[str, Answer]:
    """The ballot, normalised, if it may be counted; every question must be answered."""
    if is_closed(poll, now):
        raise PollClosed("poll_closed", shown={"closes_at": poll.closes_at})
    for question_id in ballot:
        _question(poll, question_id)
    checked: dict[str, Answer] = {}
    for q in poll.questions:
        answer = ballot.get(q.id)
        if answer is None:
            raise PollRefused("poll_refused.unanswered", shown={"question": q.text})
        checked[q.id] = _check_answer(q, answer)
    return checked


def latest_votes(votes: Iterable[Vote]) -> dict[tuple[str, str], Vote]:
    """(person, question) -> that person's last vote on that question: a changed vote counts once."""
    latest: dict[tuple[str, str], Vote] = {}
    for v in sorted(votes, key=lambda v: v.at):
        latest[(v.person, v.question_id)] = v
    return latest


def _percent(count: int, voters: int) -> float:
    return round(100.0 * count / voters, 1) if voters else 0.0


def tally(poll: PollLike, votes: Iterable[Vote]) -> PollResults:
    """Counts and percentages per option of every question, each voter once."""
    latest = latest_votes(votes)
    results = []
    everyone: set[str] = set()
    for q in poll.questions:
        mine = [v for (_, qid), v in latest.items() if qid == q.id]
        counts = [0] * len(q.options)
        for v in mine:
            for index in set(v.choices):
                if 0 <= index < len(counts):
                    counts[index] += 1
        everyone.update(v.person for v in mine)
        results.append(
            QuestionResult(
                question_id=q.id,
                text=q.text,
                multiple=q.multiple,
                voters=len(mine),
                options=tuple(
                    OptionCount(i, label, counts[i], _percent(counts[i], len(mine)))
                    for i, label in enumerate(q.options)
                ),
                texts=_texts(poll, mine),
            )
        )
    return PollResults(voters=len(everyone), questions=tuple(results))


def _texts(poll: PollLike, votes: Iterable[Vote]) -> tuple[str, ...]:
    """The free-text answers: in voting order, but an anonymous poll's in an order of their own
    (the author's trail says who voted when, so voting order would name each text's writer)."""
    texts = [v.text for v in sorted(votes, key=lambda v: v.at) if v.text]
    return tuple(sorted(texts) if poll.anonymous else texts)


def choices_by_person(poll: PollLike, votes: Iterable[Vote]) -> list[PersonChoice]:
    """Who chose what, question by question (named polls only; anonymous ones refuse)."""
    if poll.anonymous:
        raise PollAnonymous("poll_anonymous")
    latest = latest_votes(votes)
    order = {q.id: i for i, q in enumerate(poll.questions)}
    out = []
    for (person, qid), v in sorted(latest.items(), key=lambda kv: (order.get(kv[0][1], 99), kv[0][0])):
        q = next((q for q in poll.questions if q.id == qid), None)
        if q is None:
            continue
        labels = tuple(q.options[i] for i in v.choices if 0 <= i < len(q.options))
        out.append(PersonChoice(person, qid, labels, v.text))
    return out


def has_voted(person: str, votes: Iterable[Vote]) -> bool:
    return any(v.person == person for v in votes)
