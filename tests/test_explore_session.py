"""The explore session's numbers against PyTorch: a neuron's arithmetic equals the model's own output,
its window is what ``F.unfold`` extracts, its receptive field covers exactly the input pixels that reach
it (by autograd), uploads decode like training images, and runs/specs open with clear messages.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError, DataError, RunError
from cnnlab.explore import open_explorer

KINDS = {
    "name": "every-kind",
    "input": [3, 13, 13],
    "layers": [
        {"conv": {"filters": 4, "kernel": 3, "stride": 2, "padding": 1}},
        {"batchnorm": "relu"},
        {"pool": {"size": 2, "stride": 1}},
        {"conv": {"filters": 6, "kernel": 3, "padding": "same", "dilation": 2, "groups": 2,
                  "activation": "leaky_relu"}},
        {"pool": {"kind": "avg", "size": 3, "stride": 2, "padding": "same"}},
        {"residual": {"layers": [{"conv": {"filters": 8, "kernel": 3, "padding": 1}}]}},
        {"global_pool": "avg"},
        {"dense": 5},
        {"output": 3},
    ],
}
LINEAR = {  # no activations and avg pooling: every input pixel of the receptive field reaches the unit
    "name": "linear",
    "input": [1, 20, 20],
    "layers": [
        {"conv": {"filters": 2, "kernel": 3, "activation": "none"}},
        {"pool": {"kind": "avg", "size": 2}},
        {"conv": {"filters": 2, "kernel": 3, "stride": 2, "padding": 1, "activation": "none"}},
        "flatten",
        {"output": 2},
    ],
}


def _images(shape, n=6, seed=0):
    from cnnlab.data import ImageSet

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return ImageSet(pixels, np.arange(n) % 3, ["a", "b", "c"], [f"img{i}.png" for i in range(n)])


@pytest.fixture(scope="module")
def kinds():
    ex = open_explorer(KINDS, data=_images((3, 13, 13)))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the formula is really exercised
        bn = ex.model.layers[1].bn
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return ex


def _torch_outputs(model, x):
    """Every top-level layer's output, by forward hooks on the real model (the reference)."""
    outs = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: outs.__setitem__(k, o.detach()))
             for k, m in enumerate(model.layers)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def _positions(shape, rng, n=4):
    if len(shape) == 3:
        return [(int(rng.integers(shape[0])), int(rng.integers(shape[1])), int(rng.integers(shape[2])))
                for _ in range(n)]
    return [(int(rng.integers(shape[0])), 0, 0) for _ in range(n)]


def test_every_layer_kind_adds_up_to_torchs_output(kinds) -> None:
    ex = kinds
    image = ex.image_ids()[1]
    ref = _torch_outputs(ex.model, ex.preprocess(ex.entries[image].pixels[None]))
    rng = np.random.default_rng(1)
    seen = set()
    for layer in range(len(ex.layers)):
        out = ref[layer][0]
        for c, y, x in _positions(tuple(out.shape), rng):
            d = ex.neuron(image, layer, c, y, x)
            expected = float(out[c, y, x]) if out.dim() == 3 else float(out[c])
            seen.add(d["op"])
            assert d["value"] == pytest.approx(expected, abs=1e-5)
            assert d["activation"] == pytest.approx(expected, abs=1e-5), (layer, d["op"])
            if d["op"] == "conv":
                assert sum(d["partial"]) + d["bias"] == pytest.approx(d["sum"], abs=1e-9)
                products = np.array(d["window"]) * np.array(d["weights"])
                assert products.sum(axis=(1, 2)) == pytest.approx(np.array(d["partial"]), abs=1e-9)
            if d["op"] == "dense":
                top = sum(t["product"] for t in d["terms"])
                assert top + d["rest_sum"] + d["bias"] == pytest.approx(d["sum"], abs=1e-6)
            if d["op"] == "pool" and d["pool"] == "max":
                i, j = d["chosen"]
                assert d["window"][i][j] == d["pooled"] == max(v for r in d["window"] for v in r if v is not None)
            if d["op"] == "residual":
                assert d["branch"] + d["shortcut"] == pytest.approx(d["sum"])
    assert seen == {"conv", "batchnorm", "pool", "residual", "global_pool", "dense"}


