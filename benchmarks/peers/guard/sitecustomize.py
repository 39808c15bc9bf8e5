"""Loaded by every Python process the proxy scenario starts: loopback-only networking.

Refused hosts are written to $BENCH_NET_LOG as they happen.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common

common.guard_network()
