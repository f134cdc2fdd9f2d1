"""networkx view of a model's dataflow: nodes are ops, edges are SSA uses."""

from __future__ import annotations

import networkx as nx
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation


def dataflow_graph(module: ModuleOp) -> nx.DiGraph:
    """A DiGraph whose nodes are the ops of the model function (in program order, attribute
    `index`) and whose edges run from a value's producer to each user (attribute `operand`:
    the operand index at the user). `func.return` is included as the sink."""
    from spx_ir.builder import model_function

    g = nx.DiGraph()
    ops = list(model_function(module).body.ops)
    for i, op in enumerate(ops):
        g.add_node(op, index=i, name=op.name)
    for op in ops:
        for k, operand in enumerate(op.operands):
            if isinstance(operand.owner, Operation) and operand.owner in g:
                g.add_edge(operand.owner, op, operand=k)
    return g


def topological_ops(module: ModuleOp) -> list[Operation]:
    """Ops in a topological order of the dataflow graph (ties broken by program order)."""
    g = dataflow_graph(module)
    return list(nx.lexicographical_topological_sort(g, key=lambda op: g.nodes[op]["index"]))


def critical_path(module: ModuleOp, weight) -> tuple[float, list[Operation]]:
    """Longest path where each op costs `weight(op)`: returns (total, ops on the path)."""
    g = dataflow_graph(module)
    best: dict[Operation, tuple[float, Operation | None]] = {}
    for op in topological_ops(module):
        preds = [(best[p][0], p) for p in g.predecessors(op)]
        before, parent = max(preds, key=lambda t: t[0]) if preds else (0.0, None)
        best[op] = (before + weight(op), parent)
    end = max(best, key=lambda op: best[op][0])
    path, op = [], end
    while op is not None:
        path.append(op)
        op = best[op][1]
    return best[end][0], path[::-1]


def layer_names(module: ModuleOp) -> dict[Operation, str]:
    """Op -> layer name for every spx op but constants: its `layer` attribute (set by the Keras
    frontend), else `<kind>_<k>` numbered per kind in topological order."""
    names, counts = {}, {}
    for op in topological_ops(module):
        if op.name.startswith("spx.") and op.name != "spx.const":
            kind = op.name.split(".", 1)[1]
            counts[kind] = counts.get(kind, 0) + 1
            layer = op.attributes.get("layer")
            data = layer.data if layer is not None else f"{kind}_{counts[kind]}"
            # xDSL gives bytes for a string literal with escapes that are not UTF-8 text
            names[op] = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else str(data)
    return names
