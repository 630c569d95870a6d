"""Clients of `bya serve`, seen from the outside: the web pages (web/), a Python WHIP/WHEP client
(python/), and the glass-to-glass latency benchmark (bench_latency.py) that drives the server with them.
"""
