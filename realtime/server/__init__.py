"""The live server behind `bya serve`: HTTP, WHIP/WHEP over WebRTC, RTP buffers, guards, admission,
the rooms API and the web pages."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "serve": (
        "serve a live room: WHIP speakers per character or one diarized mix, WHEP viewers, re-binding, recording",
        "realtime.server.serve_command:add_arguments",
        "realtime.server.serve_command:serve_command",
    ),
}
