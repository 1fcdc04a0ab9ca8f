"""Plugin-free check: every op of an exported graph must be one that TensorRT's ONNX parser
imports natively, per the table in engines/trt_supported_ops.json (its TensorRT version and
source URL are written in it). No custom domains, no 5-D GridSample."""

from __future__ import annotations

from collections import Counter
import json
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parents[1] / "engines" / "trt_supported_ops.json"
_DEFAULT_DOMAINS = ("", "ai.onnx")
_TYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 11: "DOUBLE",
               16: "BF16"}


def load_table(path: Path | None = None) -> dict:
    return json.loads(Path(path or TABLE_PATH).read_text())


def _load(model):
    import onnx

    return onnx.load(str(model)) if isinstance(model, (str, Path)) else model


def _all_nodes(graph):
    """Nodes of a graph and of its subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)


def graph_ops(model) -> Counter:
    """op type -> count, over the main graph, its subgraphs and local functions. Ops of a
    non-default domain are listed as 'domain::Op'."""
    proto = _load(model)
    nodes = list(_all_nodes(proto.graph))
    for fn in proto.functions:
        nodes.extend(fn.node)
    return Counter(n.op_type if n.domain in _DEFAULT_DOMAINS else f"{n.domain}::{n.op_type}" for n in nodes)


def _value_types(proto) -> dict[str, tuple[str, int | None, tuple]]:
    """name -> (type name, rank or None, dims) after shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    g = inferred.graph
    out = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        tt = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
        out[vi.name] = (_TYPE_NAMES.get(tt.elem_type, str(tt.elem_type)), len(dims) if tt.HasField("shape") else None,
                        dims)
    for init in g.initializer:
        out[init.name] = (_TYPE_NAMES.get(init.data_type, str(init.data_type)), len(init.dims), tuple(init.dims))
    return out


def check_plugin_free(model, table: dict | None = None) -> list[str]:
    """Problems that would make TensorRT need a plugin (or fail) for this graph; [] if none."""
    proto = _load(model)
    table = table or load_table()
    supported = table["supported"]
    problems: list[str] = []
    for opset in proto.opset_import:
        if opset.domain in _DEFAULT_DOMAINS:
            if not table["opset_min"] <= opset.version <= table["opset_max"]:
                problems.append(f"opset {opset.version} is outside TensorRT {table['tensorrt_version']}'s "
                                f"{table['opset_min']}..{table['opset_max']}")
    if proto.functions:
        problems.append("graph has local functions: " + ", ".join(f.name for f in proto.functions)
                        + " (export with them inlined)")
    types = _value_types(proto)
    for node in _all_nodes(proto.graph):
        where = f"{node.op_type} node {node.name or node.output[0]!r}"
        if node.domain not in _DEFAULT_DOMAINS:
            problems.append(f"{where}: custom domain {node.domain!r} needs a TensorRT plugin")
            continue
        spec = supported.get(node.op_type)
        if spec is None:
            state = "listed as unsupported" if node.op_type in table.get("unsupported", ()) else "not in the table"
            problems.append(f"{where}: {state} for TensorRT {table['tensorrt_version']}")
            continue
        data = node.input[0] if node.input else None
        if data and data in types:
            tname = types[data][0]
            if tname not in spec["types"]:
                problems.append(f"{where}: input type {tname} not among TensorRT's {spec['types']}")
        if node.op_type == "GridSample":
            x = types.get(node.input[0])
            grid = types.get(node.input[1])
            if x is None or x[1] != 4:
                problems.append(f"{where}: input must be 4-D (N, C, H, W), is rank {x[1] if x else 'unknown'}")
            if grid is None or grid[1] != 4 or grid[2][-1] != 2:
                problems.append(f"{where}: grid must be 4-D (N, H, W, 2), is {grid[2] if grid else 'unknown'}")
    return problems


def grid_sample_ranks(model) -> list[tuple[int | None, int | None]]:
    """(input rank, grid rank) of every GridSample node."""
    proto = _load(model)
    types = _value_types(proto)
    ranks = []
    for node in _all_nodes(proto.graph):
        if node.op_type == "GridSample":
            x, grid = types.get(node.input[0]), types.get(node.input[1])
            ranks.append((x[1] if x else None, grid[1] if grid else None))
    return ranks
