"""The layering DESIGN.md fixes, checked on the source: pure cores stay free of Faust, Kafka and Redis;
the kernel does not depend on feature packages.

How: a static walk of the import graph (ast over every module of the distribution, folders mapped to
package names through pyproject's `package-dir`), which takes a fraction of a second and names the
import chain when it fails. Rule 1 follows what runs at import time (module level, class bodies, not
function bodies nor `if TYPE_CHECKING:` blocks); third-party libraries the pure cores import are
then imported together in one fresh interpreter, so one that pulls in a forbidden client
transitively is caught too (clean together means each is clean).

Rule 2 looks at every import a kernel module writes, lazy ones in functions included: it is about
which way dependencies point, not about import cost.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: clients the pure cores must not load: their import alone starts threads or needs a broker/server
FORBIDDEN = frozenset({"faust", "confluent_kafka", "aiokafka", "redis"})

#: feature packages below the kernel. The contract is not one: `shopstream.schemas` (the events: the serde
#: and the codecs are built on it) and `shopstream.topology` (topics, partitions, DLQ routes as data: the
#: kernel's producer, DLQ writer and runner read what the runtime must honour from it)
FEATURES = ("shopstream.processors", "shopstream.connectors", "shopstream.views", "shopstream.api",
            "shopstream.bench", "shopstream.ops", "shopstream.dev")

#: the composition root: it alone wires features to the kernel
COMPOSITION_ROOT = "shopstream.cli"

#: Kernel modules that depend on a feature package today, as (kernel module, feature package).
#: Debt to pay off, never to extend: the test fails on a new violation and on an entry that no
#: longer violates (remove it then).
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


@cache
def _package_dirs() -> dict[str, Path]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {package: ROOT / folder for package, folder in conf["package-dir"].items()}


@cache
def _modules() -> dict[str, Path]:
    """Every module of the distribution by its dotted name (a package by its __init__.py)."""
    found: dict[str, Path] = {}
    dirs = _package_dirs()
    for package, folder in dirs.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            name = ".".join((package, *rel))
            owner = max((p for p in dirs if name == p or name.startswith(p + ".")), key=len)
            if owner == package:  # a nested folder mapped to a subpackage of its own is found under that one
                found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(body: list[ast.stmt], import_time_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements in `body`; with `import_time_only`, only those that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not import_time_only:
                yield from _import_nodes(node.body, import_time_only)
        elif isinstance(node, ast.If) and import_time_only and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse, import_time_only)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from _import_nodes([c for c in children if isinstance(c, ast.stmt | ast.excepthandler)],
                                             import_time_only)
            if isinstance(node, ast.ExceptHandler):
                yield from _import_nodes(node.body, import_time_only)


@cache
def _imports(module: str, import_time_only: bool) -> frozenset[str]:
    """Dotted names `module` imports (each parent package included: importing a.b.c runs a and a.b)."""
    path = _modules()[module]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in _import_nodes(tree.body, import_time_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in _modules() else prefix for a in node.names]
        for target in targets:
            parts = target.split(".")
            out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(out)


def _import_chains(start: str) -> dict[str, list[str]]:
    """Everything `start` loads at import time, each with one import chain that leads to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        if current not in _modules():
            continue  # third-party or stdlib: not walked (see _third_party_loads_forbidden)
        for target in sorted(_imports(current, True)):
            if target not in chains:
                chains[target] = [*chains[current], target]
                todo.append(target)
    return chains


#: the anomaly worker's adapters on the runner and Redis (everything else in the package is pure)
ANOMALY_ADAPTERS = frozenset({"shopstream.processors.anomalies.worker", "shopstream.processors.anomalies.view"})


