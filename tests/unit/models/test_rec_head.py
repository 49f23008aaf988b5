"""REChead: SimOTA on hand-made cases, decoding to input pixels, loss behaviour."""

from __future__ import annotations

import math

import pytest
import torch

from simrec_cli.models.heads.boxes import cell_grid, giou_cxcywh, iou_cxcywh
from simrec_cli.models.heads.rec_head import REChead
from simrec_cli.models.heads.simota import simota_assign

STRIDE = 32


def predictions_everywhere(box: list[float], cells: int = 4) -> torch.Tensor:
    """[1, cells*cells, 4]: every point predicts the same (cx, cy, w, h) box."""
    return torch.tensor(box).repeat(1, cells * cells, 1)


def test_cell_grid_is_row_major_x_then_y() -> None:
    grid = cell_grid(2, 3, torch.device("cpu"))
    assert grid.tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]


def test_iou_of_centre_size_boxes() -> None:
    a = torch.tensor([10.0, 10.0, 20.0, 20.0])
    b = torch.tensor([20.0, 10.0, 20.0, 20.0])
    assert math.isclose(iou_cxcywh(a, b).item(), 200 / 600, rel_tol=1e-6)
    assert iou_cxcywh(a, torch.tensor([100.0, 100.0, 5.0, 5.0])).item() == 0.0


def test_giou_subtracts_the_empty_share_of_the_enclosing_box() -> None:
    a = torch.tensor([5.0, 5.0, 10.0, 10.0])  # x 0-10, y 0-10
    assert math.isclose(giou_cxcywh(a, a).item(), 1.0, rel_tol=1e-6)
    far = torch.tensor([25.0, 5.0, 10.0, 10.0], requires_grad=True)  # x 20-30: no overlap, enclosing 30 x 10
    giou = giou_cxcywh(a, far)
    assert math.isclose(giou.item(), -100 / 300, rel_tol=1e-6)
    giou.backward()
    assert far.grad is not None and far.grad[0] < 0  # moving the box towards `a` raises GIoU
    half = torch.tensor([10.0, 5.0, 10.0, 10.0])  # x 5-15: IoU 50/150, enclosing = union
    assert math.isclose(giou_cxcywh(a, half).item(), iou_cxcywh(a, half).item(), rel_tol=1e-6)


def test_simota_picks_the_best_predictions_among_candidates() -> None:
    grid = cell_grid(4, 4, torch.device("cpu"))
    gt = torch.tensor([[64.0, 64.0, 64.0, 64.0]])  # covers cells (1,1), (2,1), (1,2), (2,2) by their centres
    preds = predictions_everywhere([300.0, 300.0, 10.0, 10.0])  # far away: IoU 0
    exact = [5, 6]  # cells (1,1) and (2,1) predict the box exactly
    preds[0, exact] = gt[0]
    foreground = simota_assign(preds, gt, grid, STRIDE)
    # Sum of the top IoUs is 2 -> k = 2; the two exact predictions are the cheapest.
    assert foreground[0].nonzero().flatten().tolist() == exact


def test_simota_assigns_at_least_one_point_and_only_candidates() -> None:
    grid = cell_grid(4, 4, torch.device("cpu"))
    gt = torch.tensor([[16.0, 16.0, 8.0, 8.0]])  # tiny box in cell (0,0); centre region reaches 80 px
    preds = predictions_everywhere([300.0, 300.0, 10.0, 10.0])
    preds[0, 15] = gt[0]  # cell (3,3) is a perfect prediction but far outside box and centre region
    foreground = simota_assign(preds, gt, grid, STRIDE)
    assert foreground.sum().item() == 1  # all candidate IoUs are 0 -> k clamps to 1
    assert not foreground[0, 15]
    # The only point both inside the box and near its centre wins (no +1e5 cost): cell (0,0).
    assert foreground[0].nonzero().flatten().tolist() == [0]


def test_simota_dynamic_k_counts_the_integer_part_of_top_ious() -> None:
    grid = cell_grid(4, 4, torch.device("cpu"))
    gt = torch.tensor([[64.0, 64.0, 64.0, 64.0], [64.0, 64.0, 64.0, 64.0]])
    preds = predictions_everywhere([64.0, 64.0, 64.0, 64.0]).repeat(2, 1, 1)
    preds[1] = torch.tensor([64.0, 64.0, 32.0, 64.0])  # IoU 0.5 everywhere: 10 * 0.5 = 5 points
    foreground = simota_assign(preds, gt, grid, STRIDE)
    candidates = 16  # with a 2.5-stride centre radius, every cell of a 4x4 map is a candidate here
    assert foreground[0].sum().item() == min(10, candidates)
    assert foreground[1].sum().item() == 5


def test_decode_and_predict_return_the_best_box_in_input_pixels() -> None:
    head = REChead(in_channels=8, width=0.125).eval()
    raw = torch.zeros(1, 4, 5)  # a 2x2 map: cells (0,0), (1,0), (0,1), (1,1)
    raw[0, 3] = torch.tensor([0.5, 0.25, math.log(2.0), 0.0, 3.0])  # best objectness at cell (1,1)
    decoded = head.decode(raw, 2, 2)
    assert torch.allclose(decoded[0, 3], torch.tensor([48.0, 40.0, 64.0, 32.0]))
    assert torch.allclose(decoded[0, 0], torch.tensor([0.0, 0.0, 32.0, 32.0]))
    head.forward = lambda top: raw  # type: ignore[method-assign]
    box = head.predict(torch.zeros(1, 8, 2, 2))
    assert torch.allclose(box, torch.tensor([[16.0, 24.0, 80.0, 56.0, torch.sigmoid(torch.tensor(3.0))]]))


def test_objectness_starts_at_the_yolox_prior() -> None:
    head = REChead(in_channels=8, width=0.125).eval()
    with torch.no_grad():
        head.obj_preds[0].weight.zero_()
        scores = head(torch.rand(1, 8, 2, 2))[..., 4].sigmoid()
    assert torch.allclose(scores, torch.full_like(scores, 0.01))


@pytest.mark.parametrize("box_loss", ["iou", "giou"])
def test_loss_is_positive_finite_and_trains_the_box_branch(box_loss: str) -> None:
    torch.manual_seed(0)
    head = REChead(in_channels=8, width=0.125, box_loss=box_loss)
    top = torch.rand(2, 8, 4, 4)
    targets = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.3, 0.6, 0.2, 0.4]])
    loss = head.loss(top, targets)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert head.reg_preds[0].weight.grad is not None and head.reg_preds[0].weight.grad.abs().sum() > 0


def test_giou_loss_pulls_in_a_box_that_misses_its_target() -> None:
    """With IoU = 0 the released loss has no box gradient; the GIoU loss still has one."""
    gradients = {}
    for box_loss in ("iou", "giou"):
        head = REChead(in_channels=8, width=0.125, box_loss=box_loss)
        raw = torch.zeros(1, 1, 5, requires_grad=True)  # one cell predicting a 32 x 32 box around (0, 0)
        head.forward = lambda top, raw=raw: raw  # type: ignore[method-assign]
        head.loss(torch.zeros(1, 8, 1, 1), torch.tensor([[0.8, 0.8, 0.1, 0.1]])).backward()
        gradients[box_loss] = raw.grad[0, 0, :4].abs().sum().item()
    assert gradients["iou"] == 0.0 and gradients["giou"] > 0.0
