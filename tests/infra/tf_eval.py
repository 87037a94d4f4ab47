"""A small, strict evaluator for the phmx Terraform (static: no provider, no AWS).

It parses the .tf files with python-hcl2 (either flavour that may be installed: the one vendored for
checkov, ``bc-python-hcl2``, or ``python-hcl2`` 8), evaluates the subset of HCL expressions that
the phmx modules use (references, templates, indexes, for expressions, conditionals, a few
functions), expands ``for_each``/``count`` for a given tfvars file, and renders
``aws_iam_policy_document`` data sources into IAM JSON-like dicts. Attributes only known after
apply are synthesised in AWS's format (ARNs) from the resource's own arguments, so policies can be
checked against real ARNs (e.g. ``arn:aws:s3:::phmx-dev-landing-111122223333/plan_lacare/*``).

Anything outside the supported subset raises ``TfEvalError``: a test then fails loudly instead of
passing on a half-evaluated policy.

It also carries a tiny IAM policy simulator (``decide``) for identity and bucket policies.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

FACT_ACCOUNT = "account_id"
LABELS = {"resource": 2, "data": 2, "module": 1, "variable": 1, "output": 1, "provider": 1, "dynamic": 1,
          "backend": 1}


class TfEvalError(Exception):
    """The configuration uses something this evaluator does not support, or refers to nothing."""


# ====================================================================== parsing and normalisation
@dataclass
class Block:
    type: str
    labels: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, list[Block]] = field(default_factory=dict)

    def all(self, name: str) -> list[Block]:
        return self.blocks.get(name, [])


def _strip_quotes(s: str) -> str:
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def _v8_value(v: Any) -> Any:
    if isinstance(v, str):
        return _strip_quotes(v)
    if isinstance(v, list):
        return [_v8_value(x) for x in v]
    if isinstance(v, dict):
        return {_strip_quotes(k): _v8_value(x) for k, x in v.items() if not k.startswith("__")}
    return v


def _names_used_as_blocks(text: str) -> tuple[set[str], set[str]]:
    blocks = set(re.findall(r'^\s*([A-Za-z_][\w-]*)\s*(?:"[^"\n]*"\s*)*\{', text, re.M))
    attrs = set(re.findall(r"^\s*([A-Za-z_][\w-]*)\s*=", text, re.M))
    return blocks, attrs


class _Normaliser:
    """Turn either hcl2 flavour's dict into Block trees."""

    def __init__(self, text: str, raw: dict):
        # bc-python-hcl2 (0.x, vendored for checkov) wraps attribute values in lists; python-hcl2 >= 7
        # keeps the quotes of string literals and marks blocks with __is_block__.
        self.v8 = not str(getattr(hcl2, "__version__", "0")).startswith("0.") or "__is_block__" in json.dumps(raw)
        self.block_names, attr_names = _names_used_as_blocks(text)
        clash = (self.block_names & attr_names) - {"dynamic"}
        if clash and not self.v8:
            raise TfEvalError(f"names used both as block and attribute in one file: {sorted(clash)}")

    def body(self, btype: str, labels: list[str], d: dict) -> Block:
        b = Block(btype, labels)
        for k, v in d.items():
            if k.startswith("__"):
                continue
            k = _strip_quotes(k)
            if self._is_block(k, v):
                b.blocks.setdefault(k, []).extend(self.blocks(k, v))
            else:
                b.attrs[k] = self.value(v)
        return b

    def _is_block(self, key: str, v: Any) -> bool:
        if self.v8:
            items = v if isinstance(v, list) else [v]
            return bool(items) and all(isinstance(x, dict) and x.get("__is_block__") for x in items) or (
                key in LABELS and isinstance(v, list) and all(isinstance(x, dict) for x in v))
        return key in self.block_names and isinstance(v, list) and all(isinstance(x, dict) for x in v)

    def blocks(self, btype: str, items: list[dict]) -> list[Block]:
        out: list[Block] = []
        n = LABELS.get(btype, 0)
        for item in items:
            out.extend(self._unlabel(btype, item, n, []))
        return out

    def _unlabel(self, btype: str, d: dict, n: int, labels: list[str]) -> list[Block]:
        if n == 0:
            return [self.body(btype, labels, d)]
        out = []
        for k, v in d.items():
            if k.startswith("__"):
                continue
            out.extend(self._unlabel(btype, v, n - 1, [*labels, _strip_quotes(k)]))
        return out

    def value(self, v: Any) -> Any:
        if self.v8:
            return _v8_value(v)
        # bc-python-hcl2 wraps every attribute value in a one-element list
        if isinstance(v, list) and len(v) == 1:
            return v[0]
        return v


