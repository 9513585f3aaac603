"""``python -m daemon`` is ``eliq-daemon``."""

from daemon import main

main()
