"""A small writer of XLS IR text: one `Fn` per XLS function, nodes named `n<id>`.

Values are plain bit vectors (`Bits`: node name and width); signedness lives in the operations that
interpret them (smul vs umul, slt vs ult), chosen by codegen/rtl/arith.py. Node names are generated
here, never taken from a model, so no user text reaches the IR.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bits:
    name: str
    width: int


class Package:
    """Collects functions and numbers their nodes (ids are unique across the package)."""

    def __init__(self, name: str):
        self.name = name
        self.functions: list[Fn] = []
        self._next = 0

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def function(self, name: str) -> "Fn":
        fn = Fn(self, name)
        self.functions.append(fn)
        return fn

    def text(self, top: str) -> str:
        parts = [f"package {self.name}", ""]
        # callees before callers: the top last
        for fn in sorted(self.functions, key=lambda f: f.name == top):
            parts.append(fn.text(top=fn.name == top))
        return "\n".join(parts)


class Fn:
    def __init__(self, package: Package, name: str):
        self.package, self.name = package, name
        self.params: list[tuple[str, str]] = []
        self.lines: list[str] = []
        self.ret: tuple[str, str] | None = None
        self._literals: dict[tuple[int, int], Bits] = {}
        self._tables: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ plumbing
    def _node(self, width_or_type, op: str, args: str) -> Bits | str:
        i = self.package.new_id()
        name = f"n{i}"
        typ = f"bits[{width_or_type}]" if isinstance(width_or_type, int) else width_or_type
        sep = ", " if args else ""
        self.lines.append(f"  {name}: {typ} = {op}({args}{sep}id={i})")
        return Bits(name, width_or_type) if isinstance(width_or_type, int) else name

    def param(self, width: int, name: str | None = None) -> Bits:
        name = name or f"p{len(self.params)}"
        self.params.append((name, f"bits[{width}]"))
        return Bits(name, width)

    def returns(self, *values) -> None:
        """The function's result: one value, or a tuple of values (Bits)."""
        if len(values) == 1:
            (v,) = values
            self.ret = (v.name, f"bits[{v.width}]")
        else:
            t = self.tuple_type([v.width for v in values])
            self.ret = (self._node(t, "tuple", ", ".join(v.name for v in values)), t)

    def text(self, top: bool = False) -> str:
        params = ", ".join(f"{n}: {t}" for n, t in self.params)
        name, typ = self.ret
        body = self.lines + [f"  ret out: {typ} = identity({name}, id={self.package.new_id()})"]
        return "\n".join([f"{'top ' if top else ''}fn {self.name}({params}) -> {typ} {{"] + body + ["}", ""])

    @staticmethod
    def tuple_type(widths) -> str:
        return "(" + ", ".join(f"bits[{w}]" for w in widths) + ")"

    # ------------------------------------------------------------------ nodes
    def lit(self, value: int, width: int) -> Bits:
        value &= (1 << width) - 1
        key = (value, width)
        if key not in self._literals:
            self._literals[key] = self._node(width, "literal", f"value={value:#x}")
        return self._literals[key]

    def binary(self, op: str, a: Bits, b: Bits, width: int | None = None) -> Bits:
        return self._node(a.width if width is None else width, op, f"{a.name}, {b.name}")

    def nary(self, op: str, parts) -> Bits:
        """One n-ary node (and/or/xor) over equal-width operands."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        assert all(p.width == parts[0].width for p in parts)
        return self._node(parts[0].width, op, ", ".join(p.name for p in parts))

    def cmp(self, op: str, a: Bits, b: Bits) -> Bits:
        assert a.width == b.width, (op, a, b)
        return self._node(1, op, f"{a.name}, {b.name}")

    def unary(self, op: str, a: Bits) -> Bits:
        return self._node(1 if op.endswith("_reduce") else a.width, op, a.name)

    def ext(self, a: Bits, width: int, signed: bool) -> Bits:
        if width == a.width:
            return a
        assert width > a.width
        return self._node(width, "sign_ext" if signed else "zero_ext", f"{a.name}, new_bit_count={width}")

    def slice(self, a: Bits, start: int, width: int) -> Bits:
        if start == 0 and width == a.width:
            return a
        assert 0 <= start and start + width <= a.width and width > 0, (a, start, width)
        return self._node(width, "bit_slice", f"{a.name}, start={start}, width={width}")

    def concat(self, parts_msb_first) -> Bits:
        parts = list(parts_msb_first)
        if len(parts) == 1:
            return parts[0]
        return self._node(sum(p.width for p in parts), "concat", ", ".join(p.name for p in parts))

    def pack(self, elements) -> Bits:
        """Element k at bits [k*w, (k+1)*w)."""
        return self.concat(list(elements)[::-1])

    def unpack(self, flat: Bits, width: int, count: int) -> list[Bits]:
        return [self.slice(flat, k * width, width) for k in range(count)]

    def sel(self, selector: Bits, cases, default: Bits | None = None) -> Bits:
        cases = list(cases)
        width = cases[0].width
        assert all(c.width == width for c in cases) and (default is None or default.width == width)
        args = f"{selector.name}, cases=[{', '.join(c.name for c in cases)}]"
        if default is not None:
            args += f", default={default.name}"
        return self._node(width, "sel", args)

    def priority_sel(self, selector: Bits, cases, default: Bits) -> Bits:
        """The case of the lowest set selector bit (bit k selects cases[k]); default if none."""
        cases = list(cases)
        assert len(cases) == selector.width
        return self._node(default.width, "priority_sel",
                          f"{selector.name}, cases=[{', '.join(c.name for c in cases)}], default={default.name}")

    def mux(self, cond: Bits, if_true: Bits, if_false: Bits) -> Bits:
        return self.sel(cond, [if_false, if_true])

    def rom(self, values, width: int, index: Bits) -> Bits:
        """values[index] from a constant table (index beyond the table: the last entry)."""
        values = [int(v) & ((1 << width) - 1) for v in values]
        typ = f"bits[{width}][{len(values)}]"
        table = self._node(typ, "literal", f"value=[{', '.join(f'{v:#x}' for v in values)}]")
        return self._node(width, "array_index", f"{table}, indices=[{index.name}]")

    def rom2(self, rows, width: int, row: Bits, col: Bits) -> Bits:
        """rows[row][col] from a constant 2-D table (an index beyond the table: its last entry)."""
        rows = [[int(v) & ((1 << width) - 1) for v in r] for r in rows]
        typ = f"bits[{width}][{len(rows[0])}][{len(rows)}]"
        text = ", ".join("[" + ", ".join(f"{v:#x}" for v in r) + "]" for r in rows)
        key = (typ, text)
        if key not in self._tables:   # one literal per table, however many lookups
            self._tables[key] = self._node(typ, "literal", f"value=[{text}]")
        table = self._tables[key]
        return self._node(width, "array_index", f"{table}, indices=[{row.name}, {col.name}]")

    def invoke(self, callee: "Fn", args, result_type: str) -> str:
        return self._node(result_type, "invoke", f"{', '.join(a.name for a in args)}, to_apply={callee.name}")

    def tuple_index(self, tup: str, index: int, width: int) -> Bits:
        return self._node(width, "tuple_index", f"{tup}, index={index}")
