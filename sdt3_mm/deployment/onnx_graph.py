"""Rewrites of exported ONNX graphs for inference.

A traced spiking neuron keeps its straight-through form,
``level + (round(level) - level)`` (the value of ``round(level)`` with the
gradient of ``level``, see :meth:`SFANeuron.fire_plain`), so that one
module gives one graph in training and in evaluation. At inference the
gradient is gone and the two extra element-wise passes per neuron are
pure cost: :func:`remove_straight_through` replaces them by the rounding
they compute. The value is the same bit for bit (``level + (r - level)``
is exactly ``r`` for ``r = round(level)``: the difference of two floats
within a factor of two of each other, or with one of them zero, is
exact).
"""
import onnx

#: Ops that compute the rounded level from the level (half-to-even
#: ``Round``; half-up ``Floor(x + 0.5)`` is matched separately).
_ROUND_OPS = ('Round', )


def producers_of(graph):
    """Each tensor name of ``graph`` to the node that writes it."""
    return {out: node for node in graph.node for out in node.output}


def scalar_constant(name, graph, producers):
    """The scalar value of a constant tensor (initialiser or Constant
    node), or None."""
    for init in graph.initializer:
        if init.name == name:
            array = onnx.numpy_helper.to_array(init)
            return float(array) if array.size == 1 else None
    node = producers.get(name)
    if node is not None and node.op_type == 'Constant':
        for attr in node.attribute:
            if attr.name == 'value':
                array = onnx.numpy_helper.to_array(attr.t)
                return float(array) if array.size == 1 else None
    return None


def _rounds(rounded, level, graph, producers):
    """Whether tensor ``rounded`` is ``round(level)`` (half to even, or
    half up as ``Floor(level + 0.5)``)."""
    node = producers.get(rounded)
    if node is None:
        return False
    if node.op_type in _ROUND_OPS:
        return node.input[0] == level
    if node.op_type != 'Floor':
        return False
    add = producers.get(node.input[0])
    if add is None or add.op_type != 'Add':
        return False
    operands = list(add.input)
    if level not in operands:
        return False
    other = operands[1 - operands.index(level)]
    return scalar_constant(other, graph, producers) == 0.5


def remove_straight_through(model):
    """Replace each ``level + (round(level) - level)`` by ``round(level)``.

    Matches an ``Add`` of a tensor ``x`` and ``Sub(r, x)`` where ``r`` is
    ``Round(x)`` or ``Floor(x + 0.5)``, redirects the ``Add``'s readers to
    ``r`` and drops the ``Add`` and the ``Sub`` when nothing else reads
    them. Graph outputs are never renamed.

    Args:
        model (onnx.ModelProto): Modified in place.

    Returns:
        int: The number of straight-through sums removed.
    """
    graph = model.graph
    producers = producers_of(graph)
    graph_outputs = {out.name for out in graph.output}
    replace = {}
    for node in graph.node:
        if node.op_type != 'Add' or node.output[0] in graph_outputs:
            continue
        for level, diff in (node.input, reversed(node.input)):
            sub = producers.get(diff)
            if (sub is not None and sub.op_type == 'Sub'
                    and sub.input[1] == level
                    and _rounds(sub.input[0], level, graph, producers)):
                replace[node.output[0]] = (sub.input[0], node, sub)
                break
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in replace:
                node.input[i] = replace[name][0]
    for _, add, _ in replace.values():
        graph.node.remove(add)
    readers = {name for node in graph.node for name in node.input}
    for _, _, sub in replace.values():
        if sub.output[0] not in readers and sub in graph.node:
            graph.node.remove(sub)
    return len(replace)
