#!/usr/bin/env python3
"""The inputs and outputs tables of a Terraform module's README, generated
from its variables.tf and outputs.tf (as terraform-docs writes them, between
its markers), so the README cannot drift from the code.

    python3 scripts/tf_docs.py infra/terraform/modules/nudge          # rewrite README.md
    python3 scripts/tf_docs.py --check infra/terraform/modules/nudge  # fail if stale

Reads `terraform fmt`-formatted files: each block opens on a line of its own
and closes with `}` at the start of a line.
"""

import re
import sys
from pathlib import Path

BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def blocks(text, kind):
    """(name, body lines) of every top-level `kind "name" {` block."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(rf'^{kind} "([^"]+)" \{{\s*$', lines[i])
        i += 1
        if not m:
            continue
        body = []
        while i < len(lines) and lines[i] != "}":
            body.append(lines[i])
            i += 1
        out.append((m.group(1), body))
    return out


def attribute(body, name):
    """An attribute of the block itself (two-space indent), with the lines
    of a multi-line value; None when absent."""
    for i, line in enumerate(body):
        m = re.match(rf"^  {name}\s*=\s*(.*)$", line)
        if not m:
            continue
        value = m.group(1)
        if value.rstrip().endswith(("{", "[", "(")):
            depth, j, parts = 1, i + 1, [value]
            while j < len(body) and depth:
                stripped = body[j].strip()
                parts.append(stripped)
                depth += stripped.count("{") + stripped.count("[") + stripped.count("(")
                depth -= stripped.count("}") + stripped.count("]") + stripped.count(")")
                j += 1
            value = " ".join(parts)
        return value.strip()
    return None


def unquote(value):
    if value and value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('\\"', '"')
    return value


def cell(text):
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render(module):
    variables = [b for f in sorted(module.glob("*.tf")) for b in blocks(f.read_text(), "variable")]
    outputs = [b for f in sorted(module.glob("*.tf")) for b in blocks(f.read_text(), "output")]
    rows = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, body in sorted(variables, key=lambda v: (attribute(v[1], "default") is not None, v[0])):
        default = attribute(body, "default")
        shown = "n/a" if default is None else f"`{cell(default)}`"
        rows.append(f"| `{name}` | {cell(unquote(attribute(body, 'description')))} | "
                    f"`{cell(attribute(body, 'type'))}` | {shown} | {'no' if default is not None else 'yes'} |")
    rows += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name, body in sorted(outputs):
        rows.append(f"| `{name}` | {cell(unquote(attribute(body, 'description')))} |")
    return "\n".join(rows)


def problems(module):
    """Variables or outputs without a description, variables without a type
    or a validation."""
    found = []
    for f in sorted(module.glob("*.tf")):
        text = f.read_text()
        for kind in ("variable", "output"):
            for name, body in blocks(text, kind):
                if not attribute(body, "description"):
                    found.append(f"{f}: {kind} {name} has no description")
                if kind == "variable" and not attribute(body, "type"):
                    found.append(f"{f}: variable {name} has no type")
                if kind == "variable" and not any(line.strip() == "validation {" for line in body):
                    found.append(f"{f}: variable {name} has no validation")
    return found


def updated(readme_text, table):
    if BEGIN not in readme_text or END not in readme_text:
        sys.exit(f"the README has no {BEGIN} … {END} markers")
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main():
    args = sys.argv[1:]
    check = "--check" in args
    modules = [Path(a) for a in args if a != "--check"]
    failed = False
    for module in modules:
        readme = module / "README.md"
        missing = problems(module)
        for p in missing:
            print(p)
        failed |= bool(missing)
        want = updated(readme.read_text(), render(module))
        if readme.read_text() != want:
            if check:
                print(f"{readme} is stale: run python3 scripts/tf_docs.py {module}")
                failed = True
            else:
                readme.write_text(want)
                print(f"{readme} updated")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
