"""Sub-commands of the `icctrl` CLI, one module each, each with `register(subparsers)`."""
