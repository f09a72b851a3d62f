"""What real devices do wrong: clock jitter, retries, late delivery, going silent, and the
register faults of devices that report a cumulative register (reset, glitch, spike)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

# A device that goes silent stays silent this long (minutes, uniform).
SILENCE_MINUTES = (5, 60)
# A late reading arrives this many minutes after it was taken (uniform).
LATE_MINUTES = (2, 30)
# A retry is sent this many minutes after the first attempt (0: within the same minute).
RETRY_AFTER_MINUTES = (0, 2)


@dataclass(frozen=True, slots=True)
class MessRates:
    """How often each kind of mess happens, per reading (silence: per device-minute).

    `reset`, `glitch` and `spike` happen to register readings only (see `registers`): the
    register restarts from a lower base and stays there, reads 0 once, or reads a value far over
    what the device could have drawn once.
    """

    jitter: float = 0.5
    max_jitter_seconds: int = 3
    retry: float = 0.01
    late: float = 0.01
    silence: float = 0.0005
    reset: float = 0.0
    glitch: float = 0.0
    spike: float = 0.0

    def __post_init__(self) -> None:
        for name in ("jitter", "retry", "late", "silence", "reset", "glitch", "spike"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the {name} rate must be between 0 and 1, not {value}")
        if self.reset + self.glitch + self.spike > 1.0:
            raise ValueError("the reset, glitch and spike rates add up to more than 1")
        if self.silence >= 1.0:
            raise ValueError("the silence rate must be below 1: a device never heard from")
        # Jitter stays well inside the minute so that readings keep their minute's order and
        # a reading taken while idle never lands on the other side of a charger change.
        if not 0 <= self.max_jitter_seconds <= 20:
            raise ValueError("the jitter must be between 0 and 20 seconds")

    @property
    def silence_start_probability(self) -> float:
        """Chance per minute that a reporting device falls silent.

        A device is silent a share p·L/(1 + p·L) of the time (p the start chance, L the mean
        outage), solved for p so that share equals the silence rate.
        """
        mean_outage = sum(SILENCE_MINUTES) / 2
        return self.silence / (mean_outage * (1.0 - self.silence))


class Fate(NamedTuple):
    """What happens to one reading: its clock error, how late it arrives, when it is re-sent."""

    jitter_ms: int
    delay_minutes: int  # 0: delivered in the minute it was taken
    retry_after_minutes: int | None  # after the first delivery; None: sent once


ON_TIME = Fate(jitter_ms=0, delay_minutes=0, retry_after_minutes=None)
_NEVER = 2**62


class DeviceMess:
    """The mess of one device, from its own random stream: same seed, same mess.

    Rare events (silence, late delivery, retry) are not drawn reading by reading: the number
    of readings until the next one is drawn from the geometric distribution and counted down,
    which is the same Bernoulli process at a fraction of the cost.
    """

    __slots__ = (
        "_jitter_rate",
        "_max_jitter",
        "_rates",
        "_rng",
        "_until_late",
        "_until_retry",
        "_until_silence",
        "silent_until",
    )

    def __init__(self, rates: MessRates, rng: random.Random) -> None:
        self._rates = rates
        self._rng = rng
        self._jitter_rate = rates.jitter if rates.max_jitter_seconds else 0.0
        self._max_jitter = rates.max_jitter_seconds
        self._until_silence = self._gap(rates.silence_start_probability)
        self._until_late = self._gap(rates.late)
        self._until_retry = self._gap(rates.retry)
        self.silent_until = -1

    def _gap(self, probability: float) -> int:
        """Trials before the next success of a Bernoulli(probability) process."""
        if probability <= 0.0:
            return _NEVER
        if probability >= 1.0:
            return 0
        return int(math.log(1.0 - self._rng.random()) / math.log1p(-probability))

    def fate(self, minute: int) -> Fate | None:
        """The fate of the reading taken at `minute`; None when the device is silent (lost)."""
        if minute < self.silent_until:
            return None
        rng = self._rng
        if self._until_silence:
            self._until_silence -= 1
        else:
            self._until_silence = self._gap(self._rates.silence_start_probability)
            self.silent_until = minute + rng.randint(*SILENCE_MINUTES)
            return None
        jitter = 0
        if self._jitter_rate and rng.random() < self._jitter_rate:
            # Whole seconds, as device clocks report them; never 0, so the rate is the rate.
            jitter = rng.randint(1, self._max_jitter) * (1000 if rng.random() < 0.5 else -1000)
        delay = 0
        if self._until_late:
            self._until_late -= 1
        else:
            self._until_late = self._gap(self._rates.late)
            delay = rng.randint(*LATE_MINUTES)
        retry = None
        if self._until_retry:
            self._until_retry -= 1
        else:
            self._until_retry = self._gap(self._rates.retry)
            retry = rng.randint(*RETRY_AFTER_MINUTES)
        if not (jitter or delay or retry is not None):
            return ON_TIME
        return Fate(jitter_ms=jitter, delay_minutes=delay, retry_after_minutes=retry)
