"""The `r3lab` command: one file per subcommand, flags built from the configuration dataclasses."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".app": ["main", "build_parser"],
        ".args": ["add_dataclass_arguments", "dataclass_from_args"],
    },
)
