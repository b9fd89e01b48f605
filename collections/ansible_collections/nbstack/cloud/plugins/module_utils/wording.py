# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts in the sentences nbstack prints: "1 minute", "2 minutes", never "1 minutes" or "task(s)"."""

from __future__ import annotations


def counted(count, noun, plural=None):
    """`count` and `noun`, singular only for exactly one (English: 0 and 1.5 take the plural).

    A whole float prints as an integer (1.0 -> "1 minute"); `plural` is for
    nouns that do not just take an "s".
    """
    number = int(count) if float(count).is_integer() else count
    return f"{number:g} {noun if number == 1 else plural or noun + 's'}"


def duration(seconds):
    """A duration as a person reads it: "0.4 s", "12 s", "3 min 05 s"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"
