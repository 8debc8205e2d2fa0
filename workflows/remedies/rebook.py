"""Car sharing: sound the horn, re-book a car nearby, and beyond the frontline's attempts
re-book with a manager's approval (and an upgrade). Unused bookings are released newest first.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, steps, wording
    from makegood.domain.case import Booking, Stage
    from makegood.domain.provider import LocateRequest, RebookRequest

from makegood.workflows.case import failure_reason
from makegood.workflows.conversation import SECOND_CHANNEL_PATCH
from makegood.workflows.remedies.base import Remedy

# Added while cases were running: cases cancelled mid-call before it replay without it.
IN_FLIGHT_PATCH = "release-in-flight-booking"
APPROVAL_STAGE_PATCH = "rebook-approval-in-remedy-stage"


class Rebook(Remedy):
    in_flight: RebookRequest | None = None  # a re-booking call not yet answered

    async def wind_down(self) -> None:
        """A re-booking call abandoned by a cancel may still have booked a car: the same
        request again (same idempotency key) returns that booking, or makes it, so that it is
        known and released with the rest; never a car left booked under nobody's case."""
        request, self.in_flight = self.in_flight, None
        if request is None or not workflow.patched(IN_FLIGHT_PATCH):
            return
        case = self.case
        try:
            booking = await case.call(calls.REBOOK_VEHICLE, request)
        except ActivityError as err:
            await case.escalate(
                f"re-booking {request.step} was cancelled in flight and cannot be checked: "
                f"{failure_reason(err)}; check the provider for a booking to release"
            )
            return
        case.status.bookings.append(
            Booking(
                id=booking.booking_id,
                vehicle=booking.vehicle,
                vehicle_class=booking.vehicle_class,
                location=booking.location,
            )
        )
        case.event("rebooked", f"{booking.vehicle} was booked by the cancelled call")

    async def attempt(self) -> bool:
        case, inc, playbook = self.case, self.case.incident, self.case.playbook
        assert inc.item is not None and inc.location is not None
        if not await self.owned("booking", inc.reference):
            return False
        current = Booking(
            id=inc.reference, vehicle=inc.item, location=inc.location, origin="original"
        )
        case.status.bookings.append(current)
        case.stage(Stage.DIAGNOSE)
        found = await self._locate(current)
        while not found:
            if found is None:  # nobody said whether it was found: neither yes nor no
                return await self._unconfirmed(current)
            current.status = "failed"
            self.result.failed_attempts += 1
            attempt = self.result.attempts + 1
            if attempt > playbook.remedy_attempts:
                await self.hand_over(
                    f"no car after {self.result.attempts} re-booking(s): a person must take over"
                )
                return False
            upgrade = False
            if attempt > playbook.frontline_attempts:
                # Added while cases were running: a manager's decision is part of the remedy,
                # not of the diagnosis (`status` and `list --stage` said diagnose).
                if workflow.patched(APPROVAL_STAGE_PATCH):
                    case.stage(Stage.REMEDY)
                what = "with an upgrade" if playbook.upgrade_on_escalation else ""
                approved = await self.approvals.request(
                    f"rebook-{attempt}",
                    f"{self.result.failed_attempts} car(s) missing; approve re-booking "
                    f"{what}".strip(),
                )
                if not approved:
                    await self.hand_over(
                        f"re-booking {attempt} not approved: a person must take over"
                    )
                    return False
                upgrade = playbook.upgrade_on_escalation
            case.stage(Stage.REMEDY)
            self.result.attempts = attempt
            request = RebookRequest(
                step=steps.rebook(attempt),
                customer_id=case.customer.id,
                replaces=current.id,
                like_vehicle=inc.item,
                near=inc.location,
                exclude=[b.vehicle for b in case.status.bookings],
                upgrade=upgrade,
            )
            self.in_flight = request
            try:
                booking = await case.call(calls.REBOOK_VEHICLE, request)
            except ActivityError as err:
                self.in_flight = None
                await case.escalate(f"re-booking failed: {failure_reason(err)}")
                await case.release_unused()
                return False
            self.in_flight = None
            current = Booking(
                id=booking.booking_id,
                vehicle=booking.vehicle,
                vehicle_class=booking.vehicle_class,
                location=booking.location,
            )
            case.status.bookings.append(current)
            case.action(
                "rebooked",
                wording.rebooked_line(
                    booking.vehicle, booking.vehicle_class, booking.location, upgraded=upgrade
                ),
            )
            self.result.claims_invited = playbook.compensation.reimburse_expenses
            await self.talk.tell_all(
                steps.rebook(attempt),
                wording.new_car(
                    case.customer.first_name,
                    booking.vehicle,
                    booking.vehicle_class,
                    booking.location,
                    upgraded=upgrade,
                    invite_claims=self.result.claims_invited,
                ),
            )
            answer = await self.talk.ask(
                f"pickup-{attempt}",
                wording.pickup_question(booking.vehicle, booking.location),
                ["picked_up", "missing"],
                if_silent=f"{booking.vehicle} stays booked for the member, not counted as fixed",
            )
            if answer is None:
                # Never assumed: the booking is kept for the member and not counted as fixed.
                # Since the second channel, ops has been told by the conversation already.
                if not workflow.patched(SECOND_CHANNEL_PATCH):
                    await case.escalate(
                        f"no answer whether {booking.vehicle} was found: it stays booked, not "
                        "counted as fixed; an agent must confirm with the member"
                    )
                return await self._unconfirmed(current)
            if answer.answer == "picked_up":
                found = True
            else:
                case.stage(Stage.DIAGNOSE)
                found = await self._locate(current)
        current.status = "in_use"
        await case.release_unused()
        return True

    async def _unconfirmed(self, current: Booking) -> bool:
        """Nobody confirmed whether the member has a car: the one in question stays booked
        for them (never released under them), the rest is released, nothing counts as fixed."""
        current.status = "unconfirmed"
        self.result.unconfirmed = True
        await self.case.release_unused()
        return False

    async def _locate(self, booking: Booking) -> bool | None:
        """Sound the horn and ask, up to the playbook's attempts: True once the car is found,
        None when nobody answered at all (since the second channel: never read as "not
        found" either, which would book the silent member another car)."""
        case = self.case
        for attempt in range(1, case.playbook.locate_attempts + 1):
            try:
                located = await case.call(
                    calls.LOCATE_VEHICLE,
                    LocateRequest(
                        step=steps.locate(booking.vehicle, attempt),
                        vehicle=booking.vehicle,
                        booking=booking.id,
                    ),
                )
            except ActivityError as err:
                await case.escalate(f"could not locate {booking.vehicle}: {failure_reason(err)}")
                return False
            if located.honked:
                case.action("honked", wording.honked_line(booking.vehicle, located.location))
                prompt = wording.horn_question(booking.vehicle)
            else:  # never claimed as done: the member is asked to look, not to listen
                case.event("horn_silent", f"the horn of {booking.vehicle} did not sound")
                prompt = wording.look_question(booking.vehicle, located.location)
            answer = await self.talk.ask(
                f"locate-{booking.vehicle}-{attempt}",
                prompt,
                ["found", "not_found"],
                if_silent=f"{booking.vehicle} stays booked for the member, nothing more is booked",
            )
            if answer is None and workflow.patched(SECOND_CHANNEL_PATCH):
                return None
            if answer is not None and answer.answer == "found":
                return True
        return False
