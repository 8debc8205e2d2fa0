"""Activity names, for code that has not moved to the specs in `makegood.domain.calls`."""

from makegood.domain import calls

SEND_MESSAGE = calls.SEND_MESSAGE.name
MAKE_PAYMENT = calls.MAKE_PAYMENT.name
LOCATE_VEHICLE = calls.LOCATE_VEHICLE.name
REBOOK_VEHICLE = calls.REBOOK_VEHICLE.name
RELEASE_BOOKING = calls.RELEASE_BOOKING.name
CHECK_STOCK = calls.CHECK_STOCK.name
CREATE_RETURN = calls.CREATE_RETURN.name
QUOTE_SUBSTITUTE = calls.QUOTE_SUBSTITUTE.name
PLACE_SUBSTITUTE = calls.PLACE_SUBSTITUTE.name
SHIP_ITEM = calls.SHIP_ITEM.name
GRANT_PERK = calls.GRANT_PERK.name
REMAKE_ORDER = calls.REMAKE_ORDER.name
RECORD_OUTCOME = calls.RECORD_OUTCOME.name
BOOK_REPAIR = calls.BOOK_REPAIR.name
REPLACE_ITEM = calls.REPLACE_ITEM.name
FIND_RELATED_CASES = calls.FIND_RELATED_CASES.name
SCHEDULE_CALL = calls.SCHEDULE_CALL.name