def parse_file(path: Path) -> Block:
    text = path.read_text()
    raw = hcl2.loads(text)
    norm = _Normaliser(text, raw)
    root = Block("file", [str(path)])
    for k, v in raw.items():
        if k.startswith("__"):
            continue
        if k in LABELS or k in ("locals", "terraform"):
            root.blocks.setdefault(k, []).extend(norm.blocks(k, v if isinstance(v, list) else [v]))
        else:
            root.attrs[k] = norm.value(v)
    return root


def parse_tfvars(path: Path) -> dict[str, Any]:
    return parse_file(path).attrs


# ====================================================================== expressions
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>==|!=|<=|>=|&&|\|\||=>|\.\.\.|[-+*/%<>!?:.,\[\](){}=])
  | (?P<name>[A-Za-z_][\w-]*)
""", re.X)


def _scan_string(src: str, i: int) -> int:
    """src[i] is the opening quote; return the index after the closing quote."""
    i += 1
    depth = 0
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if src.startswith("${", i):
            depth += 1
            i += 2
            continue
        if depth and c == '"':
            i = _scan_string(src, i)
            continue
        if depth and c == "}":
            depth -= 1
        elif not depth and c == '"':
            return i + 1
        i += 1
    raise TfEvalError(f"unterminated string in {src!r}")


def tokenize(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(src):
        if src[i] == '"':
            j = _scan_string(src, i)
            out.append(("str", src[i + 1:j - 1]))
            i = j
            continue
        if src[i] == "'":
            # bc-python-hcl2 renders lists nested in expressions as Python reprs: ['${x}']
            j = src.index("'", i + 1)
            out.append(("str", src[i + 1:j]))
            i = j + 1
            continue
        m = _TOKEN.match(src, i)
        if not m:
            raise TfEvalError(f"cannot tokenize {src[i:i + 20]!r} in {src!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group()))
        i = m.end()
    out.append(("eof", ""))
    return out


def split_template(s: str) -> list[tuple[str, str]]:
    """Split a template string into ('lit', text) and ('expr', source) parts."""
    parts: list[tuple[str, str]] = []
    i, buf = 0, []
    while i < len(s):
        if s.startswith("$${", i):
            buf.append("${")
            i += 3
        elif s.startswith("%{", i):
            raise TfEvalError(f"template directives are not supported: {s!r}")
        elif s.startswith("${", i):
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            j, depth = i + 2, 1
            while depth:
                if j >= len(s):
                    raise TfEvalError(f"unbalanced interpolation in {s!r}")
                if s[j] == '"':
                    j = _scan_string(s, j)
                    continue
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                j += 1
            parts.append(("expr", s[i + 2:j - 1]))
            i = j
        else:
            buf.append(s[i])
            i += 1
    if buf:
        parts.append(("lit", "".join(buf)))
    return parts


def _unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


class Parser:
    """Recursive-descent parser producing tuples (an AST)."""

    def __init__(self, src: str):
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.toks[self.i + k]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise TfEvalError(f"expected {value!r}, got {tok[1]!r} in {self.src!r}")
        self.i += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.peek()[0] != "eof":
            raise TfEvalError(f"trailing tokens {self.peek()!r} in {self.src!r}")
        return node

    def expr(self):
        cond = self.binary(0)
        if self.peek()[1] == "?":
            self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    PREC = [("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%")]

    def binary(self, level: int):
        if level == len(self.PREC):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self.PREC[level]:
            op = self.take()[1]
            left = ("bin", op, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.peek()[1] in ("!", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            return ("un", op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            t = self.peek()
            if t == ("op", "."):
                self.take()
                name = self.take()
                if name[0] not in ("name", "num"):
                    raise TfEvalError(f"bad attribute access in {self.src!r}")
                node = ("getattr", node, name[1])
            elif t == ("op", "[") and self.peek(1) != ("op", "*"):
                self.take()
                idx = self.expr()
                self.take("]")
                node = ("index", node, idx)
            elif t == ("op", "[") or (t == ("op", ".") and self.peek(1) == ("op", "*")):
                raise TfEvalError(f"splat expressions are not supported: {self.src!r}")
            else:
                return node

    def primary(self):
        kind, val = self.take()
        if kind == "num":
            return ("lit", float(val) if "." in val else int(val))
        if kind == "str":
            return ("tmpl", val)
        if kind == "name":
            # bc-python-hcl2 writes literals inside expressions the Python way (None, True, False)
            if val in ("true", "false", "True", "False"):
                return ("lit", val in ("true", "True"))
            if val in ("null", "None"):
                return ("lit", None)
            if self.peek() == ("op", "("):
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.expr())
                    if self.peek()[1] == "...":
                        raise TfEvalError("argument expansion is not supported")
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take(")")
                return ("call", val, args)
            return ("ref", val)
        if (kind, val) == ("op", "("):
            node = self.expr()
            self.take(")")
            return node
        if (kind, val) == ("op", "["):
            if self.peek() == ("name", "for"):
                return self.for_expr("]")
            items = []
            while self.peek()[1] != "]":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return ("list", items)
        if (kind, val) == ("op", "{"):
            if self.peek() == ("name", "for"):
                return self.for_expr("}")
            items = []
            while self.peek()[1] != "}":
                k = self.take()
                if k[0] == "name":
                    key = ("lit", k[1])
                elif k[0] == "str":
                    key = ("tmpl", k[1])
                elif k == ("op", "("):
                    key = self.expr()
                    self.take(")")
                else:
                    raise TfEvalError(f"bad object key {k!r} in {self.src!r}")
                if self.peek()[1] not in ("=", ":"):
                    raise TfEvalError(f"expected = in object in {self.src!r}")
                self.take()
                items.append((key, self.expr()))
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
            return ("obj", items)
        raise TfEvalError(f"unexpected token {val!r} in {self.src!r}")

    def for_expr(self, close: str):
        self.take("for")
        names = [self.take()[1]]
        if self.peek()[1] == ",":
            self.take(",")
            names.append(self.take()[1])
        self.take("in")
        coll = self.expr()
        self.take(":")
        first = self.expr()
        second = None
        if close == "}":
            self.take("=>")
            second = self.expr()
            if self.peek()[1] == "...":
                raise TfEvalError("grouping for expressions are not supported")
        cond = None
        if self.peek() == ("name", "if"):
            self.take("if")
            cond = self.expr()
        self.take(close)
        return ("for", close, names, coll, first, second, cond)


_AST_CACHE: dict[str, Any] = {}


def parse_expr(src: str):
    if src not in _AST_CACHE:
        _AST_CACHE[src] = Parser(src).parse()
    return _AST_CACHE[src]


# ====================================================================== values for after-apply attributes
def _arn(facts: dict, service: str, resource: str, region: bool = True, account: bool = True) -> str:
    return ":".join(["arn", "aws", service, facts["region"] if region else "",
                     facts[FACT_ACCOUNT] if account else "", resource])


def computed_attr(rtype: str, name: str, key: Any, conf: Instance, attr: str, facts: dict) -> Any:
    """Attributes known only after apply, synthesised in AWS's format."""
    tag = f"{name}" + (f"-{key}" if key is not None else "")
    if rtype == "aws_s3_bucket":
        bucket = conf.arg("bucket")
        return {"arn": f"arn:aws:s3:::{bucket}", "id": bucket, "bucket": bucket}.get(attr)
    if rtype == "aws_kms_key":
        key_id = f"key-{tag}"
        return {"arn": _arn(facts, "kms", f"key/{key_id}"), "key_id": key_id, "id": key_id}.get(attr)
    if rtype == "aws_kms_alias":
        return {"name": conf.arg("name"), "arn": _arn(facts, "kms", conf.arg("name"))}.get(attr)
    if rtype in ("aws_iam_role", "aws_iam_policy"):
        kind = "role" if rtype == "aws_iam_role" else "policy"
        n = conf.arg("name")
        return {"arn": _arn(facts, "iam", f"{kind}/{n}", region=False), "name": n, "id": n}.get(attr)
    if rtype == "aws_emrserverless_application":
        app_id = f"app-{tag}"
        return {"id": app_id, "arn": _arn(facts, "emr-serverless", f"/applications/{app_id}"),
                "release_label": conf.arg("release_label")}.get(attr)
    if rtype == "aws_cloudtrail":
        return {"arn": _arn(facts, "cloudtrail", f"trail/{conf.arg('name')}")}.get(attr)
    if rtype == "aws_cloudwatch_log_group":
        return {"arn": _arn(facts, "logs", f"log-group:{conf.arg('name')}"), "name": conf.arg("name")}.get(attr)
    if rtype == "aws_sns_topic":
        return {"arn": _arn(facts, "sns", conf.arg("name")), "name": conf.arg("name"), "id": conf.arg("name")}.get(attr)
    if rtype == "aws_mwaa_environment":
        return {"arn": _arn(facts, "airflow", f"environment/{conf.arg('name')}"),
                "webserver_url": f"{conf.arg('name')}.airflow.example"}.get(attr)
    if rtype == "aws_s3_object":
        return {"key": conf.arg("key"), "version_id": f"v-{tag}", "id": conf.arg("key")}.get(attr)
    if attr in ("id", "arn", "prefix_list_id", "version_id", "key_id"):
        return f"<{rtype}.{tag}.{attr}>"
    return None


