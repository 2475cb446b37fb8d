"""The real torch-npu wheels, read as text: fetch them with pip, and check a declared surface against them.

torch_npu cannot be imported without CANN, so its contract is read from the
Python sources inside the wheels (a wheel is a zip; nothing is installed or
imported). check_wheel() parses them with ast - what is defined or imported
where, ``__all__``, parameters, literal option tables, the allow_hf32 getters'
logic (evaluated for unset/"enable"/"disable" by a tiny interpreter of the
getter's expression, not by running the wheel's code) - and returns every way
a wheel breaks the surface, each naming the version and the name.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from acceptance.devices.npu import TorchNpuSurface

#: one release per supported line: the oldest API (torch>=2.6 in requirements.txt), the lines Ascend hosts pin,
#: and the newest release (add the next one here when it appears)
VERSIONS = ("2.6.0", "2.8.0.post5", "2.9.0.post9", "2.14.0")
#: the tags those wheels ship (2.6 manylinux2014 / _2_17, later _2_28), so any interpreter can fetch them
PIP_TARGET = ("--python-version", "3.10", "--platform", "manylinux_2_28_x86_64",
              "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64")
CACHE_VARIABLE = "DINOV3_WHEEL_CACHE"
#: the members read: the package's and torch.npu's top level, its dynamo registration, and its entry points
SOURCES = re.compile(r"torch_npu/(__init__|version)\.py|torch_npu/npu/[^/]+\.py|torch_npu/dynamo/__init__\.py"
                     r"|torch_npu/_init/.+\.py|torch_npu/profiler/(__init__|profiler)\.py|[^/]+\.dist-info/entry_points\.txt")
#: pip's words when it could not reach the registry (any other failure is the check's own and must fail)
UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
               "Name or service not known", "Network is unreachable", "No route to host", "Connection refused",
               "ConnectTimeout", "ReadTimeout", "timed out", "ProxyError", "SSLError", "Could not fetch URL",
               "Max retries exceeded")
NPU = "torch_npu/npu/__init__.py"


class RegistryUnreachable(Exception):
    """pip could not reach the package registry (the check skips: it cannot say anything)."""


def cache_folder(environ: dict[str, str] | None = None) -> Path:
    """Where wheels are kept between runs: $DINOV3_WHEEL_CACHE, else ~/.cache/dinov3-acceptance/wheels.

    Not under XDG_CACHE_HOME: CI points that into the clone, which starts empty each run.
    """
    environ = os.environ if environ is None else environ
    folder = environ.get(CACHE_VARIABLE) or str(Path.home() / ".cache" / "dinov3-acceptance" / "wheels")
    return Path(folder).expanduser()


def fetch_wheel(version: str, cache: Path) -> Path:
    """The torch-npu ``version`` wheel in ``cache``, downloaded once (no dependencies, never installed)."""
    cached = sorted(cache.glob(f"torch_npu-{version}-*.whl"))
    if cached:
        return cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    # into a private folder first, then renamed: parallel workers never see half a wheel
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PIP_TARGET,
                   "--dest", folder, "--no-input", "--disable-pip-version-check", "--retries", "1",
                   "--timeout", "30", f"torch-npu=={version}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        said = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            lines = [line for line in said.splitlines() if line.strip()]
            reason = next((line for line in lines if any(word in line for word in UNREACHABLE)), None)
            if reason is not None:
                raise RegistryUnreachable(f"pip could not reach the registry for torch-npu=={version}: "
                                          f"{_short(reason)}")
            raise RuntimeError(f"pip download torch-npu=={version} failed (exit {done.returncode}): {said[-2000:]}")
        wheels = sorted(Path(folder).glob("torch_npu-*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download torch-npu=={version} left no wheel in {folder}: {said[-2000:]}")
        target = cache / wheels[0].name
        os.replace(wheels[0], target)
    return target


def _short(line: str) -> str:
    """The operating system's words from one of pip's connection warnings, else the line itself."""
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", line)
    return errno.group(1).strip() if errno else line.strip()[:300]


@dataclass
class WheelSources:
    """The members of one wheel that the check reads, as text, with their parse trees on demand."""

    version: str
    files: dict[str, str]
    #: every member's name (extension modules are binary: only their presence is read)
    members: frozenset[str]
    _trees: dict[str, ast.Module] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, wheel: Path) -> WheelSources:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            files = {name: archive.read(name).decode("utf-8", errors="replace")
                     for name in names if SOURCES.fullmatch(name)}
        version = wheel.name.split("-")[1]
        return cls(version=version, files=files, members=frozenset(names))

    def tree(self, path: str) -> ast.Module | None:
        if path not in self.files:
            return None
        if path not in self._trees:
            self._trees[path] = ast.parse(self.files[path], path)
        return self._trees[path]


# --- where names are defined ------------------------------------------------------------------------------------

def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside top-level if/try blocks (version and platform guards)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            pending[:0] = node.body + node.orelse + getattr(node, "finalbody", []) + [
                statement for handler in getattr(node, "handlers", []) for statement in handler.body]


def _module_path(sources: WheelSources, importer: str, module: str | None, level: int) -> str | None:
    """The member path of ``from <level dots><module> import ...`` written in ``importer``."""
    if level:
        parts = importer.split("/")[:-1]
        parts = parts[:len(parts) - (level - 1)] if level > 1 else parts
    else:
        parts = []
    parts += module.split(".") if module else []
    base = "/".join(parts)
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in sources.files:
            return candidate
    return None


def exported_names(sources: WheelSources, path: str) -> set[str] | None:
    """The literal ``__all__`` of a module (with += and .extend), None when it has none."""
    tree = sources.tree(path)
    if tree is None:
        return None
    names: set[str] | None = None
    for node in _top_level(tree):
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            names, value = set(), node.value
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__":
            value = node.value
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
              and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "extend"
              and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id == "__all__"
              and node.value.args):
            value = node.value.args[0]
        if value is not None:
            try:
                names = (names or set()) | set(ast.literal_eval(value))
            except ValueError:  # computed __all__: only its literal parts are known
                pass
    return names


def find_definition(sources: WheelSources, path: str, name: str,
                    seen: frozenset[tuple[str, str]] = frozenset()) -> tuple[str, ast.AST] | None:
    """(module path, node) where ``name`` as seen from module ``path`` is defined, following imports.

    node is a FunctionDef/ClassDef, or the Assign that binds the name.
    """
    tree = sources.tree(path)
    if tree is None or (path, name) in seen:
        return None
    seen = seen | {(path, name)}
    found: tuple[str, ast.AST] | None = None
    for node in _top_level(tree):  # the last binding wins, as when the module runs
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            found = (path, node)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            found = (path, node)
        elif isinstance(node, ast.ImportFrom):
            source = _module_path(sources, path, node.module, node.level)
            for alias in node.names:
                if alias.name == "*" and source is not None and name in (exported_names(sources, source) or ()):
                    found = find_definition(sources, source, name, seen) or found
                elif (alias.asname or alias.name) == name:
                    found = (find_definition(sources, source, alias.name, seen) if source else None) or (path, node)
    return found


def _where(path: str, node: ast.AST) -> str:
    return f"{path}:{getattr(node, 'lineno', '?')}"


def _accepts(function: ast.FunctionDef, positional: int, keywords: tuple[str, ...] = (),
             bound: int = 0) -> str | None:
    """None when ``function`` accepts ``positional`` positional arguments and ``keywords``, else why not.

    ``bound`` leading parameters (self, cls) are filled by Python."""
    arguments = function.args
    ordered = (arguments.posonlyargs + arguments.args)[bound:]
    required = len(ordered) - len(arguments.defaults)
    signature = ", ".join(a.arg for a in ordered) or "no arguments"
    if positional > len(ordered) and arguments.vararg is None:
        return f"takes ({signature}) but the suite passes {positional} positional argument(s)"
    if positional < required:
        return f"takes ({signature}) and needs {required} argument(s); the suite passes {positional}"
    names = {a.arg for a in arguments.posonlyargs[bound:]}
    keyword_names = {a.arg for a in ordered if a.arg not in names} | {a.arg for a in arguments.kwonlyargs}
    missing = [k for k in keywords if k not in keyword_names and arguments.kwarg is None]
    if missing:
        return f"takes ({signature}): no keyword {', '.join(missing)}"
    return None


# --- the allow_hf32 getters ----------------------------------------------------------------------------------------

class _Unreadable(Exception):
    """An expression the getter interpreter does not know: the check fails rather than guess."""


def _evaluate(node: ast.expr, names: dict[str, Any]) -> Any:
    """The value of a getter's expression over bytes/None variables (comparisons, and/or/not, .decode())."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for operand in node.values:
            value = _evaluate(operand, names)
            if isinstance(node.op, ast.And) and not value or isinstance(node.op, ast.Or) and value:
                return value
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _evaluate(node.operand, names)
    if isinstance(node, ast.IfExp):
        return _evaluate(node.body if _evaluate(node.test, names) else node.orelse, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "decode" \
            and not node.args and not node.keywords:
        value = _evaluate(node.func.value, names)
        if not isinstance(value, bytes):
            raise _Unreadable(f"calls .decode() on {value!r}")
        return value.decode()
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, names)
        for operator, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, names)
            compare = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Is: lambda a, b: a is b,
                       ast.IsNot: lambda a, b: a is not b, ast.In: lambda a, b: a in b,
                       ast.NotIn: lambda a, b: a not in b}.get(type(operator))
            if compare is None:
                raise _Unreadable(f"compares with {type(operator).__name__}")
            if not compare(left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return tuple(_evaluate(element, names) for element in node.elts)
    raise _Unreadable(f"uses {ast.dump(node)[:80]}")


def _branch_for(method: ast.FunctionDef, attribute: str) -> list[ast.stmt] | None:
    """The body of ``if name == "<attribute>":`` (or an elif) in a __getattr__/__setattr__."""
    for node in ast.walk(method):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1 \
                and isinstance(node.test.ops[0], ast.Eq):
            sides = [node.test.left, node.test.comparators[0]]
            if any(isinstance(side, ast.Constant) and side.value == attribute for side in sides):
                return node.body
    return None


def _option_read(statement: ast.stmt, c_function: str) -> tuple[str, str] | None:
    """(variable, option) for ``variable = ..._C._npu_getOption("OPTION")``."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name) and isinstance(statement.value, ast.Call) \
            and isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr == c_function \
            and statement.value.args and isinstance(statement.value.args[0], ast.Constant):
        return statement.targets[0].id, statement.value.args[0].value
    return None


def getter_values(branch: list[ast.stmt], c_function: str) -> tuple[str, dict[Any, Any]]:
    """(the option the getter reads, {registry value: what the getter returns}) for unset and set values."""
    read = None
    returned = None
    for statement in branch:
        read = read or _option_read(statement, c_function)
        if isinstance(statement, ast.Return) and statement.value is not None:
            returned = statement.value
            break
    if read is None or returned is None:
        raise _Unreadable(f"no `x = torch_npu._C.{c_function}(\"OPTION\")` followed by a return")
    variable, option = read
    return option, {value: _evaluate(returned, {variable: value}) for value in (None, b"", b"enable", b"disable")}


def _class_of_instance(sources: WheelSources, path: str, node: ast.AST) -> tuple[str, ast.ClassDef] | None:
    """For ``conv = npu_config._allowHF32Conv()``: the class that is instantiated."""
    if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
        return None
    func = node.value.func
    if isinstance(func, ast.Name):
        found = find_definition(sources, path, func.id)
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        module = _module_path(sources, path, func.value.id, 1)  # a sibling module (package attribute)
        found = find_definition(sources, module, func.attr) if module else None
    else:
        found = None
    if found is not None and isinstance(found[1], ast.ClassDef):
        return found[0], found[1]
    return None


def _method(klass: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((node for node in klass.body if isinstance(node, ast.FunctionDef) and node.name == name), None)


# --- the check ---------------------------------------------------------------------------------------------------

def check_wheel(sources: WheelSources, surface: TorchNpuSurface) -> list[str]:
    """Every way one wheel's sources break ``surface``; [] when the wheel offers all of it as the suite uses it."""
    problems: list[str] = []
    say = lambda name, problem: problems.append(f"torch-npu {sources.version}: {name}: {problem}")  # noqa: E731
    if sources.tree(NPU) is None:
        return [f"torch-npu {sources.version}: the wheel has no {NPU}"]
    public = exported_names(sources, NPU) or set()

    def defined(name: str) -> tuple[str, ast.AST] | None:
        if name not in public:
            say(f"torch.npu.{name}", f"not in {NPU}'s __all__")
        found = find_definition(sources, NPU, name)
        if found is None:
            say(f"torch.npu.{name}", "not defined or imported in torch_npu/npu")
        return found

    for name, positional in surface.functions.items():
        found = defined(name)
        if found is None:
            continue
        path, node = found
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            say(f"torch.npu.{name}", f"bound at {_where(path, node)}, not a Python function: "
                                     "its call cannot be checked")
            continue
        why = _accepts(node, positional)
        if why:
            say(f"torch.npu.{name}", f"{why} ({_where(path, node)})")

    found = defined("Event")
    if found is not None:
        path, event = found
        if not isinstance(event, ast.ClassDef):
            say("torch.npu.Event", f"bound at {_where(path, event)}, not a class")
        else:
            constructor = _method(event, "__new__") or _method(event, "__init__")
            if constructor is None:
                say("torch.npu.Event", f"no __new__/__init__ in {_where(path, event)}: its keywords cannot be checked")
            else:
                why = _accepts(constructor, 0, surface.event_keywords, bound=1)
                if why:
                    say("torch.npu.Event", f"{why} ({_where(path, constructor)})")
            for method_name, positional in surface.event_methods.items():
                method = _method(event, method_name)
                if method is None:
                    say(f"torch.npu.Event.{method_name}", f"not defined in {_where(path, event)}")
                else:
                    why = _accepts(method, positional, bound=1)
                    if why:
                        say(f"torch.npu.Event.{method_name}", f"{why} ({_where(path, method)})")

    getter_function = surface.c_functions[0] if surface.c_functions else "_npu_getOption"
    for group, (option, unset) in surface.hf32_switches.items():
        name = f"torch.npu.{group}.allow_hf32"
        found = defined(group)
        klass = _class_of_instance(sources, *found) if found else None
        if found is not None and klass is None:
            say(f"torch.npu.{group}", f"bound at {_where(*found)}, not an instance of a class in the wheel")
        if klass is None:
            continue
        path, holder = klass
        getter, setter = _method(holder, "__getattr__"), _method(holder, "__setattr__")
        branch = _branch_for(getter, "allow_hf32") if getter else None
        if branch is None:
            say(name, f"{holder.name} ({_where(path, holder)}) has no __getattr__ branch for allow_hf32")
        else:
            try:
                read, values = getter_values(branch, getter_function)
            except _Unreadable as error:
                say(name, f"the getter in {_where(path, holder)} cannot be read: {error}")
            else:
                expected = {None: unset, b"": unset, b"enable": True, b"disable": False}
                if read != option:
                    say(name, f"the getter reads option {read!r}, the suite expects {option!r}")
                if values != expected:
                    say(name, f"the getter gives {values} for the option's values, the suite expects {expected} "
                              f"(unset means {'on' if unset else 'off'})")
        set_branch = _branch_for(setter, "allow_hf32") if setter else None
        keys = {key.value for statement in set_branch or [] for node in ast.walk(statement)
                if isinstance(node, ast.Dict) for key in node.keys if isinstance(key, ast.Constant)}
        if option not in keys:
            say(name, f"{holder.name} ({_where(path, holder)}) has no __setattr__ branch that sets {option!r}")

    setter_found = find_definition(sources, NPU, "set_option")
    for option, allowed in surface.options.items():
        tables = [node.value for node in _top_level(sources.tree(setter_found[0]))
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)] if setter_found else []
        values = None
        for table in tables:
            for key, value in zip(table.keys, table.values):
                if isinstance(key, ast.Constant) and key.value == option:
                    try:
                        values = set(ast.literal_eval(value))
                    except (ValueError, TypeError):  # a validating function, or None: any value
                        say(f"set_option {option}", f"its allowed values in {_where(setter_found[0], value)} "
                                                    "are not a literal list")
                        values = set(allowed)
        if setter_found is None:
            continue
        if values is None:
            say(f"set_option {option}", f"no table of allowed values for it in {setter_found[0]}")
        elif values != set(allowed):
            say(f"set_option {option}", f"the wheel accepts {sorted(values)}, the suite declares {sorted(allowed)}")

    package = sources.tree("torch_npu/__init__.py")
    for attribute in surface.package_attributes:
        submodule = any(member == f"torch_npu/{attribute}.py" or member.startswith(f"torch_npu/{attribute}/")
                        or re.fullmatch(rf"torch_npu/{re.escape(attribute)}\.[^/]*\.(so|pyd)", member)
                        for member in sources.members)
        if not submodule and (package is None or find_definition(sources, "torch_npu/__init__.py", attribute) is None):
            say(f"torch_npu.{attribute}", "neither bound in torch_npu/__init__.py nor a submodule of the wheel")

    profiler_module = "torch_npu/profiler/__init__.py"
    profiler_public = exported_names(sources, profiler_module) or set()
    for name in surface.profiler_names:
        if name not in profiler_public or find_definition(sources, profiler_module, name) is None:
            say(f"torch_npu.profiler.{name}", f"not in {profiler_module}'s __all__ or not bound there")

    used = {node.attr for path in sources.files if path.endswith(".py") for node in ast.walk(sources.tree(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "_C"}
    for c_function in surface.c_functions:
        if c_function not in used:
            say(f"torch_npu._C.{c_function}", "never used by the wheel's own Python code (the extension module "
                                              "is binary: its use there is the evidence that it exists)")

    registered = _registrations(sources)
    for function in ("rename_privateuse1_backend", "_register_device_module"):
        if surface.device_type not in registered.get(function, set()):
            say(f"device type {surface.device_type!r}", f"no {function}({surface.device_type!r}) call "
                                                         "in torch_npu/__init__.py or torch_npu/_init")
    backends = _dynamo_backends(sources)
    if surface.compile_backend not in backends:
        say(f"torch.compile backend {surface.compile_backend!r}",
            f"not registered with dynamo (registered: {sorted(backends) or 'none'})")
    return problems


def _registrations(sources: WheelSources) -> dict[str, set[str]]:
    """{function: first literal arguments} of the registration calls made when torch_npu is imported."""
    calls: dict[str, set[str]] = {}
    for path in sources.files:
        if path == "torch_npu/__init__.py" or path.startswith("torch_npu/_init/"):
            for node in ast.walk(sources.tree(path)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                        and isinstance(node.args[0], ast.Constant):
                    calls.setdefault(node.func.attr, set()).add(node.args[0].value)
    return calls


def _dynamo_backends(sources: WheelSources) -> set[str]:
    """Backend names torch_npu gives dynamo: [torch_dynamo_backends] entry points, and register_backend calls
    in torch_npu/dynamo (the name literal, or the default of the helper's parameter that carries it)."""
    names: set[str] = set()
    for path, text in sources.files.items():
        if path.endswith(".dist-info/entry_points.txt"):
            parser = configparser.ConfigParser(delimiters=("=",))
            parser.optionxform = str  # type: ignore[assignment]  - entry point names are case-sensitive
            parser.read_string(text)
            if parser.has_section("torch_dynamo_backends"):
                names |= set(parser.options("torch_dynamo_backends"))
    tree = sources.tree("torch_npu/dynamo/__init__.py")
    if tree is None:
        return names
    constants = {target.id: node.value.value for node in _top_level(tree) if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) for target in node.targets if isinstance(target, ast.Name)}
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]

    def called(node: ast.Call) -> str | None:
        return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)

    def literal(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    for helper in functions.values():
        for call in (c for c in ast.walk(helper) if isinstance(c, ast.Call)):
            if called(call) not in ("register_backend", "_register_backend") or len(call.args) < 2:
                continue
            argument = call.args[1]
            if literal(argument) is not None:
                names.add(literal(argument))
                continue
            parameters = [a.arg for a in helper.args.args]
            if not isinstance(argument, ast.Name) or argument.id not in parameters:
                continue
            index = parameters.index(argument.id)
            default_at = index - (len(parameters) - len(helper.args.defaults))
            default = literal(helper.args.defaults[default_at]) if default_at >= 0 else None
            for use in (c for c in calls if called(c) == helper.name):
                given = next((k.value for k in use.keywords if k.arg == argument.id), None)
                given = use.args[index] if given is None and len(use.args) > index else given
                name = literal(given) if given is not None else default
                if name is not None:
                    names.add(name)
    return names
