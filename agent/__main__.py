"""`python -m agent` is `xunjian-agent` (handy where the console script is not on PATH)."""

from agent.cli import main

main()