# ====================================================================== modules and instances
class Instance:
    """One resource / data instance: arguments evaluated on demand with each.* / count.* bound."""

    def __init__(self, module: Module, kind: str, block: Block, key: Any = None, value: Any = None,
                 count_index: int | None = None):
        self.module, self.kind, self.block = module, kind, block
        self.rtype, self.name = block.labels
        self.key, self.value, self.count_index = key, value, count_index

    @property
    def address(self) -> str:
        base = f"{'data.' if self.kind == 'data' else ''}{self.rtype}.{self.name}"
        if self.count_index is not None:
            return f"{base}[{self.count_index}]"
        return base if self.key is None else f"{base}[{json.dumps(self.key)}]"

    def scope(self) -> dict[str, Any]:
        s: dict[str, Any] = {}
        if self.key is not None or self.value is not None:
            s["each"] = {"key": self.key, "value": self.value}
        if self.count_index is not None:
            s["count"] = {"index": self.count_index}
        return s

    def arg(self, name: str, default: Any = None) -> Any:
        if name not in self.block.attrs:
            return default
        return self.module.eval_value(self.block.attrs[name], self.scope())

    def nested(self, name: str, block: Block | None = None, scope: dict | None = None) -> list[dict]:
        """Evaluate nested blocks (static and dynamic) named `name` into dicts."""
        return self.module.eval_nested(block or self.block, name, {**self.scope(), **(scope or {})})

    def get(self, attr: str) -> Any:
        if self.kind == "data":
            return self.module.data_attr(self, attr)
        if attr in self.block.attrs:
            return self.arg(attr)
        val = computed_attr(self.rtype, self.name, self.key if self.count_index is None else self.count_index,
                            self, attr, self.module.facts)
        if val is None:
            raise TfEvalError(f"{self.address}.{attr}: unknown attribute")
        return val


