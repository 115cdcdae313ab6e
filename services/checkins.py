"""The check-in service: load → `checkins.core` → one transaction (check-in, outbox, timers).

Every way a check-in arrives (a chat location, the signed check-in page, the REST API) and
every timer (the missing-check-in ladder, the daily summary) goes through here. Both are timer
kinds on the one timer table (`deadlines.timer_kinds`), registered when the service is built:
a trip gets the timers of its ladder when it is opened, a check-in cancels those of its kind,
and each rung re-checks at firing that it is still due; the summary is one timer per day. It decides no
rule itself: where a check-in belongs, whether it is on site, how far it can be trusted, which
rung is due and whether a 补卡 fits the quota are the core's. It also plugs into the approval
workflow: a hook that opens trips (and sends the trip card) when an outing or vehicle dispatch
is approved, cancels them (timers, 已取消 card, travellers told) when it is withdrawn, revoked or
terminated, and records the made-up check-in when a 补卡 is approved, and a submit validator
that refuses a 补卡 over the monthly quota (serialised per person and month).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.definitions import Template
from approvals.engine import Outcome
from approvals.errors import ActionNotAllowed
from approvals.model import Request, RequestStatus
from checkins import core
from checkins.core import (
    FIX_TEMPLATE,
    TRIP_TEMPLATES,
    Checkin,
    CheckinKind,
    Fix,
    Problem,
    Rung,
    Trip,
    TripStatus,
)
from checkins.errors import AlreadyCheckedIn, FixQuotaExceeded, NotYourTrip, TripNotApproved, TripNotFound
from checkins.geo import map_url
from checkins.links import LinkClaims, read_link, sign_link
from deadlines import timers
from deadlines.slots import next_daily, slot_key
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind, TimerStatus
from notifications import checkin_wording as words
from org.model import Org, User
from storage import approval_store
from storage import checkin_store as store
from storage.approval_models import OutboxRow
from storage.db import Database

logger = logging.getLogger(__name__)

CARD_KIND = "checkin_card"  # outbox kind of a trip card (fields + 到达打卡 / 离开打卡 buttons)
CANCELLED_CARD_KIND = "checkin_card_cancelled"  # the trip's card, updated to 已取消, and a note
TRIP_ENDING_STATUSES = frozenset({RequestStatus.WITHDRAWN, RequestStatus.TERMINATED})
TRIP_KINDS = (CheckinKind.ARRIVAL, CheckinKind.DEPARTURE)
TEAM_LINK_TTL = timedelta(hours=24)


class FixQuotaRefused(ActionNotAllowed):
    """A 补卡 over the monthly quota, refused at submission (an approval-layer error, so the API,
    the console and chat show its message like any other refusal)."""

    code = "checkin_fix_quota"


@dataclass(frozen=True)
class CheckinConfig:
    tz: ZoneInfo
    public_url: str
    link_secret: str | None = None  # OABOT_LINK_SECRET; None: one stored per database
    link_ttl: timedelta = timedelta(hours=2)
    grace: timedelta = core.DEFAULT_GRACE
    fix_quota: int = core.DEFAULT_FIX_QUOTA
    free_roles: tuple[str, ...] = (core.FREE_FIELD_ROLE,)
    summary_at: time | None = None  # the managers' daily summary (organisation time); None: off


@dataclass
class Recorded:
    """A check-in as recorded (or, for a retried delivery, as recorded the first time)."""

    id: int
    checkin: Checkin
    created: bool
    reply: str
    managers_told: list[str] = field(default_factory=list)


def managers_of(org: Org, user_id: str) -> list[str]:
    """Who is told about someone's check-ins: their manager, else their department's heads."""
    manager = org.manager_of(user_id)
    if manager and org.is_active(manager):
        return [manager]
    return [h for h in org.heads_of_user_department(user_id) if h != user_id]


def team_of(org: Org, manager: str) -> list[str]:
    """The people a manager sees: direct reports and members of departments they head."""
    team = {u.id for u in org.users.values() if u.active and u.manager == manager}
    for dept in org.departments.values():
        if manager in dept.heads:
            team.update(org.members_of(dept.id, include_sub=True))
    team.discard(manager)
    return sorted(team)


def link_use_key(trip_id: str, kind: str) -> str:
    """The dedupe key of the one check-in a trip's links may record for `kind`."""
    return f"link:{trip_id}:{kind}"


