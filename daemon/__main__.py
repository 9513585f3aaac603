"""``python -m daemon`` is ``eliq-daemon``."""

from daemon.cli import main

main()