class ModuleRef:
    def __init__(self, module: Module):
        self.module = module

    def get(self, attr: str) -> Any:
        return self.module.output(attr)


class Module:
    def __init__(self, directory: Path, inputs: dict[str, Any], facts: dict[str, str],
                 path: str = "root"):
        self.dir = Path(directory)
        self.facts = facts
        self.path = path
        self._inputs = inputs  # name -> value, or a zero-argument callable (lazy, parent scope)
        self._input_cache: dict[str, Any] = {}
        self.variables: dict[str, Block] = {}
        self.locals: dict[str, Any] = {}
        self.outputs: dict[str, Block] = {}
        self.module_calls: dict[str, Block] = {}
        self.resources: dict[tuple[str, str], Block] = {}
        self.data: dict[tuple[str, str], Block] = {}
        for f in sorted(self.dir.glob("*.tf")):
            root = parse_file(f)
            for b in root.all("variable"):
                self.variables[b.labels[0]] = b
            for b in root.all("locals"):
                self.locals.update(b.attrs)
            for b in root.all("output"):
                self.outputs[b.labels[0]] = b
            for b in root.all("module"):
                self.module_calls[b.labels[0]] = b
            for b in root.all("resource"):
                self.resources[(b.labels[0], b.labels[1])] = b
            for b in root.all("data"):
                self.data[(b.labels[0], b.labels[1])] = b
        unknown = set(inputs) - set(self.variables)
        if unknown:
            raise TfEvalError(f"{path}: inputs for undeclared variables {sorted(unknown)}")
        self._local_cache: dict[str, Any] = {}
        self._in_progress: set[str] = set()
        self._children: dict[str, Module] = {}
        self._instances: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ names
    def var(self, name: str) -> Any:
        if name in self._input_cache:
            return self._input_cache[name]
        if name not in self.variables:
            raise TfEvalError(f"{self.path}: var.{name} is not declared")
        if name in self._inputs:
            v = self._inputs[name]
            v = v() if callable(v) else v
        elif "default" in self.variables[name].attrs:
            v = self.eval_value(self.variables[name].attrs["default"], {})
        else:
            raise TfEvalError(f"{self.path}: var.{name} has no value and no default")
        v = self._apply_optional_defaults(name, v)
        self._input_cache[name] = v
        return v

    def _apply_optional_defaults(self, name: str, v: Any) -> Any:
        """optional(...) object attributes absent from the value become null."""
        t = self.variables[name].attrs.get("type")
        if isinstance(t, str) and isinstance(v, dict):
            # HCL source (name = optional(...)) or bc-python-hcl2's repr ('name': '${optional(...)}')
            opts = re.findall(r"['\"]?(\w+)['\"]?\s*[=:]\s*['\"]?(?:\$\{)?optional\(", t)
            if opts and "map(object" in re.sub(r"\s", "", t):
                return {k: ({**{o: None for o in opts}, **item} if isinstance(item, dict) else item)
                        for k, item in v.items()}
        return v

    def local(self, name: str) -> Any:
        if name in self._local_cache:
            return self._local_cache[name]
        if name not in self.locals:
            raise TfEvalError(f"{self.path}: local.{name} is not defined")
        if name in self._in_progress:
            raise TfEvalError(f"{self.path}: local.{name} depends on itself")
        self._in_progress.add(name)
        try:
            v = self.eval_value(self.locals[name], {})
        finally:
            self._in_progress.discard(name)
        self._local_cache[name] = v
        return v

    def child(self, name: str) -> Module:
        if name not in self._children:
            if name not in self.module_calls:
                raise TfEvalError(f"{self.path}: module.{name} is not declared")
            call = self.module_calls[name]
            src = call.attrs.get("source")
            if not isinstance(src, str) or not src.startswith("."):
                raise TfEvalError(f"{self.path}: module.{name} needs a local source")
            if "for_each" in call.attrs or "count" in call.attrs:
                raise TfEvalError("module for_each/count is not supported")
            inputs = {k: (lambda e=e: self.eval_value(e, {})) for k, e in call.attrs.items()
                      if k not in ("source", "providers", "depends_on", "version")}
            self._children[name] = Module((self.dir / src).resolve(), inputs, self.facts,
                                          f"{self.path}.{name}")
        return self._children[name]

    def output(self, name: str) -> Any:
        if name not in self.outputs:
            raise TfEvalError(f"{self.path}: output {name} is not declared")
        return self.eval_value(self.outputs[name].attrs["value"], {})

    def instances(self, kind: str, rtype: str, name: str) -> Any:
        """Instance, list (count) or dict (for_each) for a resource or data block."""
        ck = (kind, rtype, name)
        if ck in self._instances:
            return self._instances[ck]
        table = self.data if kind == "data" else self.resources
        if (rtype, name) not in table:
            raise TfEvalError(f"{self.path}: {'data.' if kind == 'data' else ''}{rtype}.{name} is not declared")
        b = table[(rtype, name)]
        if "for_each" in b.attrs:
            fe = self.eval_value(b.attrs["for_each"], {})
            items = fe.items() if isinstance(fe, dict) else ((x, x) for x in fe)
            out: Any = {k: Instance(self, kind, b, key=k, value=v) for k, v in items}
        elif "count" in b.attrs:
            n = self.eval_value(b.attrs["count"], {})
            out = [Instance(self, kind, b, count_index=i) for i in range(int(n))]
        else:
            out = Instance(self, kind, b)
        self._instances[ck] = out
        return out

    def all_instances(self, rtype: str, kind: str = "resource") -> list[Instance]:
        table = self.data if kind == "data" else self.resources
        out: list[Instance] = []
        for (t, n) in table:
            if t != rtype:
                continue
            inst = self.instances(kind, t, n)
            out.extend(inst.values() if isinstance(inst, dict) else inst if isinstance(inst, list) else [inst])
        return out

    def walk(self):
        """This module and every descendant module (depth first)."""
        yield self
        for name in self.module_calls:
            yield from self.child(name).walk()

    # ------------------------------------------------------------------ data sources
    def data_attr(self, inst: Instance, attr: str) -> Any:
        if inst.rtype == "aws_caller_identity":
            return {"account_id": self.facts[FACT_ACCOUNT]}[attr]
        if inst.rtype == "aws_region":
            return {"name": self.facts["region"], "id": self.facts["region"]}[attr]
        if inst.rtype == "aws_partition":
            return {"partition": "aws", "dns_suffix": "amazonaws.com"}[attr]
        if inst.rtype == "aws_iam_policy_document":
            if attr != "json":
                raise TfEvalError(f"{inst.address}.{attr} is not supported")
            return json.dumps(self.render_policy(inst))
        raise TfEvalError(f"data source {inst.rtype} is not supported")

    def render_policy(self, inst: Instance) -> dict:
        statements: list[dict] = []
        for src in inst.arg("source_policy_documents", []) or []:
            statements.extend(json.loads(src)["Statement"])
        for st in inst.nested("statement"):
            out: dict[str, Any] = {"Effect": st.get("effect", "Allow")}
            if st.get("sid"):
                out["Sid"] = st["sid"]
            for key, tf in (("Action", "actions"), ("NotAction", "not_actions"), ("Resource", "resources"),
                            ("NotResource", "not_resources")):
                if st.get(tf) is not None:
                    out[key] = list(st[tf])
            for key, tf in (("Principal", "principals"), ("NotPrincipal", "not_principals")):
                if st.get(tf):
                    p: dict[str, list[str]] = {}
                    for pr in st[tf]:
                        p.setdefault(pr["type"], []).extend(pr["identifiers"])
                    out[key] = p
            if st.get("condition"):
                cond: dict[str, dict[str, list[str]]] = {}
                for c in st["condition"]:
                    cond.setdefault(c["test"], {}).setdefault(c["variable"], []).extend(
                        str(v).lower() if isinstance(v, bool) else str(v) for v in c["values"])
                out["Condition"] = cond
            statements.append(out)
        return {"Version": "2012-10-17", "Statement": statements}

    # ------------------------------------------------------------------ nested blocks
    def eval_nested(self, block: Block, name: str, scope: dict) -> list[dict]:
        out: list[dict] = []
        for b in block.all(name):
            out.append(self.eval_block(b, scope))
        for dyn in block.all("dynamic"):
            if dyn.labels[0] != name:
                continue
            iterator = dyn.attrs.get("iterator", name)
            coll = self.eval_value(dyn.attrs["for_each"], scope)
            items = coll.items() if isinstance(coll, dict) else enumerate(coll)
            for k, v in items:
                inner = {**scope, iterator: {"key": k, "value": v}}
                for content in dyn.all("content"):
                    out.append(self.eval_block(content, inner))
        return out

    def eval_block(self, b: Block, scope: dict) -> dict:
        d = {k: self.eval_value(v, scope) for k, v in b.attrs.items()}
        names = set(b.blocks) - {"dynamic"} | {x.labels[0] for x in b.all("dynamic")}
        for n in names:
            d[n] = self.eval_nested(b, n, scope)
        return d

    # ------------------------------------------------------------------ values
    def eval_value(self, v: Any, scope: dict) -> Any:
        if isinstance(v, str):
            return self.eval_template(v, scope)
        if isinstance(v, list):
            return [self.eval_value(x, scope) for x in v]
        if isinstance(v, dict):
            return {self.eval_template(k, scope) if "${" in k else k: self.eval_value(x, scope)
                    for k, x in v.items()}
        return v

    def eval_template(self, s: str, scope: dict, escaped: bool = False) -> Any:
        parts = split_template(s)
        if len(parts) == 1 and parts[0][0] == "expr":
            return self.eval_ast(parse_expr(parts[0][1]), scope)
        out = []
        for kind, text in parts:
            if kind == "lit":
                out.append(_unescape(text) if escaped else text)
            else:
                val = self.eval_ast(parse_expr(text), scope)
                if isinstance(val, (dict, list, Instance)):
                    raise TfEvalError(f"cannot interpolate a collection into {s!r}")
                out.append(_to_str(val))
        return "".join(out)

    def eval_ast(self, node, scope: dict) -> Any:  # noqa: C901 - one dispatch table
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "tmpl":
            return self.eval_template(node[1], scope, escaped=True)
        if kind == "list":
            return [self.eval_ast(x, scope) for x in node[1]]
        if kind == "obj":
            return {_to_str(self.eval_ast(k, scope)): self.eval_ast(v, scope) for k, v in node[1]}
        if kind == "ref":
            return self.resolve_root(node[1], scope)
        if kind == "getattr":
            base = node[1]
            # two-part roots: var.x, local.x, module.x, data.t.n, resource t.n
            if base[0] == "ref":
                root = base[1]
                if root == "var":
                    return self.var(node[2])
                if root == "local":
                    return self.local(node[2])
                if root == "module":
                    return ModuleRef(self.child(node[2]))
                if root == "data":
                    return ("data-type", node[2])
                if root not in scope and root not in ("each", "count", "path", "terraform"):
                    return self.instances("resource", root, node[2])
            obj = self.eval_ast(base, scope)
            if isinstance(obj, tuple) and obj[0] == "data-type":
                return self.instances("data", obj[1], node[2])
            return _getattr(obj, node[2])
        if kind == "index":
            obj = self.eval_ast(node[1], scope)
            idx = self.eval_ast(node[2], scope)
            try:
                return obj[idx]
            except (KeyError, IndexError, TypeError) as e:
                raise TfEvalError(f"index {idx!r} not found in {type(obj).__name__}") from e
        if kind == "cond":
            return self.eval_ast(node[2] if self.eval_ast(node[1], scope) else node[3], scope)
        if kind == "un":
            val = self.eval_ast(node[2], scope)
            return (not val) if node[1] == "!" else -val
        if kind == "bin":
            return _binop(node[1], lambda: self.eval_ast(node[2], scope), lambda: self.eval_ast(node[3], scope))
        if kind == "call":
            return self.call(node[1], node[2], scope)
        if kind == "for":
            _, close, names, coll_n, first, second, cond = node
            coll = self.eval_ast(coll_n, scope)
            items = list(coll.items()) if isinstance(coll, dict) else list(enumerate(coll))
            res_list, res_map = [], {}
            for k, v in items:
                inner = dict(scope)
                if len(names) == 2:
                    inner[names[0]], inner[names[1]] = k, v
                else:
                    inner[names[0]] = v
                if cond is not None and not self.eval_ast(cond, inner):
                    continue
                if close == "]":
                    res_list.append(self.eval_ast(first, inner))
                else:
                    res_map[_to_str(self.eval_ast(first, inner))] = self.eval_ast(second, inner)
            return res_list if close == "]" else res_map
        raise TfEvalError(f"unsupported node {kind}")

    def resolve_root(self, name: str, scope: dict) -> Any:
        if name in scope:
            return scope[name]
        raise TfEvalError(f"{self.path}: unknown name {name!r}")

    def call(self, fname: str, arg_nodes: list, scope: dict) -> Any:
        if fname == "can":
            try:
                self.eval_ast(arg_nodes[0], scope)
                return True
            except (TfEvalError, ValueError):
                return False
        if fname == "try":
            for a in arg_nodes:
                try:
                    return self.eval_ast(a, scope)
                except TfEvalError:
                    continue
            raise TfEvalError("try(): no argument evaluated")
        args = [self.eval_ast(a, scope) for a in arg_nodes]
        fn = FUNCTIONS.get(fname)
        if fn is None:
            raise TfEvalError(f"function {fname}() is not supported")
        return fn(*args)


