"""Package faces that load lazily: a package names its public objects and the module each lives in.

Nothing is imported until a name is first used, so `import r3lab` and `r3lab --help` stay cheap
(torch and transformers load with the first name that needs them). `lazy(...)` returns the
package's `__getattr__`, `__dir__` and `__all__`; the mapping stays on the package as `__face__`.
"""

from __future__ import annotations

import importlib
import sys


def lazy(package: str, exports: dict[str, list[str]], subpackages: tuple[str, ...] = ()):
    """`exports` maps a module (relative to `package`) to the names it gives the face; "name = attr"
    exports the module's `attr` as `name`. `subpackages` are imported on first access."""
    where = {}
    for module, names in exports.items():
        for entry in names:
            name, _, attr = (part.strip() for part in entry.partition("="))
            if name in where:
                raise ValueError(f"{package} exports {name!r} twice")
            where[name] = (module, attr or name)

    def __getattr__(name: str):
        if name in subpackages:
            return importlib.import_module(f"{package}.{name}")
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = where[name]
        value = getattr(importlib.import_module(module, package), attr)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where) | set(subpackages))

    sys.modules[package].__face__ = {name: module for name, (module, _) in where.items()}
    return __getattr__, __dir__, list(where)
