"""`python build.py serve`: the rebuild loop (command.py), the live-reload HTTP server (liveserver.py) and the poller
of the source files (watch.py). Nothing else on the render side imports it."""