def _to_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        raise TfEvalError("cannot interpolate null")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _getattr(obj: Any, attr: str) -> Any:
    if isinstance(obj, (Instance, ModuleRef)):
        return obj.get(attr)
    if isinstance(obj, dict):
        if attr not in obj:
            raise TfEvalError(f"attribute {attr!r} not found")
        return obj[attr]
    raise TfEvalError(f"cannot read .{attr} of {type(obj).__name__}")


def _binop(op: str, left, right) -> Any:
    if op == "&&":
        return bool(left()) and bool(right())
    if op == "||":
        return bool(left()) or bool(right())
    a, b = left(), right()
    ops = {
        "==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, ">": lambda: a > b,
        "<=": lambda: a <= b, ">=": lambda: a >= b, "+": lambda: a + b, "-": lambda: a - b,
        "*": lambda: a * b, "/": lambda: a / b, "%": lambda: a % b,
    }
    return ops[op]()


def _toset(xs):
    out = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out


def _regex(pattern: str, s: str) -> Any:
    m = re.search(pattern, s)
    if not m:
        raise TfEvalError(f"regex {pattern!r} did not match")
    return m.group(0)


def _format(fmt: str, *args) -> str:
    it = iter(args)
    return re.sub(r"%[sd%]", lambda m: "%" if m.group() == "%%" else _to_str(next(it)), fmt)


