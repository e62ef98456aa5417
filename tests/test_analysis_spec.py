"""The spec format: shorthands, defaults, round-trip, and errors that name layer, line and the fix.

Run: .venv/bin/pytest tests/test_analysis_spec.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab import zoo
from cnnlab.analysis import analyze
from cnnlab.errors import SpecError
from cnnlab.spec import Act, Conv, Dense, Flatten, PadMode, Pool, PoolKind, load_spec

BOOK = Path(__file__).resolve().parents[1] / "examples" / "book-cnn.yaml"


def problems_of(source: object) -> list[str]:
    with pytest.raises(SpecError) as info:
        analyze(source)  # type: ignore[arg-type]
    return info.value.problems


def test_shorthands_and_documented_defaults() -> None:
    spec = load_spec({"input": [3, 8, 8], "layers": [{"conv": 4}, {"pool": 2}, "flatten", {"dense": 5},
                                                      {"output": 2}]})
    conv, pool, flat, dense = spec.layers[:4]
    assert conv == Conv(filters=4, kernel=(3, 3), stride=(1, 1), padding=PadMode.VALID, activation=Act.RELU)
    assert isinstance(pool, Pool) and pool.kind == PoolKind.MAX and pool.resolved_stride == (2, 2)
    assert isinstance(flat, Flatten)
    assert isinstance(dense, Dense) and dense.activation == Act.RELU


@pytest.mark.parametrize("name", zoo.names())
def test_to_dict_round_trips_every_bundled_network(name: str) -> None:
    spec = load_spec(name)
    again = load_spec(spec.to_dict())
    assert again == spec
    import yaml

    assert load_spec(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec  # YAML-safe


def test_book_cnn_example_is_the_bundled_one() -> None:
    assert load_spec(BOOK) == load_spec("book-cnn")
    a = analyze(BOOK)
    assert a.layers[5].params == (64 * 12 * 12 + 1) * 128  # (n+1)·m with n = C·H·W
    assert a.layers[5].output_shape == (128,)
    assert "64·12·12 = 9,216" in a.layers[5].notes[0]  # the derived in_features is explained on the dense row


def test_errors_name_layer_and_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: n\ninput: [1, 28, 28]\nlayers:\n"
        "  - conv: {filter: 8}\n"       # line 4: typo
        "  - pool: {kind: maxx}\n"      # line 5: bad option
        "  - dens: 10\n"                # line 6: unknown kind
        "  - output: 10\n"
    )
    problems = problems_of(path)
    assert any("layer 0 (conv, line 4)" in p and "did you mean 'filters'" in p for p in problems)
    assert any("layer 1 (pool, line 5)" in p and "'maxx'" in p and "did you mean 'max'" in p for p in problems)
    assert any("layer 2 (line 6)" in p and "did you mean 'dense'" in p for p in problems)
    assert len(problems) == 3  # the misspelt 'filter' does not also report 'filters' missing


def test_shape_collapse_reports_sizes_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: [1, 12, 12]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n  - pool: 3\n"
        "  - conv: {filters: 4, kernel: 5}\n  - output: 2\n"
    )
    (msg,) = problems_of(path)
    # 12 -> 10 (3x3 valid) -> 3 (pool 3) -> 5x5 conv would give 3 - 5 + 1 = -1
    assert "layer 2 (conv, line 5)" in msg and "receives 3×3" in msg and "-1×-1" in msg
    assert "padding=2" in msg and "layer 1 (pool, line 4)" in msg


def test_check_collects_every_problem_not_only_the_first() -> None:
    problems = problems_of({"input": [6, 16, 16], "layers": [
        {"conv": {"filters": 8, "groups": 4, "kernel": 3}},   # 6 channels not divisible by 4
        {"conv": {"filters": 8, "kernel": 20}},              # kernel larger than the 14x14 input
        "flatten",
        {"pool": 2},                                          # pooling a vector
        {"output": 3},
    ]})
    assert len(problems) == 3
    assert "groups=4" in problems[0] and "6 input channels" in problems[0]
    assert "receives 14×14" in problems[1]
    assert "layer 3 (pool)" in problems[2] and "(C, H, W)" in problems[2]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"layers": [{"output": 2}]}, "missing 'input'"),
        ({"input": [3, 8, 8], "layers": []}, "non-empty list"),
        ({"input": [3, 0, 8], "layers": [{"output": 2}]}, "positive integers"),
        ({"input": [3, 8, 8], "layers": [{"conv": -3}, {"output": 2}]}, "positive integer"),
        ({"input": [3, 8, 8], "layers": [{"conv": "many"}, {"output": 2}]}, "received 'many'"),
        ({"input": [3, 8, 8], "layers": [{"conv": 4}]}, "last layer must be 'output"),
        ({"input": [3, 8, 8], "layers": [{"output": 2}, {"dense": 3}, {"output": 2}]}, "must be the last"),
        ({"input": [3, 8, 8], "layers": [{"conv": 4, "pool": 2}, {"output": 2}]}, "indentation"),
        ({"input": [3, 8, 8], "layers": [{"conv2d": 4}, {"output": 2}]}, "did you mean 'conv'"),
        ({"input": [3, 8, 8], "layers": [{"linear": 4}, {"output": 2}]}, "did you mean 'dense'"),
        ({"input": [3, 8, 8], "layer": [], "layers": [{"output": 2}]}, "did you mean 'layers'"),
        ({"input": [3, 8, 8], "layers": [{"residual": [{"dense": 3}]}, {"output": 2}]}, "residual branch"),
        ({"input": [3, 8, 8], "layers": [{"conv": {"filters": 4, "padding": "sam"}}, {"output": 2}]},
         "did you mean 'same'"),
    ],
)
def test_bad_specs_get_one_clear_message(spec: dict[str, object], needle: str) -> None:
    assert any(needle in p for p in problems_of(spec))


def test_bundled_name_did_you_mean_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="did you mean 'resnet18'"):
        load_spec("resnet19")
    bad = tmp_path / "broken.yaml"
    bad.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 8\n  - output: 2\n")
    with pytest.raises(SpecError, match=r"invalid YAML at line \d+"):
        load_spec(bad)


def test_flooring_warning_names_the_dropped_rows() -> None:
    a = analyze({"input": [1, 25, 24], "layers": [{"pool": 2}, {"output": 2}]})
    assert len(a.warnings) == 1 and "25×24" in a.warnings[0] and "1 row(s) and 0 column(s)" in a.warnings[0]
    assert analyze({"input": [1, 24, 24], "layers": [{"pool": 2}, {"output": 2}]}).warnings == []


def test_same_padding_matches_keras_ceil_rule_for_any_stride() -> None:
    for size in range(5, 14):
        for stride in (1, 2, 3):
            a = analyze({"input": [1, size, size], "layers": [
                {"conv": {"filters": 1, "kernel": 3, "stride": stride, "padding": "same"}}, {"output": 2}]})
            expected = -(-size // stride)  # Keras: ceil(size / stride)
            assert a.layers[0].output_shape == (1, expected, expected)


def test_receptive_field_through_residual_blocks() -> None:
    # two 3x3 convs: 5x5; a residual block with two 3x3 convs on top: 9x9 (hand-computed)
    a = analyze({"input": [1, 16, 16], "layers": [
        {"conv": {"filters": 2, "padding": 1}}, {"conv": {"filters": 2, "padding": 1}},
        {"residual": [{"conv": {"filters": 2, "padding": 1}}, {"conv": {"filters": 2, "padding": 1}}]},
        {"output": 2}]})
    assert a.layers[1].receptive_field.size == (5, 5)  # type: ignore[union-attr]
    assert a.layers[2].receptive_field.size == (9, 9)  # type: ignore[union-attr]
    # ResNet-18's last stage sees 435 pixels (published figure, e.g. Araujo et al. 2019 Distill)
    rows = analyze("resnet18").layers
    assert [r for r in rows if r.kind == "residual"][-1].receptive_field.size == (435, 435)  # type: ignore[union-attr]
    rows = analyze("resnet50").layers  # ResNet-50: 427 (same source)
    assert [r for r in rows if r.kind == "residual"][-1].receptive_field.size == (427, 427)  # type: ignore[union-attr]


def test_memory_estimate_scales_with_batch() -> None:
    a1, a32 = analyze("keras-mnist", batch=1), analyze("keras-mnist", batch=32)
    assert a1.memory is not None and a32.memory is not None
    assert a32.memory.activations == 32 * a1.memory.activations
    assert a32.memory.weights == 34_826 * 4  # float32
    assert a32.memory.optimizer == 2 * 34_826 * 4  # Adam: two states per trainable parameter
    assert a1.flops == 2 * a1.total_macs


def test_problems_in_portuguese() -> None:
    with pytest.raises(SpecError) as info:
        analyze({"input": [1, 8, 8], "layers": [{"conv": {"filter": 4}}, {"output": 2}]}, lang="pt")
    assert "camada 0 (conv): chave desconhecida 'filter'; você quis dizer 'filters'?" in info.value.problems[0]
    with pytest.raises(SpecError) as info:
        analyze({"input": [1, 4, 4], "layers": [{"conv": {"filters": 2, "kernel": 5}}, {"output": 2}]}, lang="pt")
    assert "recebe 4×4 e daria 0×0" in info.value.problems[0]


def test_repeated_blocks_get_their_own_rows() -> None:
    rows = analyze("resnet18").layers
    a, b = rows[3].children[0], rows[4].children[0]  # the same conv on the same 64×56×56 input
    assert (a.path, b.path, a.index, b.index) == ("3.0", "4.0", 3, 4)
    assert a is not b and a.notes is not b.notes and a.resolved is not b.resolved
    assert a.params == b.params == 3 * 3 * 64 * 64
    assert a.receptive_field != b.receptive_field  # 19×19 vs 35×35: same arithmetic, other place