def _rung_key(trip_id: str, kind: CheckinKind, rung: Rung) -> str:
    """The timer key of one rung of a trip's missing-check-in ladder."""
    return f"checkin:{trip_id}:{kind.value}:{rung.value}"


class CheckinService:
    def __init__(
        self,
        db: Database,
        org: Callable[[], Awaitable[Org]],
        config: CheckinConfig,
        now: Callable[[], datetime],
        kinds: TimerKinds,
    ) -> None:
        self.db = db
        self._org = org  # the shared directory's cached snapshot
        self.config = config
        self.now = now
        self._stored_secret: bytes | None = None
        kinds.register(TimerKind.CHECKIN_MISSING, self._fire_missing_rung, seed=self.schedule_watched_trips)
        kinds.register(TimerKind.CHECKIN_SUMMARY, self._fire_summary, next_slot=self.schedule_next_summary)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz

    async def org(self) -> Org:
        return await self._org()

    # -- links ---------------------------------------------------------------------------------------
    async def secret(self, session: AsyncSession) -> bytes:
        if self.config.link_secret:
            return self.config.link_secret.encode()
        if self._stored_secret is None:
            self._stored_secret = await store.stored_link_secret(session, now=self.now())
        return self._stored_secret

    def link(self, secret: bytes, *, user: str, trip: str, kind: str, expires_at: datetime) -> str:
        token = sign_link(secret, LinkClaims(user=user, trip=trip, kind=kind, expires_at=expires_at))
        path = "/checkins/team/" if kind == "team" else "/checkin/"
        return f"{self.config.public_url}{path}{token}"

    def trip_link_expiry(self, trip: Trip, now: datetime) -> datetime:
        """Trip links work until the link TTL after the trip's end (or after now, if it is over)."""
        return max(now, trip.ends_at) + self.config.link_ttl

    def _card(self, trip: Trip, secret: bytes, now: datetime, heading: str | None = None) -> dict[str, Any]:
        expires = self.trip_link_expiry(trip, now)
        card = words.trip_card(
            trip,
            self.tz,
            arrival_url=self.link(
                secret, user=trip.traveller, trip=trip.id, kind="arrival", expires_at=expires
            ),
            departure_url=self.link(
                secret, user=trip.traveller, trip=trip.id, kind="departure", expires_at=expires
            ),
            heading=heading,
        )
        return {
            "text": card.text,
            "request_id": trip.request_id,
            "trip_id": trip.id,
            "card": {
                "title": card.title,
                "subtitle": trip.title,
                "fields": [{"label": k, "value": v} for k, v in card.fields],
                "buttons": [{"label": b.label, "url": b.url, "style": b.style} for b in card.buttons],
                "expires_at": expires.isoformat(),
            },
        }

    @staticmethod
    def _queue(
        session: AsyncSession,
        *,
        kind: str,
        recipient: str,
        payload: dict[str, Any],
        now: datetime,
        request_id: str | None = None,
    ) -> None:
        session.add(
            OutboxRow.due_now(kind=kind, recipient=recipient, request_id=request_id, payload=payload, now=now)
        )

    # -- the workflow hook and validator ---------------------------------------------------------------
    async def on_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """Runs inside the transaction of every approval state change."""
        req = out.request
        if template.key in TRIP_TEMPLATES and req.status in TRIP_ENDING_STATUSES:
            await self._cancel_trips(session, req, org, now)
            return
        if req.status != RequestStatus.APPROVED or not any(e.kind == "request_approved" for e in out.events):
            return
        if template.key in TRIP_TEMPLATES:
            await self._open_trips(session, req, org, now)
        elif template.key == FIX_TEMPLATE:
            await self._record_made_up(session, req, org, now)

    async def _open_trips(self, session: AsyncSession, req: Request, org: Org, now: datetime) -> None:
        trips = core.trips_for_request(
            request_id=req.id,
            template_key=req.template_key,
            title=req.title,
            form=req.form,
            initiator=req.initiator,
            sites=org.sites,
            now=now,
        )
        opened = await store.insert_trips(session, trips=trips)
        if not opened:
            return
        secret = await self.secret(session)
        for trip in opened:
            await self._schedule_rungs(session, trip, now)
            self._queue(
                session,
                kind=CARD_KIND,
                recipient=trip.traveller,
                payload=self._card(trip, secret, now),
                now=now,
                request_id=req.id,
            )
            logger.info(
                "trip opened", extra={"trip_id": trip.id, "request_id": req.id, "user": trip.traveller}
            )

    async def _cancel_trips(self, session: AsyncSession, req: Request, org: Org, now: datetime) -> None:
        """The outing or dispatch was withdrawn, revoked or terminated: its trips are cancelled in
        the same transaction, their ladders stop (timers cancelled), and each traveller's trip
        card is updated to 已取消 with a note naming the companions whose trips went too."""
        cancelled = await store.cancel_trips(session, request_id=req.id)
        for trip in cancelled:
            keys = [_rung_key(trip.id, kind, rung) for kind in TRIP_KINDS for rung in Rung]
            await timers.cancel_keys(session, keys=keys, now=now)
            companions = [org.display_name(t.traveller) for t in cancelled if t.traveller != trip.traveller]
            text = words.trip_cancelled_text(trip, self.tz, how=req.status.value, companions=companions)
            self._queue(
                session,
                kind=CANCELLED_CARD_KIND,
                recipient=trip.traveller,
                payload={
                    "text": text,
                    "request_id": req.id,
                    "trip_id": trip.id,
                    "outcome": words.TRIP_CANCELLED,
                },
                now=now,
                request_id=req.id,
            )
            logger.info(
                "trip cancelled",
                extra={"trip_id": trip.id, "request_id": req.id, "status": req.status.value},
            )

    async def _record_made_up(self, session: AsyncSession, req: Request, org: Org, now: datetime) -> None:
        if await store.has_made_up(session, fix_request_id=req.id):
            return
        missed_at = datetime.fromisoformat(str(req.form["missed_at"]))
        start, end = self._day_bounds(missed_at.astimezone(self.tz).date())
        trips = await store.trips_overlapping(session, start=start, end=end, users=[req.initiator])
        trip = core.trip_for_missed(trips, missed_at, self.tz)
        checkin = core.made_up_checkin(
            request_id=req.id, initiator=req.initiator, form=req.form, trip=trip, sites=org.sites, now=now
        )
        _, _, created = await store.insert_checkin(session, checkin=checkin, dedupe_key=f"fix:{req.id}")
        if created:
            await self._cancel_rungs(session, checkin, now)
            text = words.made_up_text(checkin, trip, self.tz)
            self._queue(
                session,
                kind="text",
                recipient=req.initiator,
                payload={"text": text, "request_id": req.id},
                now=now,
                request_id=req.id,
            )
            logger.info(
                "made-up check-in recorded",
                extra={"request_id": req.id, "user": req.initiator, "trip_id": checkin.trip_id},
            )

    async def check_submission(
        self, session: AsyncSession, request: Request, template: Template, org: Org, now: datetime
    ) -> None:
        """Refuses a 补卡 over the monthly quota (runs in the submit transaction, before any write)."""
        if template.key != FIX_TEMPLATE or "missed_at" not in request.form:
            return
        missed_at = datetime.fromisoformat(str(request.form["missed_at"]))
        month = core.month_of(missed_at, self.tz)
        await store.lock_fix_quota(session, initiator=request.initiator, month=month)
        used = await store.fixes_in_month(
            session, initiator=request.initiator, month=month, tz=self.tz, exclude=request.id
        )
        try:
            core.check_fix_quota(used=used, quota=self.config.fix_quota, month=month)
        except FixQuotaExceeded as exc:
            logger.info("checkin fix refused over quota", extra={"user": request.initiator, "used": used})
            raise FixQuotaRefused(exc.reason, shown=exc.params, **exc.context) from exc

    # -- recording -------------------------------------------------------------------------------------
    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(0), tzinfo=self.tz)
        return start, start + timedelta(days=1)

    async def _save(
        self, session: AsyncSession, checkin: Checkin, dedupe_key: str | None, org: Org, now: datetime
    ) -> Recorded:
        row_id, stored, created = await store.insert_checkin(session, checkin=checkin, dedupe_key=dedupe_key)
        if created:
            await self._cancel_rungs(session, stored, now)
        told: list[str] = []
        if created and stored.tell_manager:
            text = words.off_site_notice(stored, org.display_name(stored.user), self.tz)
            secret = await self.secret(session)
            for manager in managers_of(org, stored.user):
                link = self.link(secret, user=manager, trip="*", kind="team", expires_at=now + TEAM_LINK_TTL)
                self._queue(
                    session,
                    kind="text",
                    recipient=manager,
                    payload={"text": f"{text}\n查看：{link}", "request_id": stored.request_id},
                    now=now,
                    request_id=stored.request_id,
                )
                told.append(manager)
        if created:
            logger.info(
                "check-in recorded",
                extra={
                    "checkin_id": row_id,
                    "user": stored.user,
                    "trip_id": stored.trip_id,
                    "kind": stored.kind.value,
                    "verdict": stored.verdict.value,
                    "trust": stored.trust.score,
                },
            )
        reply = words.checkin_reply(
            stored, self.tz, manager_told=bool(told) or (not created and stored.tell_manager)
        )
        return Recorded(id=row_id, checkin=stored, created=created, reply=reply, managers_told=told)

    async def _judge_on_trip(
        self, session: AsyncSession, trip: Trip, kind: CheckinKind, fix: Fix, user: str
    ) -> Checkin:
        previous = await store.previous_fix(session, user=user)
        spot = await store.same_spot(session, user=user, lat=fix.lat, lng=fix.lng)
        return core.judge_trip_checkin(
            trip, kind, fix, user=user, previous=previous, same_spot=spot, tz=self.tz
        )

    async def record_location(self, user: User, fix: Fix, *, dedupe_key: str | None) -> Recorded:
        """A location with no trip named (chat, or the API without one): today's trip if the
        person has one (arrival, then departure), else a free check-in if their role allows it."""
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            start, end = self._day_bounds(now.astimezone(self.tz).date())
            trip = core.pick_trip(
                await store.trips_overlapping(s, start=start, end=end, users=[user.id]), now, self.tz
            )
            if trip is not None:
                kind = core.infer_kind(await store.trip_history(s, trip_id=trip.id), now)
                checkin = await self._judge_on_trip(s, trip, kind, fix, user.id)
            else:
                checkin = core.judge_free_checkin(
                    fix,
                    user=user.id,
                    roles=user.roles,
                    free_roles=self.config.free_roles,
                    sites=org.sites.values(),
                    previous=await store.previous_fix(s, user=user.id),
                    same_spot=await store.same_spot(s, user=user.id, lat=fix.lat, lng=fix.lng),
                    tz=self.tz,
                )
            return await self._save(s, checkin, dedupe_key, org, now)

    async def read_link(self, token: str) -> LinkClaims:
        async with self.db.transaction() as s:
            secret = await self.secret(s)
        return read_link(secret, token, now=self.now(), tz=self.tz)

    async def trip_for_link(self, token: str) -> tuple[LinkClaims, Trip]:
        """The claims and trip of a check-in link, or the error saying why it cannot be used."""
        claims = await self.read_link(token)
        if claims.kind not in ("arrival", "departure"):
            raise NotYourTrip("not_your_trip.not_checkin_link")
        async with self.db.session() as s:
            trip = await store.load_trip(s, trip_id=claims.trip)
        if trip is None:
            raise TripNotFound("trip_not_found.link", trip_id=claims.trip)
        if trip.traveller != claims.user:
            raise NotYourTrip("not_your_trip.link_traveller", trip_id=trip.id)
        if trip.status != TripStatus.ACTIVE:
            raise TripNotApproved("trip_not_approved.cancelled", trip_id=trip.id, status=trip.status.value)
        org = await self.org()
        if not org.is_active(claims.user):
            raise NotYourTrip("not_your_trip.inactive", user=claims.user)
        return claims, trip

    def _already(self, checkin: Checkin) -> AlreadyCheckedIn:
        return AlreadyCheckedIn(
            trip_id=checkin.trip_id,
            kind=checkin.kind.value,
            at=checkin.at.isoformat(),
            shown={"at_local": checkin.at.astimezone(self.tz)},
        )

    async def link_unused(self, claims: LinkClaims) -> None:
        """Raise AlreadyCheckedIn when this link's check-in (trip and kind) is already recorded."""
        async with self.db.session() as s:
            done = await store.checkin_by_key(s, dedupe_key=link_use_key(claims.trip, claims.kind))
        if done is not None:
            raise self._already(done)

    async def record_via_link(
        self, token: str, fix: Fix, *, nonce: str | None, viewer: str | None = None
    ) -> Recorded:
        """The check-in page: the link names the person, the trip and arrival or departure.

        One arrival and one departure per trip through its links, however many links were
        sent: the check-in is stored under the key `link:<trip>:<kind>` (unique, so two
        submissions racing each other store one), and any later use, a retried submission
        (`nonce`) included, is refused with AlreadyCheckedIn saying when it was recorded."""
        claims, trip = await self.trip_for_link(token)
        if viewer is not None and viewer != claims.user:
            raise NotYourTrip("not_your_trip.link", trip_id=trip.id)
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            checkin = await self._judge_on_trip(s, trip, CheckinKind(claims.kind), fix, claims.user)
            recorded = await self._save(s, checkin, link_use_key(trip.id, claims.kind), org, now)
        if not recorded.created:
            logger.info(
                "check-in link used again; nothing recorded",
                extra={"trip_id": trip.id, "kind": claims.kind, "user": claims.user, "nonce": nonce},
            )
            raise self._already(recorded.checkin)
        return recorded

    async def resolve_trip(self, *, user: str, trip_id: str | None, request_id: str | None) -> Trip | None:
        """The trip an API check-in names (by trip id or by its request), checked to be the user's
        and approved; None when it names none."""
        if trip_id is None and request_id is None:
            return None
        async with self.db.session() as s:
            if trip_id is not None:
                trip = await store.load_trip(s, trip_id=trip_id)
                if trip is None:
                    raise TripNotFound(trip_id=trip_id)
            else:
                assert request_id is not None
                loaded = await approval_store.load_request(s, request_id=request_id)
                if loaded is None:
                    raise TripNotFound("trip_not_found.request", request_id=request_id)
                req = loaded.request
                if req.template_key not in TRIP_TEMPLATES:
                    raise TripNotFound("trip_not_found.not_trip", request_id=request_id)
                if req.status != RequestStatus.APPROVED:
                    raise TripNotApproved(
                        request_id=request_id,
                        status=req.status.value,
                    )
                trips = [
                    t for t in await store.trips_of_request(s, request_id=request_id) if t.traveller == user
                ]
                if not trips:
                    raise NotYourTrip("not_your_trip.request", request_id=request_id, user=user)
                trip = trips[0]
        if trip.traveller != user:
            raise NotYourTrip("not_your_trip.other", trip_id=trip.id, user=user)
        return trip

    async def record_via_api(
        self, user: User, fix: Fix, *, trip: Trip | None, kind: CheckinKind | None, dedupe_key: str | None
    ) -> Recorded:
        if trip is None:
            return await self.record_location(user, fix, dedupe_key=dedupe_key)
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            if kind is None or kind == CheckinKind.FREE:
                kind = core.infer_kind(await store.trip_history(s, trip_id=trip.id), now)
            checkin = await self._judge_on_trip(s, trip, kind, fix, user.id)
            return await self._save(s, checkin, dedupe_key, org, now)

    async def active_trip_today(self, user_id: str) -> Trip | None:
        """The person's active trip today (the one 打卡 and a shared location would use)."""
        now = self.now()
        start, end = self._day_bounds(now.astimezone(self.tz).date())
        async with self.db.session() as s:
            trips = await store.trips_overlapping(s, start=start, end=end, users=[user_id])
        return core.pick_trip(trips, now, self.tz)

    async def fresh_links(self, user: User) -> str | None:
        """The 打卡 command: a new trip card for today's trip (None), or why there is none."""
        now = self.now()
        async with self.db.transaction() as s:
            start, end = self._day_bounds(now.astimezone(self.tz).date())
            trip = core.pick_trip(
                await store.trips_overlapping(s, start=start, end=end, users=[user.id]), now, self.tz
            )
            if trip is None:
                return "您今天没有已批准的外出或派车行程。外出前请先提交「外出申请」，批准后会收到打卡卡片。"
            payload = self._card(trip, await self.secret(s), now)
            self._queue(
                s, kind=CARD_KIND, recipient=user.id, payload=payload, now=now, request_id=trip.request_id
            )
        return None

    # -- timers: the missing-check-in ladder and the daily summary ---------------------------------
    async def _schedule_rungs(self, session: AsyncSession, trip: Trip, now: datetime) -> None:
        for rung in core.planned_rungs(trip, grace=self.config.grace):
            await timers.schedule_once(
                session,
                kind=TimerKind.CHECKIN_MISSING,
                key=_rung_key(trip.id, rung.kind, rung.rung),
                due_at=rung.due_at,
                now=now,
                ref=trip.id,
                data={"kind": rung.kind.value, "rung": rung.rung.value},
            )

    async def _cancel_rungs(self, session: AsyncSession, checkin: Checkin, now: datetime) -> None:
        """A check-in on a trip silences the rest of the ladder for its kind."""
        if checkin.trip_id is None or checkin.kind == CheckinKind.FREE:
            return
        keys = [_rung_key(checkin.trip_id, checkin.kind, rung) for rung in Rung]
        await timers.cancel_keys(session, keys=keys, now=now)

    async def schedule_watched_trips(self, session: AsyncSession, now: datetime) -> None:
        """At start: the ladder of every trip that may still need one (trips opened before the
        ladder was kept in timers). Rungs already written, sent or cancelled keep their row."""
        since = now - core.STALE_RUNG - 2 * self.config.grace
        for trip in await store.trips_to_watch(session, since=since):
            await self._schedule_rungs(session, trip, now)

    async def _fire_missing_rung(self, timer: Timer) -> FireResult:
        """Send one rung if it is still due: the trip active, no check-in of its kind, not stale.

        Its messages commit with the closing of the timer: a crash sends nothing, and the lease
        expiry hands the timer to the next scan."""
        org = await self.org()  # before the transaction: no write lock held while it loads
        now = self.now()
        kind, name = CheckinKind(timer.data["kind"]), Rung(timer.data["rung"])
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            trip = await store.load_trip(s, trip_id=timer.ref or "")
            due: list[core.MissingRung] = []
            if trip is not None:
                done = await store.done_kinds(s, trip_ids=[trip.id])
                due = core.due_rungs(trip, done.get(trip.id, set()), now, grace=self.config.grace)
            rung = next((r for r in due if (r.kind, r.rung) == (kind, name)), None)
            if trip is None or rung is None:
                await timers.set_status(
                    s, timer.id, status=TimerStatus.CANCELLED, error="checked in, trip not active, or stale"
                )
                return FireResult.CANCELLED
            await self._send_rung(s, trip, rung, org, now)
        logger.info(
            "missing check-in rung sent",
            extra={"trip_id": trip.id, "kind": kind.value, "rung": name.value, "user": trip.traveller},
        )
        return FireResult.FIRED

    async def _send_rung(
        self, session: AsyncSession, trip: Trip, rung: core.MissingRung, org: Org, now: datetime
    ) -> None:
        if rung.rung == Rung.REMIND:
            secret = await self.secret(session)
            payload = self._card(trip, secret, now, heading=words.reminder_text(trip, rung.kind, self.tz))
            self._queue(
                session,
                kind=CARD_KIND,
                recipient=trip.traveller,
                payload=payload,
                now=now,
                request_id=trip.request_id,
            )
            return
        text = words.escalation_text(
            trip, rung.kind, org.display_name(trip.traveller), self.tz, self.config.grace
        )
        for manager in managers_of(org, trip.traveller):
            self._queue(
                session,
                kind="text",
                recipient=manager,
                payload={"text": text, "request_id": trip.request_id},
                now=now,
                request_id=trip.request_id,
            )

    async def schedule_next_summary(
        self, session: AsyncSession, *, after: datetime, now: datetime
    ) -> datetime | None:
        if self.config.summary_at is None:
            return None
        slot = next_daily([self.config.summary_at], after=after, tz=self.tz)
        await timers.schedule_once(
            session,
            kind=TimerKind.CHECKIN_SUMMARY,
            key=slot_key("checkin_summary", slot),
            due_at=slot,
            now=now,
            data={"slot": slot.isoformat()},
        )
        return slot

    async def _fire_summary(self, timer: Timer) -> FireResult:
        """To each manager, their team's missing and off-site check-ins of the slot's day, sent with
        the closing of the timer (so once), and the next day's timer."""
        slot = datetime.fromisoformat(str(timer.data.get("slot", timer.due_at.isoformat())))
        day = slot.astimezone(self.tz).date()
        org = await self.org()
        now = self.now()
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            if self.config.summary_at is None:  # switched off since this timer was written
                return FireResult.SKIPPED
            sent = await self._write_daily_summaries(s, day, org, now)
            await self.schedule_next_summary(s, after=max(now, slot), now=now)
        logger.info("check-in daily summaries sent", extra={"day": day.isoformat(), "managers": sent})
        return FireResult.FIRED if sent else FireResult.SKIPPED

    async def _write_daily_summaries(self, s: AsyncSession, day: date, org: Org, now: datetime) -> int:
        problems = await self._problems(s, day=day, users=None, now=now)
        by_manager: dict[str, list[Problem]] = {}
        for p in problems:
            for manager in managers_of(org, p.user):
                by_manager.setdefault(manager, []).append(p)
        names = {u.id: u.name for u in org.users.values()}
        for manager, items in sorted(by_manager.items()):
            secret = await self.secret(s)
            link = self.link(secret, user=manager, trip="*", kind="team", expires_at=now + TEAM_LINK_TTL)
            text = (
                words.summary_text(day, items, names, self.tz)
                + f"\n查看团队签到：{link}?date={day.isoformat()}"
            )
            self._queue(s, kind="text", recipient=manager, payload={"text": text}, now=now)
        return len(by_manager)

    async def _problems(
        self, session: AsyncSession, *, day: date, users: list[str] | None, now: datetime
    ) -> list[Problem]:
        start, end = self._day_bounds(day)
        trips = await store.trips_overlapping(session, start=start, end=end, users=users)
        on_trips = await store.checkins_of_trips(session, trip_ids=[t.id for t in trips])
        return core.day_problems(trips, on_trips, day=day, now=now, tz=self.tz, grace=self.config.grace)

    # -- reads -----------------------------------------------------------------------------------------
    def checkin_view(self, row_id: int, c: Checkin, org: Org) -> dict[str, Any]:
        u = org.user(c.user)
        dept = org.department(u.department) if u else None
        return {
            "id": row_id,
            "user": c.user,
            "user_name": org.display_name(c.user),
            "department": u.department if u else None,
            "department_name": dept.name if dept else None,
            "kind": c.kind.value,
            "kind_label": words.KIND_LABEL[c.kind],
            "at": c.at.isoformat(),
            "received_at": c.received_at.isoformat(),
            "device_at": c.device_at.isoformat() if c.device_at else None,
            "lat": c.lat,
            "lng": c.lng,
            "coord_system": c.coord_system,
            "wgs84": {"lat": c.point.lat, "lng": c.point.lng},
            "accuracy_m": c.accuracy_m,
            "source": c.source.value,
            "source_label": words.SOURCE_LABEL[c.source],
            "channel": c.channel,
            "label": c.label,
            "verdict": c.verdict.value,
            "verdict_label": words.VERDICT_LABEL[c.verdict],
            "distance_m": round(c.distance_m, 1) if c.distance_m is not None else None,
            "target_site": c.target_site,
            "target_name": c.target_name,
            "radius_m": c.radius_m,
            "trip_id": c.trip_id,
            "request_id": c.request_id,
            "trust": {
                "score": c.trust.score,
                "level": c.trust.level.value,
                "level_label": words.TRUST_LEVEL_LABEL[c.trust.level],
                "flags": c.trust.flags,
                "reasons": [
                    {"code": r.code, "penalty": r.penalty, "message": r.message} for r in c.trust.reasons
                ],
            },
            "made_up": c.made_up,
            "fix_request_id": c.fix_request_id,
            "map_url": map_url(c.point, c.target_name or c.label or ""),
        }

    async def day_view(self, *, day: date, users: list[str] | None) -> dict[str, Any]:
        """Who checked in where and when on `day` (of `users`, or everyone), and what is missing."""
        org = await self.org()
        now = self.now()
        start, end = self._day_bounds(day)
        async with self.db.session() as s:
            rows = await store.list_checkins(s, start=start, end=end, users=users)
            problems = await self._problems(s, day=day, users=users, now=now)
        return {
            "date": day.isoformat(),
            "items": [self.checkin_view(i, c, org) for i, c in rows],
            "missing": [
                {
                    "user": p.user,
                    "user_name": org.display_name(p.user),
                    "trip_id": p.trip_id,
                    "kind": p.kind.value,
                    "due_at": p.at.isoformat() if p.at else None,
                    "detail": words.problem_detail(p, self.tz),
                }
                for p in problems
                if p.problem == "missing"
            ],
        }
