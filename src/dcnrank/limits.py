"""Limits on untrusted input that every reader of it shares: table cells, HTTP fields.

This module sits at the bottom of the package and imports nothing from dcnrank, so
the table readers (`dcnrank.data`) and the HTTP schemas (`dcnrank.serve`) state one rule.
"""

from __future__ import annotations

__all__ = ["MAX_STRING_CHARS"]

# The longest string value a categorical or multi-hot feature may hold, in characters,
# in a table cell or an HTTP request. Ids, codes, tags and URLs fit well within it; a
# longer value is refused with an error naming where it is, so that one hostile or
# corrupt value cannot make a lookup or a vocabulary cost memory in proportion to it.
MAX_STRING_CHARS = 4096
