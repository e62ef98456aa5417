"""evaluate: metric arithmetic against hand-computed values and independent formulas, and the
model loop against PyTorch's own cross-entropy and softmax."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _use_helpers import TinySet, random_set, real_run, reference_input
from cnnlab.errors import DataError
from cnnlab.inference.evaluation import (
    averages,
    confusion_matrix,
    evaluate,
    most_confused_pairs,
    per_class_metrics,
    top_k_accuracy,
)

# A hand-worked 3-class example. True labels / predictions:
#   true: a a a a b b b c c c
#   pred: a a b c b b a c c a
# confusion (rows true): a: [2,1,1]  b: [1,2,0]  c: [1,0,2]
TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PRED = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 0])

pytestmark = pytest.mark.usefixtures("one_thread")


def test_confusion_matrix_matches_hand_count() -> None:
    cm = confusion_matrix(TRUE, PRED, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [1, 0, 2]]


def test_per_class_matches_hand_computed_values() -> None:
    rows = per_class_metrics(confusion_matrix(TRUE, PRED, 3), ["a", "b", "c"])
    # a: TP 2, predicted-as-a 4 (2+1+1), true a 4 -> P 0.5, R 0.5, F1 0.5
    # b: TP 2, predicted-as-b 3 -> P 2/3; true b 3 -> R 2/3; F1 2/3
    # c: TP 2, predicted-as-c 3 -> P 2/3; true c 3 -> R 2/3
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["precision"] == pytest.approx(0.5) and rows[0]["recall"] == pytest.approx(0.5)
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["f1"] == pytest.approx(2 / 3)
    assert [r["support"] for r in rows] == [4, 3, 3]
    avg = averages(rows)
    assert avg["macro"]["f1"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert avg["weighted"]["recall"] == pytest.approx(0.6)  # weighted recall == accuracy (6/10)


def test_per_class_equals_brute_force_counting() -> None:
    rng = np.random.default_rng(3)
    k = 5
    y, p = rng.integers(0, k, 400), rng.integers(0, k, 400)
    p[:150] = y[:150]  # make it better than chance
    rows = per_class_metrics(confusion_matrix(y, p, k), [str(i) for i in range(k)])
    for c in range(k):
        tp = sum(1 for a, b in zip(y, p, strict=True) if a == c and b == c)
        fp = sum(1 for a, b in zip(y, p, strict=True) if a != c and b == c)
        fn = sum(1 for a, b in zip(y, p, strict=True) if a == c and b != c)
        prec, rec = tp / (tp + fp), tp / (tp + fn)
        assert rows[c]["precision"] == pytest.approx(prec)
        assert rows[c]["recall"] == pytest.approx(rec)
        assert rows[c]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))  # the TP/FP/FN form of F1


def test_class_never_predicted_or_absent_scores_zero_not_nan() -> None:
    rows = per_class_metrics(confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 0]), 3), ["a", "b", "c"])
    assert rows[1] == {"name": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[2]["support"] == 0 and rows[2]["precision"] == 0.0


def test_top_k_matches_torch_topk() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 300)
    got = top_k_accuracy(logits, labels, [1, 2, 5])
    for k in (1, 2, 5):
        idx = torch.topk(torch.from_numpy(logits), k, dim=1).indices.numpy()
        expected = float(np.mean([labels[i] in idx[i] for i in range(300)]))
        assert got[k] == pytest.approx(expected)


def test_most_confused_orders_by_count_and_skips_diagonal() -> None:
    cm = np.array([[50, 3, 7], [3, 40, 0], [9, 1, 60]])
    assert most_confused_pairs(cm, ["a", "b", "c"], 3) == [("c", "a", 9), ("a", "c", 7), ("a", "b", 3)]
    assert len(most_confused_pairs(cm, ["a", "b", "c"], 100)) == 5  # five non-zero off-diagonal cells


def test_evaluate_matches_pytorch_reference(tmp_path) -> None:
    classes = ["a", "b", "c", "d"]
    data = random_set(53, (3, 8, 8), classes, seed=1)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    run = real_run(tmp_path / "run", 3, 8, classes, mean, std)
    model = run.model
    model.train()  # evaluate must switch to eval (dropout off, BN running stats) and back
    res = evaluate(run, data, batch_size=10)
    assert model.training
    model.eval()
    with torch.no_grad():
        x = reference_input(data.images, mean, std)  # not the run's own preprocessing
        logits = model(x)
        ref_loss = F.cross_entropy(logits, torch.from_numpy(data.labels), reduction="none").numpy()
        ref_prob = torch.softmax(logits, 1).numpy()
    np.testing.assert_allclose(res.losses, ref_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.probabilities, ref_prob, rtol=1e-5, atol=1e-6)
    assert res.accuracy == pytest.approx(float((ref_prob.argmax(1) == data.labels).mean()))
    assert res.confusion.sum() == 53 and res.n == 53
    assert sorted(res.top_k) == [1, 3]  # 5 >= K is trivially 100 % and left out
    worst = res.highest_loss(3)
    assert worst[0]["loss"] == pytest.approx(float(ref_loss.max()), rel=1e-5)
    assert worst[0]["source"] == data.sources[int(ref_loss.argmax())]
    json.dumps(res.to_dict())  # JSON-safe


def test_batch_size_does_not_change_results(tmp_path) -> None:
    classes = ["x", "y"]
    data = random_set(37, (1, 6, 6), classes, seed=2)
    run = real_run(tmp_path, 1, 6, classes, (0.5,), (0.25,))
    a, b = evaluate(run, data, batch_size=1), evaluate(run, data, batch_size=1000)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, atol=1e-6)
    assert (a.predictions == b.predictions).all()


def test_labels_are_matched_to_run_classes_by_name(tmp_path) -> None:
    run = real_run(tmp_path, 1, 6, ["cat", "dog", "fox"], (0.5,), (0.25,))
    base = random_set(20, (1, 6, 6), ["cat", "dog", "fox"], seed=4)
    names = ["cat", "dog", "fox"]
    # the same images, with classes listed in another order (folder with only dog and cat, say)
    shuffled = TinySet(base.images, np.array([["fox", "dog", "cat"].index(names[i]) for i in base.labels]),
                       ["fox", "dog", "cat"], base.sources)
    a, b = evaluate(run, base), evaluate(run, shuffled)
    assert (a.labels == b.labels).all() and a.confusion.tolist() == b.confusion.tolist()


def test_unknown_class_in_data_is_a_clear_error(tmp_path) -> None:
    run = real_run(tmp_path, 1, 6, ["cat", "dog"], (0.5,), (0.25,))
    data = random_set(6, (1, 6, 6), ["cat", "dog", "horse"], seed=0)
    data.labels[:] = [0, 1, 2, 0, 1, 2]
    with pytest.raises(DataError, match="horse"):
        evaluate(run, data)


def test_model_with_wrong_number_of_classes_is_reported(tmp_path) -> None:
    """A run whose network has 5 outputs but whose classes.json names 2: refused with a clear message,
    when the run is read or when it is evaluated."""
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match=r"expected \(4, 2\)|classes\.json"):
        run = real_run(tmp_path, 1, 6, ["cat", "dog"], (0.5,), (0.25,), outputs=5)
        evaluate(run, random_set(4, (1, 6, 6), ["cat", "dog"]))


def test_empty_set_is_a_clear_error(tmp_path) -> None:
    run = real_run(tmp_path, 1, 6, ["cat", "dog"], (0.5,), (0.25,))
    empty = TinySet(np.zeros((0, 1, 6, 6), np.uint8), np.zeros(0, np.int64), ["cat", "dog"], [])
    with pytest.raises(DataError, match="empty"):
        evaluate(run, empty)
