"""The digits models: a small MLP, a small CNN and a binary MLP (binary weights and activations
in the hidden layers, first and last layers int8, as BNNs do)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgeq.quant.qat import BinaryActivation


class DigitsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # wide enough that all-ternary weights lose nothing after QAT (16/32/32 lost ~1.5 points)
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.gap = nn.AvgPool2d(4)
        self.fc = nn.Linear(64, 10)

    def fuse_bn(self) -> None:
        """Folds batch norm into the convs (before QAT, so QAT sees the weights that get packed)."""
        self.eval()
        self.conv1 = fuse_conv_bn_eval(self.conv1, self.bn1)
        self.conv2 = fuse_conv_bn_eval(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.gap(torch.relu(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


class DigitsBNN(nn.Module):
    """int8 first layer -> [binary weights x binary activations] x 2 -> int8 last layer."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.fc3 = nn.Linear(hidden, 10)
        self.sign = BinaryActivation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sign(self.bn1(self.fc1(x)))
        x = self.sign(self.bn2(self.fc2(x)))
        return self.fc3(x)


MODELS = {"mlp": DigitsMLP, "cnn": DigitsCNN, "bnn": DigitsBNN}


def example_input(kind: str) -> torch.Tensor:
    return torch.zeros(1, 1, 8, 8) if kind == "cnn" else torch.zeros(1, 64)
