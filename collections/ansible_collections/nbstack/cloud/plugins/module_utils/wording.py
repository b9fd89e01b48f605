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