FUNCTIONS = {
    "concat": lambda *ls: [x for lst in ls for x in lst],
    "values": lambda m: list(m.values()),
    "keys": lambda m: list(m.keys()),
    "merge": lambda *ms: {k: v for m in ms for k, v in m.items()},
    "join": lambda sep, xs: sep.join(_to_str(x) for x in xs),
    "toset": _toset,
    "tolist": list,
    "tomap": dict,
    "length": len,
    "lower": str.lower,
    "upper": str.upper,
    "format": _format,
    "slice": lambda xs, a, b: xs[a:b],
    "flatten": lambda xs: [y for x in xs for y in (x if isinstance(x, list) else [x])],
    "distinct": _toset,
    "contains": lambda xs, x: x in xs,
    "alltrue": lambda xs: all(xs),
    "anytrue": lambda xs: any(xs),
    "regex": _regex,
    "replace": lambda s, a, b: s.replace(a, b),
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "coalesce": lambda *xs: next(x for x in xs if x not in (None, "")),
    "lookup": lambda m, k, d=None: m.get(k, d),
    "startswith": lambda s, p: s.startswith(p),
    "endswith": lambda s, p: s.endswith(p),
    "sort": sorted,
}


def load_env(env_dir: Path, tfvars: Path) -> Module:
    """The example environment evaluated with one tfvars file."""
    values = parse_tfvars(tfvars)
    facts = {FACT_ACCOUNT: str(values["account_id"]), "region": str(values.get("region", "us-west-2"))}
    return Module(env_dir, values, facts, path="root")


