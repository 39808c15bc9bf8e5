"""The semantic step of a call: answer a re-phrased question from a verified similar entry.

:mod:`.lookup` finds and verifies candidates and indexes new prompts; :mod:`.vectors` keeps
the vector index (in process, replayed from the tiers' log, or the Redis server's own);
:mod:`.evidence` keeps what error-bounded hits learn. Everything here is sync (embedding is
CPU work): an async function runs it on a worker thread.
"""