def test_conv_window_is_what_unfold_extracts(kinds) -> None:
    ex = kinds
    image = ex.image_ids()[0]
    fwd = ex.forward(image)
    conv = ex.model.layers[0].conv  # kernel 3, stride 2, padding 1
    cols = F.unfold(fwd.x, 3, padding=1, stride=2)[0]  # (3*3*3, L)
    out_w = fwd.outs[0].shape[3]
    for c, y, x in [(0, 0, 0), (3, 6, 6), (1, 3, 5)]:
        d = ex.neuron(image, 0, c, y, x)
        window = torch.tensor(d["window"], dtype=torch.float64).reshape(-1)
        assert torch.allclose(window, cols[:, y * out_w + x].double(), atol=1e-7)
        assert torch.allclose(torch.tensor(d["weights"], dtype=torch.float64).reshape(-1),
                              conv.weight[c].detach().reshape(-1).double())


def test_grouped_conv_reads_only_its_group(kinds) -> None:
    d = kinds.neuron(kinds.image_ids()[0], 3, 5, 2, 2)  # 6 filters, 2 groups: filter 5 reads channels 2..3
    assert d["in_channels"] == [2, 3] and len(d["window"]) == 2


def test_receptive_field_is_exactly_where_gradient_reaches() -> None:
    ex = open_explorer(LINEAR, data=_images((1, 20, 20), n=2))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in ex.model.parameters():
            p.uniform_(0.1, 1.0)  # positive: no cancellation hides a pixel
    image = ex.image_ids()[0]
    x = ex.preprocess(ex.entries[image].pixels[None]).requires_grad_(True)
    out = x
    for layer in ex.model.layers[:3]:
        out = layer(out)
    for y, xx in [(0, 0), (1, 2), (3, 3)]:
        x.grad = None
        out[0, 1, y, xx].backward(retain_graph=True)
        rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
        t, left, b, r = ex.neuron(image, 2, 1, y, xx)["rf"]
        assert (int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())) == (t, left, b, r)


def test_cam_and_patches_answer_for_a_conv_channel(kinds) -> None:
    ex = kinds
    cam = ex.cam(ex.image_ids()[0], 2)
    assert cam["target"] == 2 and (cam["h"], cam["w"]) == (13, 13)
    patches = ex.patches(0, 1, top=3)
    values = [p["value"] for p in patches["patches"]]
    assert values == sorted(values, reverse=True) and len(values) == 3
    ref = torch.stack([_torch_outputs(ex.model, ex.preprocess(ex.entries[k].pixels[None]))[0][0, 1].max()
                       for k in ex.image_ids()])
    assert values[0] == pytest.approx(float(ref.max()), abs=1e-5)


def test_layer_explanation_is_summarys_text() -> None:
    from cnnlab.analysis import analyze

    ex = open_explorer("keras-mnist", lang="pt")
    row = analyze("keras-mnist", lang="pt").layers[2]
    text = ex.layer(2)["explanation"]
    assert text.splitlines()[0] == row.formula and "(3·3·32+1)·64 = 18.496" in text
    assert ex.layer(0)["filters"]["total"] == 32
    weights = ex.layer(6)["weights"]
    w = ex.model.layers[6].linear.weight.detach().abs()
    assert abs(weights[0]["weight"]) == pytest.approx(float(w.max()))
    assert len(weights[0]["where"]) == 3  # mapped back to (channel, row, column) of layer 3's maps


def test_unknown_layer_and_position_are_clear_errors(kinds) -> None:
    with pytest.raises(CnnlabError, match="unknown layer 42: this network has layers 0..8"):
        kinds.layer(42)
    with pytest.raises(CnnlabError, match="outside it"):
        kinds.neuron(kinds.image_ids()[0], 0, 99, 0, 0)
    with pytest.raises(CnnlabError, match="unknown image"):
        kinds.image("nope")