# ====================================================================== IAM policy simulation
def _as_list(x: Any) -> list:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _glob(pattern: str, value: str, case: bool = True) -> bool:
    p = pattern.replace("[", "[[]")  # IAM has no character classes
    return fnmatch.fnmatchcase(value, p) if case else fnmatch.fnmatchcase(value.lower(), p.lower())


def _cond_matches(op: str, key: str, expected: list[str], ctx: dict[str, Any]) -> bool:
    if_exists = op.endswith("IfExists")
    base = op[:-8] if if_exists else op
    present = key in ctx and ctx[key] is not None
    if base == "Null":
        return (not present) == (expected[0] == "true")
    if not present:
        if if_exists:
            return True
        return "Not" in base  # negated operators match a missing key
    actual = [str(v) for v in _as_list(ctx[key])]
    single = {
        "StringEquals": lambda a, e: a == e,
        "StringLike": lambda a, e: _glob(e, a),
        "StringEqualsIgnoreCase": lambda a, e: a.lower() == e.lower(),
        "ArnEquals": lambda a, e: a == e,
        "ArnLike": lambda a, e: _glob(e, a),
        "Bool": lambda a, e: a.lower() == e.lower(),
        "NumericLessThan": lambda a, e: float(a) < float(e),
        "NumericLessThanEquals": lambda a, e: float(a) <= float(e),
        "NumericGreaterThan": lambda a, e: float(a) > float(e),
        "NumericGreaterThanEquals": lambda a, e: float(a) >= float(e),
        "NumericEquals": lambda a, e: float(a) == float(e),
    }
    negated = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
               "ArnNotLike": "ArnLike", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
               "NumericNotEquals": "NumericEquals"}
    if base in negated:
        fn = single[negated[base]]
        return not any(fn(a, e) for a in actual for e in expected)
    if base not in single:
        raise TfEvalError(f"condition operator {op} is not supported by the simulator")
    return any(single[base](a, e) for a in actual for e in expected)


