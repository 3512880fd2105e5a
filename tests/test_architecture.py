"""The shape of the house: every import goes down the floors or along one, and no module is part of a
circle of imports. Parsed from the source (every import, at module level or inside a function). And no
room is too big: no source file over MAX_LINES lines but those listed, each with its reason."""
import ast
from pathlib import Path

import genlab

PACKAGE = Path(genlab.__file__).parent
# Lowest first. A module may import its own floor and the floors below it, never one above.
FLOORS = [
    {"errors", "printable", "atomic", "runconfig", "runlock", "version", "settings", "zoo", "progress"},
    {"data"},
    {"models"},
    {"training", "evaluation", "runs", "explore"},
    {"modalities"},
    {"api", "demo", "demo_pokemon", "web"},
    {"commands", "defaults_help"},
    {"cli", "__main__"},
]


def floor_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for i, names in enumerate(FLOORS):
        if top in names:
            return i
    raise AssertionError(f"{module} is on no floor: add it to FLOORS (and to ARCHITECTURE.md)")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """genlab modules a file imports, resolved to the module (or package) imported."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("genlab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("genlab"):
                continue
            for a in node.names:         # `from . import x` may name a module
                sub = f"{target}.{a.name}"
                out.add(sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                        or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
    return {m for m in out if m != "genlab"}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py") if module_name(p) != "genlab"}


def test_no_floor_imports_a_higher_one():
    wrong = []
    for module, targets in graph().items():
        for t in targets:
            if floor_of(t) > floor_of(module):
                wrong.append(f"{module} imports {t}")
    assert not wrong, "lower floors import higher ones:\n" + "\n".join(sorted(wrong))


def test_no_two_folders_import_each_other():
    """Folders of one floor may import each other one way only: two that do both ways are one room."""
    top = lambda m: m.split(".")[1] if "." in m else m      # noqa: E731
    edges = {(top(m), top(t)) for m, targets in graph().items() for t in targets if top(m) != top(t)}
    both = sorted(f"{a} ↔ {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not both, "folders that import each other:\n" + "\n".join(both)


def test_no_import_circles():
    g = graph()
    # A package's __init__ stands for the package: an import of genlab.data is an import of its __init__.
    state, circles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(g.get(m, ())):
            if state.get(t) == "open":
                circles.append(" → ".join(stack[stack.index(t):] + [t]) if t in stack else f"{m} → {t}")
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_floors_are_checked_on_real_imports():
    g = graph()
    assert "genlab.api" in g["genlab.commands"] and "genlab.modalities" in g["genlab.api"]
    assert floor_of("genlab.models.base") < floor_of("genlab.runs") < floor_of("genlab.api")


def test_the_pages_and_the_figures_never_ask_which_kind_of_data():
    """web/ and evaluation/ draw what a run shows from its modality's declarations: no test of a modality's
    name (in Python or the explorer's script), no import of one modality's module."""
    import re
    name_test = re.compile(r"""modality\s*===?\s*["']|info\.kind\s*==|\.kind\s*==\s*["'](image|text|audio|video)""")
    found = []
    for folder in ("web", "evaluation"):
        for path in sorted((PACKAGE / folder).rglob("*")):
            if path.suffix in (".py", ".html", ".js"):
                found += [f"{path.relative_to(PACKAGE)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                          if name_test.search(line)]
    kinds = {f"genlab.modalities.{k}" for k in ("image", "text", "audio", "video")}
    found += [f"{m} imports {t}" for m, targets in graph().items() if m.split(".")[1] in ("web", "evaluation")
              for t in targets & kinds]
    assert not found, "asks which kind of data:\n" + "\n".join(found)


# Every getattr/hasattr left in the package, and why it is no probe of a model, its Config or an Info.
ALLOWED_GETATTR = {
    "__init__.py": "the library's names imported on first use",
    "atomic.py": "O_DIRECTORY exists on POSIX only",
    "cli.py": "the sub-command's function by its name",
    "commands.py": "argparse's namespace: options a sub-command may not define",
    "data/__init__.py": "the data modules that build a data set on request define fetch",
    "models/autoregressive/pixel_lstm.py": "torch's LSTM names its weights by layer",
    "models/autoregressive/vpn.py": "its own kernel-size settings, checked by name",
    "models/registry.py": "a model class by its registry line",
    "settings.py": "a type's name in a message",
    "training/acceleration.py": "CPU feature queries that older torch builds lack",
    "training/optim.py": "the managed optimiser forwards what it does not override",
    "training/options.py": "its own dataclass fields, checked by name",
}


def test_capabilities_are_declared_never_probed():
    import re
    probe = re.compile(r"\b(getattr|hasattr)\(")
    found = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if probe.search(p.read_text())}
    assert found <= ALLOWED_GETATTR.keys(), f"getattr/hasattr outside the allow-list: {sorted(found - ALLOWED_GETATTR.keys())}"
    assert ALLOWED_GETATTR.keys() <= found, f"stale allow-list entries: {sorted(ALLOWED_GETATTR.keys() - found)}"


MAX_LINES = 400
# Files still over MAX_LINES: {path under src/genlab: why}. An entry goes when its file is split.
OVER_MAX_LINES: dict[str, str] = {}


def line_counts() -> dict[str, int]:
    return {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}


def test_no_file_is_over_the_line_limit():
    over = {path: n for path, n in line_counts().items() if n > MAX_LINES and path not in OVER_MAX_LINES}
    assert not over, f"files over {MAX_LINES} lines (split them along a seam):\n" + "\n".join(
        f"{path}: {n}" for path, n in sorted(over.items()))


def test_every_file_allowed_over_the_limit_is_still_over_it():
    counts = line_counts()
    stale = [f"{path}: {'no such file' if path not in counts else f'{counts[path]} lines'}"
             for path in OVER_MAX_LINES if counts.get(path, 0) <= MAX_LINES]
    assert not stale, "OVER_MAX_LINES lists files that are gone or within the limit (remove them):\n" + \
        "\n".join(stale)
