"""Rewrite dataclass fields' trailing `# help` comments (and the deeper-indented comment lines that continue them) as
attribute docstrings right below the field: the flags' help (`r3lab.cli.args.field_help`), shown by IDEs and the API
pages too.

    python tools/field_docs.py [--check] [--only ClassA,ClassB] FILE...

--check prints what would change; --only limits it to those classes (a module near the 400-line cap: its configs).
"""

import ast
import re
import sys
from pathlib import Path

PAT = re.compile(r"^(\s+)(\w+)\s*:(.*?)\s+#\s*(.+)$")
MORE = re.compile(r"^(\s+)#\s*(.+)$")


def is_dataclass(node) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass")
        or (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass")
        or (isinstance(d, ast.Attribute) and d.attr == "dataclass")
        for d in node.decorator_list
    )


def convert(src: str, only: set | None = None) -> tuple[str, int]:
    tree = ast.parse(src)
    lines = src.split("\n")
    fields = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and is_dataclass(node) and (not only or node.name in only):
            for i, stmt in enumerate(node.body):
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    nxt = node.body[i + 1] if i + 1 < len(node.body) else None
                    has_doc = (
                        isinstance(nxt, ast.Expr)
                        and isinstance(getattr(nxt, "value", None), ast.Constant)
                        and isinstance(nxt.value.value, str)
                    )
                    if not has_doc:
                        fields[stmt.end_lineno - 1] = stmt  # last line of the field statement
    out, n, i = [], 0, 0
    while i < len(lines):
        line = lines[i]
        if i in fields:
            # the trailing comment sits on the statement's last line
            code, hash_, comment = _split_comment(line)
            if hash_:
                indent = re.match(r"^(\s*)", lines[fields[i].lineno - 1]).group(1)
                text = [comment.strip()]
                j = i + 1
                while j < len(lines) and (m := MORE.match(lines[j])) and len(m.group(1)) > len(indent):
                    text.append(m.group(2).strip())
                    j += 1
                doc = " ".join(text).replace('"""', "'''").replace("\\", "\\\\")
                doc += " " if doc.endswith('"') else ""  # not four quotes in a row
                out.append(code.rstrip())
                out.append(f'{indent}"""{doc}"""')
                n += 1
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out), n


def _split_comment(line):
    """(code, '#', comment) for a line's trailing comment outside strings, else (line, '', '')."""
    q, k = None, 0
    while k < len(line):
        c = line[k]
        if q:
            if c == "\\":
                k += 2
                continue
            if c == q:
                q = None
        elif c in "\"'":
            q = c
        elif c == "#":
            return line[:k], "#", line[k + 1 :]
        k += 1
    return line, "", ""


if __name__ == "__main__":
    args = sys.argv[1:]
    check = "--check" in args
    only = set(args[args.index("--only") + 1].split(",")) if "--only" in args else None
    files = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--only")]
    for f in files:
        p = Path(f)
        new, n = convert(p.read_text(), only)
        print(f"{f}: {n} fields, {len(new.splitlines())} lines")
        if not check and n:
            p.write_text(new)