def statement_matches(st: dict, action: str, resource: str, ctx: dict[str, Any],
                      principal: dict[str, str] | None = None) -> bool:
    if "Action" in st and not any(_glob(p, action, case=False) for p in _as_list(st["Action"])):
        return False
    if "NotAction" in st and any(_glob(p, action, case=False) for p in _as_list(st["NotAction"])):
        return False
    if "Resource" in st and not any(_glob(p, resource) for p in _as_list(st["Resource"])):
        return False
    if "NotResource" in st and any(_glob(p, resource) for p in _as_list(st["NotResource"])):
        return False
    if "Principal" in st and principal is not None:
        ok = False
        for ptype, ids in st["Principal"].items():
            for pid in _as_list(ids):
                if ptype == "*" or pid == "*" or principal.get(ptype) == pid:
                    ok = True
        if not ok:
            return False
    for op, keys in st.get("Condition", {}).items():
        for key, expected in keys.items():
            if not _cond_matches(op, key, _as_list(expected), ctx):
                return False
    return True


def decide(policies: list[dict], action: str, resource: str, ctx: dict[str, Any] | None = None,
           principal: dict[str, str] | None = None) -> str:
    """'Deny' (explicit), 'Allow', or 'ImplicitDeny' for one request against some policies."""
    ctx = ctx or {}
    allowed = False
    for pol in policies:
        for st in pol["Statement"]:
            if statement_matches(st, action, resource, ctx, principal):
                if st["Effect"] == "Deny":
                    return "Deny"
                allowed = True
    return "Allow" if allowed else "ImplicitDeny"
