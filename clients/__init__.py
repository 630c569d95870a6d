"""Clients of `bya serve`, seen from the outside: the web pages (web/), a Python WHIP/WHEP client
(python/), and the glass-to-glass latency benchmark (bench_latency.py) that drives the server with them.
"""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "bench latency": (
        "glass-to-glass latency of bya serve over loopback (WHIP speech onset -> moving mouth over WHEP)",
        "clients.bench_latency:add_arguments",
        "clients.bench_latency:bench_command",
    ),
    "bench load": (
        "rooms this machine holds at >= 24 fps through bya serve (loopback), and the 503 for one more",
        "clients.bench_load:add_arguments",
        "clients.bench_load:bench_command",
    ),
    "bench soak": (
        "a long 2-character dialogue through bya serve: memory, fps, latency and A/V offset over time",
        "clients.bench_soak:add_arguments",
        "clients.bench_soak:bench_command",
    ),
}
