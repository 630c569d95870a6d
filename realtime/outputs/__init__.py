"""Where a room's video and audio go besides WebRTC: MP4/MPEG-TS recorder, video files, the virtual
camera, and `bya render`."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "render": (
        "generate a scene from one audio file per character: MP4 with the mixed audio + JSON of boxes/timings",
        "realtime.outputs.render:add_arguments",
        "realtime.outputs.render:render_command",
    ),
}
