"""What lets the best CNN get more out of few digits: elastic distortion, predictions
averaged over shifted copies, and a moving average of the weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.data import transforms
from digitlab.data.transforms import BACKGROUND, random_affine
from digitlab.engine import NetworkSpec, Recipe, fit
from digitlab.errors import UserError
from digitlab.mnist.networks import shift_view, shifted_copies, single_view
from digitlab.mnist.project import feature_maps

IDENTITY = {"degrees": 0.0, "translate": 0.0, "scale": (1.0, 1.0)}


def blank(n: int = 1) -> torch.Tensor:
    return torch.full((n, 1, 28, 28), BACKGROUND)


def digit_like(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Random strokes inside a background border two pixels wide."""
    x = blank(n)
    x[..., 2:26, 2:26] = torch.rand(n, 1, 24, 24, generator=torch.Generator().manual_seed(seed)) * 3
    return x


# --- elastic distortion ---------------------------------------------------------------

def test_no_elastic_distortion_leaves_the_affine_draws_as_they_were():
    """Recipes without it keep their measured results: same images, same random stream."""
    x = digit_like()
    plain_gen, zero_gen = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    plain = random_affine(x, plain_gen)
    zero = random_affine(x, zero_gen, elastic_alpha=0.0)
    assert torch.equal(plain, zero)
    assert torch.equal(torch.rand(5, generator=plain_gen), torch.rand(5, generator=zero_gen))
    # Pixels the augmentation gave for this batch and seed before elastic distortion existed
    # (digitlab at commit ba635d5): recorded results depend on them.
    assert plain[0, 0, 14, 10:14].tolist() == pytest.approx(
        [1.0977561473846436, 0.5949926376342773, 0.9748237133026123, 1.307067632675171],
        abs=1e-5)
    assert float(plain.sum()) == pytest.approx(2953.9677734375, rel=1e-5)


def test_a_displacement_of_one_pixel_in_x_moves_the_digit_one_pixel(monkeypatch):
    """Catches a swapped x / y or a wrong conversion from pixels to grid units."""
    def one_pixel_right(n, height, width, alpha, sigma, generator):
        field = torch.zeros(n, 2, height, width)
        field[:, 0] = 1.0  # every output pixel samples the input one pixel to its right
        return field

    monkeypatch.setattr(transforms, "elastic_field", one_pixel_right)
    x = digit_like()
    out = random_affine(x, torch.Generator(), **IDENTITY, elastic_alpha=1.0)
    expected = blank(len(x))
    expected[..., :, :27] = x[..., :, 1:]  # the content moved one pixel left
    assert torch.allclose(out, expected, atol=1e-5)


def test_elastic_fields_are_smooth_and_scale_with_alpha():
    alpha = 34.0
    field = transforms.elastic_field(64, 28, 28, alpha, 4.0, torch.Generator().manual_seed(0))
    once = transforms.elastic_field(64, 28, 28, 1.0, 4.0, torch.Generator().manual_seed(0))
    assert field.shape == (64, 2, 28, 28)
    assert torch.allclose(field, alpha * once, atol=1e-4)
    # Raw uniform displacements in [-alpha, alpha] differ between neighbours by about
    # 0.8 alpha; a Gaussian of sigma 4 pixels makes neighbours nearly equal.
    neighbour_step = (field[..., 1:] - field[..., :-1]).abs().mean()
    assert neighbour_step < 0.05 * alpha
    assert 0.1 < float(field.std()) < 0.2 * alpha  # a warp of about a pixel, not a scramble


# --- predictions averaged over shifted copies ----------------------------------------

def test_shifted_copies_put_a_pixel_at_each_of_its_nine_neighbours_once():
    x = blank()
    x[0, 0, 10, 10] = 5.0
    places = []
    for copy in shifted_copies(x, 1):
        bright = (copy[0, 0] == 5.0).nonzero().tolist()
        assert len(bright) == 1 and (copy[0, 0] != 5.0).logical_not().sum() == 1
        assert torch.all((copy[0, 0] == 5.0) | (copy[0, 0] == BACKGROUND))
        places.append(tuple(bright[0]))
    assert sorted(places) == [(r, c) for r in (9, 10, 11) for c in (9, 10, 11)]


