"""Single-flight: concurrent identical misses make one upstream call and share its outcome.

Among the threads and tasks of one process (:mod:`.threads`), among the consumers of one
stream (:mod:`.streams`), and across processes through a Redis lease (:mod:`.processes`).
"""
