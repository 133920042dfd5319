"""A long-running process of the app (the examples' role daemon: seed 003's recalculation and
notification daemons). It loads the release's settings, says which revision it runs, and stays
up until it is stopped.

    python -u -m counter.daemon recalculation
"""
import sys
import time

import sample.settings as settings


def main(name):
    print("%s daemon: revision %s" % (name, settings.APP_REVISION), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "app")
