#!/usr/bin/env python3
"""The module layering the README's layout section states, checked from the #include
lines: no module includes one above it (no circle), and the order printed in the README
is the order the code has. Fails naming the offending includes."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def includes():
    deps = {}
    for d, ext in (("src", ".c"), (os.path.join("include", "tickwire"), ".h")):
        for f in os.listdir(os.path.join(ROOT, d)):
            if not f.endswith(ext):
                continue
            m = f[: -len(ext)]
            text = open(os.path.join(ROOT, d, f)).read()
            deps.setdefault(m, set()).update(
                i for i in re.findall(r'#include "tickwire/(\w+)\.h"', text) if i != m)
    return deps


def readme_order():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("**Dependency order**", 1)[1].split("\n\n", 2)[1]
    return [[m.strip() for m in layer.split(",")]
            for layer in block.replace("\n", " ").split("→")]


def main():
    deps = includes()
    layers = readme_order()
    rank = {m: i for i, layer in enumerate(layers) for m in layer}
    bad = [m for m in deps if m not in rank]
    if bad:
        print("modules missing from the README's dependency order:", sorted(bad))
        return 1
    wrong = [(m, i) for m, ds in deps.items() for i in ds if rank.get(i, -1) <= rank[m]]
    for m, i in sorted(wrong):
        print(f"{m} includes {i}, which the README puts at or above it")
    if wrong:
        return 1
    print(f"{len(deps)} modules in {len(layers)} layers, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
