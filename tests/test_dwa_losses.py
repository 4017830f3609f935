"""DWA embedding/task-code losses, stiffness and Eq. 7 composition against hand-computed values."""

import math

import pytest
import torch

from dwa_core.functional.dwa import (
    embedding_loss,
    ideal_code,
    stiffness,
    task_code_loss,
    total_loss,
    triplet_paper,
)

E = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
P, N, NT = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])
ZETA = torch.tensor([0.5, 0.0])


def test_triplet_paper_per_sample():
    # sample 0: |e-p|²=1, |e-n|²=1 -> 1.5; sample 1: 0 - 2 + 1.5 < 0 -> 0
    assert torch.allclose(triplet_paper(E, P, N, 1.5), torch.tensor([1.5, 0.0]))


def test_embedding_loss_paper_form():
    # weights (1-ζ) = [0.5, 1]: mean(0.5*1.5, 0) = 0.375
    assert embedding_loss(E, ZETA, P, N, alpha=1.5).item() == pytest.approx(0.375)
    # with N_T = 0, δ=1: sample 0: 1.5 + (1-0+1.5) = 4; sample 1: 0 + (0-1+1.5) = 0.5
    # weighted [2, 0.5] -> mean 1.25 (no (1+δ) normalisation)
    assert embedding_loss(E, ZETA, P, N, NT, alpha=1.5, delta=1.0).item() == pytest.approx(1.25)
    assert embedding_loss(E, ZETA, P, N, NT, alpha=1.5, delta=0.5).item() == pytest.approx(
        (0.5 * (1.5 + 0.5 * 2.5) + 0.5 * 0.5) / 2)


def test_embedding_loss_original_form():
    # d_P = ||E - 1P^T||_F = 1, d_N = sqrt(3), ℓ = 2 - sqrt(3); Σ(1-ζ) = 1.5
    ell = 2 - math.sqrt(3)
    assert embedding_loss(E, ZETA, P, N, alpha=1.0, form="original-code").item() == pytest.approx(1.5 * ell)
    # d_T = ||E||_F = 1 -> [1 - 1 + 1]+ = 1; (ℓ + 1)/(1+δ)
    got = embedding_loss(E, ZETA, P, N, NT, alpha=1.0, delta=1.0, form="original-code").item()
    assert got == pytest.approx(1.5 * (ell + 1) / 2)


def test_embedding_loss_zero_when_zeta_one_and_bad_form():
    assert embedding_loss(E, torch.ones(2), P, N, NT).item() == 0
    with pytest.raises(ValueError):
        embedding_loss(E, ZETA, P, N, form="nope")


def test_embedding_loss_has_gradient():
    e = E.clone().requires_grad_()
    embedding_loss(e, ZETA, P, N, alpha=1.5).backward()
    # d/de_0 of 0.5*(|e-p|² - |e-n|²)/2 = 0.5*(2(e-p) - 2(e-n))/2 = 0.5*(n-p)
    assert torch.allclose(e.grad[0], 0.5 * (N - P))
    assert torch.allclose(e.grad[1], torch.zeros(2))


def test_task_code():
    assert ideal_code(1, 2, 4, torch.zeros(1)).tolist() == [0, 0, 1, 1]
    # ((1-1)² + (0-1)²)/2 = 0.5, weights (1-ζ)=[1, 0.5]: 0.5 + 0.5*mean((0,1)-(1,1))² = 0.5+0.25
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert task_code_loss(e, torch.tensor([0.0, 0.5]), torch.tensor([1.0, 1.0])).item() == pytest.approx(0.75)


def test_stiffness():
    assert stiffness(3, None) == 1.0
    assert stiffness(5, 10) == 0.5
    assert stiffness(20, 10) == 1.0
    assert stiffness(20, 10, uncapped=True) == 2.0


def test_total_loss():
    ce = torch.tensor(1.0)
    got = total_loss(ce, sigma=0.5, emb=torch.tensor(2.0), plasticity=torch.tensor(4.0),
                     sparsity=torch.tensor(0.01), lamb_triplet=20, lamb_plasticity=0.1, lamb_sparsity=500)
    assert got.item() == pytest.approx(1 + 0.5 * (40 + 0.4 + 5))
    assert total_loss(ce, sparsity=torch.tensor(0.01)).item() == pytest.approx(1 + 500 * 0.01)
