"""Text → facts: parsers for the output of host tools, shared by the local agent and the SSH probe.

Each parser is pure (a string in, typed facts out) and shows a sample of the input it expects in
its docstring. Output that does not look like the tool's raises `ParseError` naming the tool and
the offending line, so a source can record a clear reason instead of guessing.
"""

from __future__ import annotations


class ParseError(ValueError):
    """Tool output that does not have the expected shape."""