def test_eval_averages_probabilities_over_shifted_inputs_and_training_does_not():
    torch.manual_seed(0)
    model = NetworkSpec("best", {"width": 4, "tta_shift": 1}).build(seed=0)
    plain = nn.Sequential(*model)  # the same layers, no averaging
    x = digit_like(3)
    model.eval(), plain.eval()
    # Reference shifts by rolling: the two-pixel background border makes a roll a shift.
    rolled = [torch.roll(x, (dy, dx), dims=(2, 3)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    expected = torch.stack([F.softmax(plain(r), dim=1) for r in rolled]).mean(0).log()
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)  # 27 images: one pass
        model.one_pass_limit = 0  # a large batch: one pass per shift
        assert torch.allclose(model(x), expected, atol=1e-5)
        model.train(), plain.train()
        torch.manual_seed(1)
        trained_path = model(x)
        torch.manual_seed(1)
        assert torch.allclose(trained_path, plain(x))  # dropout alike: one plain pass


def test_weights_of_a_plain_network_load_and_predict_alike_without_shifts():
    """Checkpoints saved before shift averaging existed hold a plain nn.Sequential."""
    plain = nn.Sequential(*NetworkSpec("best", {"width": 4}).build(seed=0)).eval()
    averaged = NetworkSpec("best", {"width": 4, "tta_shift": 1}).build(seed=1).eval()
    averaged.load_state_dict(plain.state_dict())
    x = digit_like(3)
    with torch.no_grad():
        with single_view(averaged):
            assert torch.allclose(averaged(x), plain(x), atol=1e-6)
        assert averaged.shift == 1  # restored after the block
        assert not torch.allclose(averaged(x), plain(x), atol=1e-4)  # averaging is back on


def test_a_shift_view_averages_every_member_over_its_shifts_then_restores_their_own():
    """The full-MNIST selection scores one trained network at several shifts this way."""
    ensemble = NetworkSpec("best", {"width": 4, "members": 2, "tta_shift": 1}).build(seed=0)
    ensemble.eval()
    x = digit_like(2)
    # Shifts of up to two pixels by rolling (the two-pixel border makes a roll a shift):
    # 25 copies per member, the members' mean probabilities averaged.
    rolled = [torch.roll(x, (dy, dx), dims=(2, 3)) for dy in range(-2, 3) for dx in range(-2, 3)]
    with torch.no_grad():
        expected = torch.stack([
            torch.stack([F.softmax(nn.Sequential(*member)(r), dim=1) for r in rolled]).mean(0)
            for member in ensemble.members]).mean(0).log()
        with shift_view(ensemble, 2):
            assert torch.allclose(ensemble(x), expected, atol=1e-5)
    assert [m.shift for m in ensemble.members] == [1, 1]
    with pytest.raises(UserError, match="at least 0"), shift_view(ensemble, -1):
        pass


def test_feature_maps_of_a_shift_averaged_network_come_from_one_pass():
    model = NetworkSpec("best", {"width": 4, "tta_shift": 1}).build(seed=0)
    maps = feature_maps(model, digit_like(1)[0])
    assert len(maps) == 5  # one per convolution's ReLU, not nine times as many


def test_a_negative_shift_is_a_user_error():
    with pytest.raises(UserError, match="tta_shift must be at least 0"):
        NetworkSpec("best", {"tta_shift": -1}).build()


# --- a moving average of the weights --------------------------------------------------

def test_the_kept_weights_are_the_exponential_moving_average_of_the_steps():
    """Full-batch SGD on a linear model, replayed by hand with autograd."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen)
    y = (x[:, 0] - x[:, 1] > 0).long()
    decay, lr, steps = 0.8, 0.5, 6
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    weights = [p.detach().clone().requires_grad_() for p in model.parameters()]
    average = None
    for _ in range(steps):
        loss = F.cross_entropy(x @ weights[0].T + weights[1], y)
        grads = torch.autograd.grad(loss, weights)
        weights = [(w - lr * g).detach().requires_grad_()
                   for w, g in zip(weights, grads, strict=True)]
        # the first average is the weights after the first step, then an EMA
        average = [w.detach().clone() for w in weights] if average is None else \
            [decay * a + (1 - decay) * w.detach() for a, w in zip(average, weights, strict=True)]

    recipe = Recipe(optimizer="sgd", lr=lr, momentum=0.0, epochs=steps, batch_size=64,
                    ema_decay=decay)
    fit(model, recipe, (x, y), progress=False)
    assert torch.allclose(model.weight, average[0], atol=1e-5)
    assert torch.allclose(model.bias, average[1], atol=1e-5)
    assert not torch.allclose(model.weight, weights[0], atol=1e-3)  # not the last weights


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_an_impossible_ema_decay_is_one_sentence(decay):
    with pytest.raises(UserError, match=r"the EMA decay must be in \(0, 1\)"):
        Recipe(ema_decay=decay)


def test_with_validation_the_kept_weights_are_the_average_of_the_best_epoch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(96, 2, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()

    def trained(ema_decay):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        recipe = Recipe(optimizer="sgd", lr=0.3, momentum=0.0, epochs=8, batch_size=16,
                        ema_decay=ema_decay)
        return model, fit(model, recipe, (x[:64], y[:64]), (x[64:], y[64:]), progress=False)

    model, history = trained(0.9)
    _, raw_history = trained(None)
    assert history.val_loss != pytest.approx(raw_history.val_loss)  # the average is scored
    model.eval()
    with torch.no_grad():
        kept_loss = F.cross_entropy(model(x[64:]), y[64:])
    # the kept weights (batch-norm statistics included) score the lowest validation loss
    # recorded, which was measured on the averaged weights
    assert float(kept_loss) == pytest.approx(min(history.val_loss), abs=1e-6)
    assert history.best_epoch == 1 + history.val_loss.index(min(history.val_loss))