def test_upload_decodes_like_load_image(kinds, tmp_path) -> None:
    from PIL import Image

    from cnnlab.data import load_image

    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(path)
    key = kinds.add_upload(path.read_bytes(), "photo.png")
    assert np.array_equal(kinds.entries[key].pixels, load_image(path, (3, 13, 13), "crop"))
    with pytest.raises(DataError, match="cannot read image 'notes.png'"):
        kinds.add_upload(b"hello, not an image", "notes.png")


def test_spec_is_marked_untrained_and_missing_run_is_named(tmp_path) -> None:
    ex = open_explorer("keras-mnist")
    assert ex.untrained and "UNTRAINED" in ex.info()["notes"][0]
    with pytest.raises(RunError, match="does not exist"):
        open_explorer(tmp_path / "no" / "such-run")


def test_run_still_training_uses_its_latest_checkpoint(tmp_path) -> None:
    from _report_helpers import SPEC, squares_bundle
    from cnnlab.train.checkpoint import read_weights, write_weights
    from cnnlab.workflows import train

    bundle = squares_bundle(n=32)
    run = tmp_path / "run"
    train(SPEC, bundle, out=run, quiet=True, report=False, epochs=1, batch_size=16, lr=0.01, threads=1)
    best, _ = read_weights(run / "checkpoints" / "best")
    last, meta = read_weights(run / "checkpoints" / "last")
    moved = {k: v + 0.25 if v.is_floating_point() else v for k, v in last.items()}  # as if training went on
    write_weights(run / "checkpoints" / "last", moved, meta)
    status = json.loads((run / "status.json").read_text())

    (run / "status.json").write_text(json.dumps({**status, "state": "running"}))
    ex = open_explorer(run, data=bundle)
    assert any("still training" in n and "latest checkpoint" in n for n in ex.info()["notes"])
    assert all(torch.equal(v, moved[k]) for k, v in ex.model.state_dict().items())
    image = ex.images()[0]
    assert image["label"] in ("empty", "square") and image["correct"] in (True, False)
    probs = torch.softmax(ex.model(ex.preprocess(bundle.val.images[:1])), 1)[0]
    assert ex.image(image["id"])["probs"] == pytest.approx(probs.tolist(), abs=1e-6)

    (run / "status.json").write_text(json.dumps({**status, "state": "finished"}))
    done = open_explorer(run, data=bundle)
    assert not done.notes and all(torch.equal(v, best[k]) for k, v in done.model.state_dict().items())


@pytest.mark.parametrize("name", ["lenet5-1998", "book-cnn"])
def test_zoo_networks_explain_every_layer(name) -> None:
    """Trainable subsampling (a·pool + b, tanh), connection tables, RBF output, 'same' convs: each layer's
    value is the model's own, and where the page shows arithmetic it gives that value."""
    from cnnlab.data import ImageSet

    ex = open_explorer(name)
    c, h, w = ex.input_shape
    ex.add_images(ImageSet(np.random.default_rng(0).integers(0, 256, (1, c, h, w), dtype=np.uint8),
                           np.zeros(1, np.int64), [], ["x.png"]))
    ref = _torch_outputs(ex.model, ex.preprocess(ex.entries["v0"].pixels[None]))
    for layer, out in ref.items():
        out = out[0]
        pos = (0, out.shape[1] // 2, out.shape[2] // 2) if out.dim() == 3 else (0,)
        d = ex.neuron("v0", layer, *pos)
        assert d["value"] == pytest.approx(float(out[pos]), abs=1e-5)
        if d["op"] != "other":  # connection tables and RBF outputs show only their value
            assert d["activation"] == pytest.approx(float(out[pos]), abs=1e-5), (layer, d["op"])
        assert ex.layer(layer)["explanation"]
