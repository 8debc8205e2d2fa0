from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_extra_types.currency_code import ISO4217

# Minor units per ISO 4217 where they differ from the usual two.
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}

MAX_AMOUNT = Decimal("1000000")

# ISO 4217 also lists codes nobody can be paid in: precious metals, bond-market units, the
# IMF's drawing rights, the testing code XTS and XXX ("no currency"). Of the X codes only
# these are money.
_PAYABLE_X = frozenset({"XAF", "XCD", "XCG", "XOF", "XPF"})


def payable(currency: str) -> bool:
    return not currency.startswith("X") or currency in _PAYABLE_X


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


class Money(BaseModel):
    """A non-negative amount in one currency. Direction comes from the operation, never a sign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[Decimal, Field(allow_inf_nan=False)]
    currency: ISO4217

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        # JSON numbers arrive as floats; go through their shortest repr, never binary noise.
        if isinstance(value, float):
            return Decimal(repr(value))
        return value

    @field_validator("currency")
    @classmethod
    def _payable(cls, value: str) -> str:
        if not payable(value):
            raise ValueError(
                f"{value} is not a currency anyone can be paid in (ISO 4217 keeps X codes for "
                "metals, units of account, testing and 'no currency')"
            )
        return value

    @field_validator("amount")
    @classmethod
    def _range(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError(f"must not be negative (got {value})")
        if value > MAX_AMOUNT:
            raise ValueError(f"{value} exceeds the maximum of {MAX_AMOUNT}")
        return value

    @model_validator(mode="after")
    def _check_places(self) -> Money:
        places = minor_units(self.currency)
        exponent = self.amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(
                f"amount {self.amount} has more than {places} decimal places for {self.currency}"
            )
        quantum = Decimal(1).scaleb(-places)
        object.__setattr__(self, "amount", self.amount.quantize(quantum))
        return self

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(amount=Decimal(str(amount)), currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def total(items: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for item in items:
        result = result + item
    return result
