"""Branch v6-bad-daemon: the web app is fine (its /ping passes), but the daemon crashes at start,
every time it is started. A deploy must notice (the process manager restarts it again and again)
and put every host back.
"""
raise RuntimeError("keel sample app v6-bad-daemon: the daemon crashes at start on purpose")
