"""The semantic tier: answer a re-phrased question from the cached answer to the original.

Needs the ``semantic`` extra (fastembed, numpy), imported only when a policy turns it on.
"""
