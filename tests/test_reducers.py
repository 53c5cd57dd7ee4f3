"""Reducers: one vector per sample from each kind of layer output."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from embedding_explorer import LayerOutputError, Reducer
from embedding_explorer.reducers import as_reducer, reduce_output, reducers_for, select_tensor


def reduce(output: object, method: object = "auto", select: object = None, mask=None, batch=None):
    x = output if isinstance(output, torch.Tensor) else None
    size = batch if batch is not None else (x.shape[0] if x is not None else 2)
    return reduce_output(output, Reducer(method, select), "layer", size, mask)  # type: ignore[arg-type]


# ---- by rank -----------------------------------------------------------------------------------
def test_rank_2_is_kept() -> None:
    x = torch.randn(4, 5)
    assert torch.equal(reduce(x), x)
    assert torch.equal(reduce(x, "mean"), x)
    assert torch.equal(reduce(x, "flatten"), x)


def test_rank_3_mean_honours_attention_mask() -> None:
    x = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    # by hand: sample 0 averages tokens 0 and 1 only; sample 1 averages all four
    expected = torch.tensor(
        [
            [(0 + 3) / 2, (1 + 4) / 2, (2 + 5) / 2],
            [(12 + 15 + 18 + 21) / 4, (13 + 16 + 19 + 22) / 4, (14 + 17 + 20 + 23) / 4],
        ]
    )
    torch.testing.assert_close(reduce(x, "mean", mask=mask), expected)
    torch.testing.assert_close(reduce(x, "auto", mask=mask), expected)
    torch.testing.assert_close(reduce(x, "mean"), x.mean(dim=1))  # no mask: every token


def test_rank_3_mean_ignores_padding_values() -> None:
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    padded = x.clone()
    padded[mask == 0] = 1e6  # garbage in the padded positions changes nothing
    torch.testing.assert_close(reduce(padded, "mean", mask=mask), reduce(x, "mean", mask=mask))
    torch.testing.assert_close(reduce(x, "mean", mask=mask)[1], x[1, 0])


def test_rank_3_first() -> None:
    x = torch.randn(3, 5, 4)
    assert torch.equal(reduce(x, "first"), x[:, 0])


def test_rank_3_last_is_last_unmasked_token_right_padding() -> None:
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    expected = torch.stack([x[0, 2], x[1, 0], x[2, 4]])
    assert torch.equal(reduce(x, "last", mask=mask), expected)
    assert torch.equal(reduce(x, "last"), x[:, -1])


def test_rank_3_last_with_left_padding() -> None:
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1]])
    assert torch.equal(reduce(x, "last", mask=mask), x[:, 4])


def test_mask_of_other_shape_is_not_applied() -> None:
    x = torch.randn(2, 4, 3)
    other = torch.ones(2, 7)  # e.g. a mask of the input tokens at a layer that pools them
    torch.testing.assert_close(reduce(x, "mean", mask=other), x.mean(dim=1))


def test_rank_4_mean_max_flatten() -> None:
    x = torch.randn(3, 4, 5, 6)
    torch.testing.assert_close(reduce(x), x.mean(dim=(2, 3)))
    torch.testing.assert_close(reduce(x, "mean"), x.mean(dim=(2, 3)))
    assert torch.equal(reduce(x, "max"), x.flatten(2).max(dim=2).values)
    assert torch.equal(reduce(x, "flatten"), x.reshape(3, 120))
    assert torch.equal(reduce(x, "flatten")[1, 2 * (5 * 6) + 3 * 6 + 5], x[1, 2, 3, 5])


@pytest.mark.parametrize("method", ["first", "last"])
def test_token_methods_refused_for_maps(method: str) -> None:
    with pytest.raises(LayerOutputError, match=rf"'layer' output is a \(B, C, H, W\) map; reduce '{method}'"):
        reduce(torch.randn(2, 3, 4, 4), method)


def test_map_method_refused_for_rank_2() -> None:
    with pytest.raises(LayerOutputError, match=r"is \(batch, features\); reduce 'max' needs rank 3 or 4"):
        reduce(torch.randn(2, 3), "max")


def test_rank_5_needs_flatten_or_callable() -> None:
    x = torch.randn(2, 3, 2, 2, 2)
    with pytest.raises(
        LayerOutputError, match=r"rank 5 \(shape \(2, 3, 2, 2, 2\)\); choose reduce='flatten'"
    ):
        reduce(x)
    assert torch.equal(reduce(x, "flatten"), x.reshape(2, 24))


def test_rank_1_output_is_one_feature_per_sample() -> None:
    """A squeezed head, shape (B,), is one value per sample; other lengths are refused."""
    values = torch.randn(4)
    assert torch.equal(reduce(values, batch=4), values.reshape(4, 1))
    with pytest.raises(LayerOutputError, match="gave 3 rows for a batch of 4 samples"):
        reduce(torch.randn(3), batch=4)
    with pytest.raises(LayerOutputError, match="not one row per sample"):
        reduce(torch.tensor(1.0), batch=4)
    # with an attention mask (a text model's scalar head), and a last batch of one sample that
    # ``.squeeze()`` made a 0-d tensor
    mask = torch.ones(4, 7)
    assert torch.equal(reduce(values, mask=mask, batch=4), values.reshape(4, 1))
    assert torch.equal(reduce(torch.tensor(2.5), batch=1), torch.tensor([[2.5]]))


def test_rank_3_first_is_first_unmasked_token_left_padding() -> None:
    """``first`` under left padding (decoder tokenizers) takes the first real token, not a pad."""
    x = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(reduce(x, "first", mask=mask), torch.stack([x[0, 2], x[1, 0]]))
    assert torch.equal(reduce(x, "first", mask=torch.zeros(2, 4)), x[:, 0])  # nothing unmasked


def test_masked_mean_of_a_float64_model_stays_float64() -> None:
    x = torch.randn(2, 5, 3, dtype=torch.float64) + 1e4
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    got = reduce(x, "mean", mask=mask)
    expected = torch.stack([x[0, :3].mean(dim=0), x[1].mean(dim=0)])  # by hand, in float64
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-11)


def test_mask_aware_reductions_ignore_nan_and_overflow_at_padded_positions() -> None:
    x = torch.ones(2, 4, 3, dtype=torch.float16) * 300
    x[0, 3] = float("nan")  # a padded position
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    x = x.repeat(1, 128, 1)  # 512 tokens of 300: the float16 sum would overflow
    mask = mask.repeat(1, 128)
    out = reduce(x, "mean", batch=2, mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), torch.full((2, 3), 300.0))
    all_masked = torch.zeros(2, 512, dtype=torch.long)
    assert torch.equal(
        reduce(x, "max", batch=2, mask=all_masked) == float("-inf"), torch.zeros(2, 3, dtype=torch.bool)
    )


def test_integer_outputs_become_float() -> None:
    out = reduce(torch.arange(6).reshape(3, 2))
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("contiguous", [True, False])
def test_tokens_keep_the_kept_rows_in_row_major_order(dtype: torch.dtype, contiguous: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=generator).to(dtype)
    if not contiguous:  # a (B, T, D) view whose rows are not laid out one after another
        x = torch.randn(4, 5, 3, generator=generator).to(dtype).transpose(0, 2)
    keep = torch.tensor([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    rows = reduce_output(x, Reducer("tokens"), "layer", int(keep.sum()), keep=keep)
    by_hand = torch.stack([x[b, t] for b in range(3) for t in range(5) if keep[b, t]])
    assert rows.dtype == dtype and torch.equal(rows, by_hand)
    assert rows.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()  # a copy


# ---- containers and select ---------------------------------------------------------------------
def test_tuple_list_dict_use_first_tensor() -> None:
    hidden, attn = torch.randn(2, 3, 4), torch.randn(2, 3, 3)
    for output in [(hidden, attn), [hidden, attn], {"last_hidden_state": hidden, "attentions": attn}]:
        torch.testing.assert_close(reduce(output), hidden.mean(dim=1))
    torch.testing.assert_close(reduce((None, hidden, attn)), hidden.mean(dim=1))  # skips non-tensors
    torch.testing.assert_close(reduce(OrderedDict(a=1, b=hidden)), hidden.mean(dim=1))


def test_select_by_index_and_key() -> None:
    hidden, attn = torch.randn(2, 3, 4), torch.randn(2, 3, 3)
    torch.testing.assert_close(reduce((hidden, attn), select=1), attn.mean(dim=1))
    torch.testing.assert_close(reduce((hidden, attn), select=-1), attn.mean(dim=1))
    torch.testing.assert_close(reduce({"h": hidden, "a": attn}, "first", select="a"), attn[:, 0])


def test_bad_select_errors() -> None:
    hidden = torch.randn(2, 3)
    with pytest.raises(
        LayerOutputError, match="returns a tuple of 2 elements; select=2 is not a valid index"
    ):
        reduce((hidden, hidden), select=2)
    with pytest.raises(
        LayerOutputError, match="returns a list of 1 elements; select='h' is not a valid index"
    ):
        reduce([hidden], select="h")
    with pytest.raises(LayerOutputError, match=r"output has no key 'x'; keys: \['h'\]"):
        reduce({"h": hidden}, select="x")
    with pytest.raises(LayerOutputError, match="returns a single tensor; remove select=0"):
        reduce(hidden, select=0)
    with pytest.raises(LayerOutputError, match="element 1 of its output is NoneType, not a tensor"):
        reduce((hidden, None), select=1)
    with pytest.raises(LayerOutputError, match="key 'n' of its output is int, not a tensor"):
        reduce({"h": hidden, "n": 3}, select="n")


def test_containers_without_tensors_error() -> None:
    with pytest.raises(LayerOutputError, match="returned a tuple without tensors"):
        reduce((1, 2))
    with pytest.raises(LayerOutputError, match=r"returned a mapping without tensors: keys \['a'\]"):
        reduce({"a": 1})


def test_non_tensor_output_error_names_the_layer() -> None:
    message = r"layer 'block\.3' returned str, not a tensor; give a callable"
    with pytest.raises(LayerOutputError, match=message):
        reduce_output("hello", Reducer(), "block.3", 2)


# ---- callables and batch checks ----------------------------------------------------------------
def test_callable_reducer() -> None:
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(reduce(x, lambda t: t.std(dim=1)), x.std(dim=1))
    hidden, attn = torch.randn(2, 3, 4), torch.randn(2, 3, 3)
    torch.testing.assert_close(reduce((hidden, attn), lambda t: t[:, -1], select=1), attn[:, -1])


def test_callable_reducer_bad_results() -> None:
    x = torch.randn(3, 4, 5)
    with pytest.raises(LayerOutputError, match=r"reducer of layer 'layer' returned shape \(3, 4, 5\)"):
        reduce(x, lambda t: t)
    with pytest.raises(LayerOutputError, match="reducer of layer 'layer' returned list, not a tensor"):
        reduce(x, lambda t: [t])


def test_wrong_batch_dimension_errors() -> None:
    x = torch.randn(5, 3)  # e.g. a (T, B, D) output reduced the wrong way
    with pytest.raises(
        LayerOutputError, match="gave 5 rows for a batch of 2 samples; its output is not batch-first"
    ):
        reduce(x, batch=2)


def test_unknown_method_and_bad_specs() -> None:
    with pytest.raises(ValueError, match="reduce method 'median' is not one of auto, mean, first"):
        Reducer("median")
    with pytest.raises(TypeError, match="reduce must be a method name, a callable or a Reducer, not int"):
        as_reducer(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"reduce names layers that are not captured: \['fc9'\]"):
        reducers_for(["fc1"], {"fc9": "mean"})


def test_reducers_for_specs() -> None:
    assert reducers_for(["a", "b"], None) == {"a": Reducer(), "b": Reducer()}
    assert reducers_for(["a", "b"], "max") == {"a": Reducer("max"), "b": Reducer("max")}
    per_layer = reducers_for(["a", "b"], {"b": Reducer("last", select=0)})
    assert per_layer == {"a": Reducer(), "b": Reducer("last", 0)}
    assert Reducer("last", 0).describe() == "last[0]"
    assert Reducer("mean", "h").describe() == "mean['h']"


def test_select_tensor_passes_tensors_through() -> None:
    x = torch.randn(2, 3)
    assert select_tensor(x, None, "l") is x
