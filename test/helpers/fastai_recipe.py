# fastai's fine-tune recipe in plain PyTorch, shared by the learner's parity test and the
# fine-tune benchmark: parameter groups split into decayed and undecayed (norm layers, biases),
# AdamW with fastai's settings, freezing that keeps norm layers training, one-cycle schedules.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

NORM = (nn.BatchNorm1d, nn.BatchNorm2d)


class ConcatPool(nn.Module):
    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1)


def init_head(head):
    """fastai's head initialisation: Linear weights kaiming_normal_ (biases 0), BatchNorm1d bias 1e-3."""
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None: nn.init.zeros_(m.bias)
        if isinstance(m, nn.BatchNorm1d): nn.init.constant_(m.bias, 1e-3)


class Recipe:
    """An optimizer over layer groups (lists of modules), with fastai's freeze and one-cycle."""

    def __init__(self, layer_groups, wd=0.01):
        self.layer_groups = layer_groups
        groups, self.owner = [], []
        for gi, mods in enumerate(layer_groups):
            decay, no_decay = [], []
            for root in mods:
                for m in root.modules():
                    for name, p in m.named_parameters(recurse=False):
                        (no_decay if isinstance(m, NORM) or name == 'bias' else decay).append(p)
            for params, w in ((decay, wd), (no_decay, 0.0)):
                if params:
                    groups.append({'params': params, 'weight_decay': w})
                    self.owner.append(gi)
        self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-5)

    def freeze_to(self, n):
        for gi, mods in enumerate(self.layer_groups):
            for root in mods:
                for m in root.modules():
                    for p in m.parameters(recurse=False):
                        p.requires_grad_(gi >= n or isinstance(m, NORM))
        self.opt.state.clear()

    def schedule(self, peaks, pct, div, pos):
        """Sets each group's one-cycle learning rate and β1 at `pos` of the fit."""
        mom = comb(pct, 0.95, 0.85, 0.95, pos)
        for g, gi in zip(self.opt.param_groups, self.owner):
            g['lr'] = comb(pct, peaks[gi] / div, peaks[gi], peaks[gi] / 1e5, pos)
            g['betas'] = (mom, 0.99)

    def step(self, loss):
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def comb(pct, a, b, c, pos):
    return cos(a, b, pos / pct) if pos < pct else cos(b, c, (pos - pct) / (1 - pct))