def _pure_cores() -> list[str]:
    """The modules DESIGN.md calls pure: domain cores and config-like modules (read from the tree)."""
    modules = _modules()
    orders = sorted(m for m in modules if m.startswith("shopstream.processors.orders.")
                    and m != "shopstream.processors.orders.app")
    codecs = sorted(m for m in modules if m == "shopstream.codecs" or m.startswith("shopstream.codecs."))
    adapters = {"shopstream.processors.review.worker", "shopstream.processors.review.list_store"}
    review = sorted(m for m in modules if m == "shopstream.processors.review"
                    or (m.startswith("shopstream.processors.review.") and m not in adapters))
    catalog_adapter = "shopstream.processors.catalog.worker"
    catalog = sorted(m for m in modules if m == "shopstream.processors.catalog"
                     or (m.startswith("shopstream.processors.catalog.") and m != catalog_adapter))
    support_adapters = {"shopstream.processors.support.worker", "shopstream.processors.support.lookup"}
    support = sorted(m for m in modules if m == "shopstream.processors.support"
                     or (m.startswith("shopstream.processors.support.") and m not in support_adapters))
    anomalies = sorted(m for m in modules if m == "shopstream.processors.anomalies"
                       or (m.startswith("shopstream.processors.anomalies.") and m not in ANOMALY_ADAPTERS))
    sim_shell = {"shopstream.sim.driver", "shopstream.sim.check", "shopstream.sim.faces", "shopstream.sim.cli",
                 "shopstream.sim.demo", "shopstream.sim.html", "shopstream.sim.report"}
    sim = sorted(m for m in modules if m.startswith("shopstream.sim.") and m not in sim_shell)
    return [
        *orders,
        *review,  # the review rules engine: language, facts, evaluator, velocity state
        *support,  # ticket understanding, intent model, routing, replies, automation policy
        *anomalies,  # the anomaly detectors, baselines and KPIs
        *catalog,  # product quality checks, mastership, price policy
        "shopstream.connectors.products", "shopstream.connectors.shopify_products",  # catalog payload mapping
        "shopstream.connectors.woocommerce_products", "shopstream.connectors.pim", "shopstream.connectors.pim_file",
        "shopstream.processors.inventory.atp",        # the ATP arithmetic
        "shopstream.processors.inventory.figures",    # the ATP figures per location and over the online ones
        "shopstream.processors.inventory.sku_state",  # the per-SKU state and its stored form
        "shopstream.processors.inventory.shop_sync",  # the per-SKU coalescer
        "shopstream.processors.inventory.config",     # inventory policy data
        "shopstream.processors.shop_writer.core",     # per-SKU coalescing, stale commands, retries, results
        "shopstream.processors.shop_writer.limits",   # the shops' rate limits as arithmetic
        "shopstream.processors.shop_writer.config",   # the shop writer's settings as data
        "shopstream.config", "shopstream.money", "shopstream.redact",
        "shopstream.schemas", "shopstream.schemas.models",
        "shopstream.topology.topics",
        *codecs,  # kernel writers used by the workers, but nothing in them needs a client
        *sim,  # the simulator's generators and oracle (`shopstream simulate`), seeded and I/O-free
    ]


def test_the_pure_core_list_names_real_modules() -> None:
    missing = [m for m in _pure_cores() if m not in _modules()]
    assert not missing, f"pure cores that no longer exist (update _pure_cores): {missing}"
    assert "shopstream.processors.orders.canonical" in _pure_cores()
    assert "shopstream.processors.review.velocity" in _pure_cores()
    assert "shopstream.processors.catalog.core" in _pure_cores()
    assert "shopstream.processors.support.triage" in _pure_cores()
    assert "shopstream.processors.anomalies.engine" in _pure_cores()


def test_pure_cores_load_no_faust_kafka_or_redis_at_import() -> None:
    problems = []
    for module in _pure_cores():
        for name, chain in _import_chains(module).items():
            if name in FORBIDDEN:  # its submodules come with it: one chain per client is enough
                problems.append(" -> ".join(chain))
    assert not problems, "pure cores import clients at import time:\n" + "\n".join(sorted(set(problems)))


