"""What the guessing tests share: guesses that reach the lookup, and the bound they allow.

A guess that the URL pattern refuses never reaches the database, so every guess here is shaped
like a real secret (43 characters of the URL-safe alphabet); half of them are "near misses", the
real secret with one character changed, which catch a lookup that compares only part of it.

Where no limit applies, the attacker's rate is the bound: `ATTACKER_RATE` requests a second is a
botnet far beyond what one instance answers (the tests' own HTTP guesses run at a few hundred a
second), kept up for the whole time a secret is worth guessing.
"""

from __future__ import annotations

import base64
import random
import string

ALPHABET = string.ascii_letters + string.digits + "-_"
ATTACKER_RATE = 1_000_000
"""Guesses a second, sustained."""
LIVE_SECRETS = 10_000_000
"""Secrets alive at once that a guess could hit (ten times the broker's customers)."""
SECONDS_PER_YEAR = 365 * 24 * 3600
BOUND = 1e-30
"""The highest success probability a year of guessing may have for a secret of this kind."""


def secret_bits(secret: str) -> int:
    """The bits of randomness a `secrets.token_urlsafe` value carries (its decoded bytes)."""
    padded = secret + "=" * (-len(secret) % 4)
    return 8 * len(base64.urlsafe_b64decode(padded))


def guesses_for(secret: str, count: int, rng: random.Random) -> list[str]:
    """`count` wrong guesses of `secret`'s shape: half random, half one character off."""
    guesses: list[str] = []
    while len(guesses) < count:
        if len(guesses) % 2:
            at = rng.randrange(len(secret))
            other = rng.choice(ALPHABET.replace(secret[at], ""))
            guess = secret[:at] + other + secret[at + 1 :]
        else:
            guess = "".join(rng.choice(ALPHABET) for _ in secret)
        if guess != secret:
            guesses.append(guess)
    return guesses


def success_probability(guesses: float, bits: int, live: int = LIVE_SECRETS) -> float:
    """Union bound: each guess hits one of `live` secrets with probability live / 2**bits."""
    return guesses * live / 2.0**bits
