"""What lets the best CNN get more out of few digits: elastic distortion, predictions
averaged over shifted copies, and a moving average of the weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.cli import UserError
from digitlab.data import transforms
from digitlab.data.transforms import BACKGROUND, random_affine
from digitlab.engine import Network, Recipe, fit
from digitlab.mnist.networks import ShiftAveraged, shifted_copies

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
    model = Network("best", {"width": 4, "tta_shift": 1}).build(seed=0)
    plain = nn.Sequential(*model)  # the same layers, no averaging
    x = digit_like(3)
    model.eval(), plain.eval()
    # Reference shifts by rolling: the two-pixel background border makes a roll a shift.
    rolled = [torch.roll(x, (dy, dx), dims=(2, 3)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    expected = torch.stack([F.softmax(plain(r), dim=1) for r in rolled]).mean(0).log()
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)
        model.train(), plain.train()
        torch.manual_seed(1)
        trained_path = model(x)
        torch.manual_seed(1)
        assert torch.allclose(trained_path, plain(x))  # dropout alike: one plain pass


def test_a_checkpoint_loads_with_or_without_shift_averaging():
    plain = Network("best", {"width": 4}).build(seed=0)
    averaged = Network("best", {"width": 4, "tta_shift": 1}).build(seed=1)
    averaged.load_state_dict(plain.state_dict())  # the same weight names
    assert isinstance(averaged, ShiftAveraged) and isinstance(plain[0], nn.Sequential)


def test_a_negative_shift_is_a_user_error():
    with pytest.raises(UserError, match="tta_shift must be at least 0"):
        Network("best", {"tta_shift": -1}).build()


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
    fit(model, (x, y), None, recipe, progress=False)
    assert torch.allclose(model.weight, average[0], atol=1e-5)
    assert torch.allclose(model.bias, average[1], atol=1e-5)
    assert not torch.allclose(model.weight, weights[0], atol=1e-3)  # not the last weights


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_an_impossible_ema_decay_is_one_sentence(decay):
    with pytest.raises(UserError, match=r"the EMA decay must be in \(0, 1\)"):
        Recipe(ema_decay=decay)