def test_third_party_libraries_of_the_pure_cores_load_no_clients() -> None:
    stdlib = sys.stdlib_module_names
    libraries = sorted({name.split(".")[0] for module in _pure_cores() for name in _import_chains(module)
                        if name.split(".")[0] not in stdlib and not name.startswith("shopstream")})
    assert libraries, "expected the pure cores to use some libraries (pydantic, yaml …)"
    code = (f"import sys\nfor m in {libraries!r}: __import__(m)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(FORBIDDEN)!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            timeout=60).stdout.strip()
    assert loaded == "[]", f"importing {libraries} loads {loaded}"


def _feature_of(name: str) -> str | None:
    return next((f for f in FEATURES if name == f or name.startswith(f + ".")), None)


def _kernel_modules() -> list[str]:
    """Modules directly in shopstream/ (not its subpackages), and the codecs and runner packages."""
    return sorted(m for m, path in _modules().items()
                  if (path.parent == ROOT / "shopstream" and m != "shopstream")
                  or any(m == p or m.startswith(p + ".") for p in ("shopstream.codecs", "shopstream.runner")))


def _kernel_violations() -> set[tuple[str, str]]:
    found = set()
    for module in _kernel_modules():
        if module == COMPOSITION_ROOT:
            continue
        for target in _imports(module, False):
            feature = _feature_of(target)
            if feature is not None:
                found.add((module, feature))
    return found


def test_kernel_modules_do_not_import_feature_packages() -> None:
    assert "shopstream.serde" in _kernel_modules() and "shopstream.codecs.avro" in _kernel_modules()
    assert "shopstream.runner.loop" in _kernel_modules()
    new = _kernel_violations() - KNOWN_VIOLATIONS
    assert not new, (f"kernel modules import feature packages (wire them in {COMPOSITION_ROOT} or move the module "
                     f"into a feature package): {sorted(new)}")


def test_known_violations_are_not_stale() -> None:
    stale = KNOWN_VIOLATIONS - _kernel_violations()
    assert not stale, f"no longer violations: remove them from KNOWN_VIOLATIONS: {sorted(stale)}"


def test_the_walk_sees_lazy_and_type_checking_imports_as_such() -> None:
    # the walk itself: cli imports features only inside functions, so at import time it loads none of them
    assert _feature_of("shopstream.processors.orders.app") == "shopstream.processors"
    lazy = _imports(COMPOSITION_ROOT, False) - _imports(COMPOSITION_ROOT, True)
    assert "shopstream.processors.review.tools" in lazy
    assert "shopstream.processors.orders" in _imports("shopstream.processors.orders.canonical", True)


def test_the_workers_table_names_feature_modules_imported_only_when_a_worker_runs() -> None:
    # `shopstream worker` imports its processor by name (cli._WORKERS), which the AST walk cannot see
    from shopstream import cli

    for module, _, _, errors in cli._WORKERS.values():
        for name in (module, *(e.partition(":")[0] for e in errors)):
            assert name in _modules(), name
            assert name not in _imports(COMPOSITION_ROOT, True), name
        assert _feature_of(module) is not None, module


def test_benchmarks_are_imported_only_by_the_bench_handler() -> None:
    # no production process (a worker, a service, the DLQ tools) loads the benchmarks: cli.py imports
    # shopstream.bench inside `cmd_bench` only, never at import time
    bench = "shopstream.bench"
    assert not [m for m in _imports(COMPOSITION_ROOT, True) if _feature_of(m) == bench]
    def imports_bench(node: ast.AST) -> bool:
        if isinstance(node, ast.ImportFrom):
            return _feature_of(node.module or "") == bench
        return isinstance(node, ast.Import) and any(_feature_of(a.name) == bench for a in node.names)

    tree = ast.parse(_modules()[COMPOSITION_ROOT].read_text())
    importers = sorted(f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                       and any(imports_bench(node) for node in ast.walk(f)))
    assert importers == ["cmd_bench"]
    assert not [m for m in _kernel_modules() if m != COMPOSITION_ROOT
                and any(_feature_of(t) == bench for t in _imports(m, False))]
