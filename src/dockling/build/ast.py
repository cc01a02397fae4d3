"""`--print-ast`: the parse as Docker's parser dump prints it, one line per instruction.

(from "busybox")
(copy ["--from=a" "--chown=1:1"] "b" "c")
(env "key" "value" "=")
(onbuild (run "echo hi"))
"""

from __future__ import annotations

from dockling.build.line_parsers import go_quote
from dockling.build.nodes import Node, NodeTree


def render_node(node: Node) -> str:
    """One node as `keyword ["--flag"] "arg" ...` without the outer parentheses."""
    parts = [node.command]
    if node.flags:
        parts.append("[" + " ".join(go_quote(flag) for flag in node.flags) + "]")
    if node.child is not None:
        parts.append("(" + render_node(node.child) + ")")
    parts.extend(go_quote(arg) for arg in node.args)
    return " ".join(parts)


def render(tree: NodeTree) -> str:
    """The whole file: one `(...)` line per instruction, each ending in a newline."""
    return "".join(f"({render_node(node)})\n" for node in tree.nodes)
