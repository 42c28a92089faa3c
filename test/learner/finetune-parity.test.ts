// Acceptance: given the same initial weights and data order, with augmentation and dropout off,
// fineTune and the same recipe written in Python PyTorch give the same per-epoch losses (1e-3
// relative) over one frozen and one unfrozen epoch.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { loadTorchCheckpoint } from '../../src/io/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { VisionClassifier } from '../../src/learner/model.js';
import { Learner } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { syntheticImages } from '../../src/data/synthetic.js';
import { python, enc } from '../helpers/python.js';

// fastai's recipe, written out in PyTorch: resnet18 body, fastai head without dropout, parameter
// groups [stem..layer2, layer3..4, head] each split into decayed and undecayed (norm, bias)
// parameters, AdamW(β2 0.99, ε 1e-5, wd 0.01), freeze with BN trainable, one-cycle schedules.
const RECIPE = `
import torchvision
from fastai_recipe import Recipe, ConcatPool, init_head
torch.manual_seed(0)
class Body(nn.Module):
    def __init__(self, r):
        super().__init__()
        self.conv1, self.bn1, self.layer1, self.layer2, self.layer3, self.layer4 = r.conv1, r.bn1, r.layer1, r.layer2, r.layer3, r.layer4
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.body = Body(torchvision.models.resnet18())
        self.head = nn.Sequential(ConcatPool(), nn.Flatten(), nn.BatchNorm1d(1024), nn.Linear(1024, 512, bias=False),
                                  nn.ReLU(), nn.BatchNorm1d(512), nn.Linear(512, n, bias=False))
        init_head(self.head)
    def forward(self, x):
        return self.head(self.body(x))
model = Model(4)
torch.save(model.state_dict(), inp['dir'] + '/init.pt')
b = model.body
recipe = Recipe([[b.conv1, b.bn1, b.layer1, b.layer2], [b.layer3, b.layer4], [model.head]])

X, Y, VX, VY = T(inp['x']), T(inp['y']), T(inp['vx']), T(inp['vy'])
bs = 16
rows = []
def fit_one_cycle(epochs, peaks, pct, div):
    total = epochs * (len(Y) // bs)
    count, smooth = 0, 0.0
    for e in range(epochs):
        model.train()
        for i in range(len(Y) // bs):
            recipe.schedule(peaks, pct, div, count / total)
            loss = F.cross_entropy(model(X[i*bs:(i+1)*bs]), Y[i*bs:(i+1)*bs])
            recipe.step(loss)
            count += 1
            smooth = 0.98 * smooth + 0.02 * loss.item()
        model.eval()
        with torch.no_grad():
            logits = model(VX)
            vl = F.cross_entropy(logits, VY).item()
            err = (logits.argmax(1) != VY).float().mean().item()
        rows.append([smooth / (1 - 0.98 ** count), vl, err])

base = 2e-3
recipe.freeze_to(2)
fit_one_cycle(1, [base / 10, base / 10, base], 0.99, 25)
base /= 2
recipe.freeze_to(0)
lo, hi = base / 100, base
fit_one_cycle(1, [lo, lo * (hi / lo) ** 0.5, hi], 0.3, 5)
out = rows
`;

test('fineTune gives PyTorch’s per-epoch losses for the same recipe (one frozen, one unfrozen epoch)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-finetune-'));
  try {
    manualSeed(0);
    const train = syntheticImages(64, 32, { seed: 11 });
    const valid = syntheticImages(32, 32, { seed: 12 });
    const ref = python<number[][]>(RECIPE, { dir, x: enc(train.images), y: enc(train.labels), vx: enc(valid.images), vy: enc(valid.labels) });

    const model = new VisionClassifier(zooEntry('resnet18').build(), 4, { ps: 0 });
    model.loadStateDict(loadTorchCheckpoint(path.join(dir, 'init.pt')));
    const dls = {
      train: new TensorLoader(train.images, train.labels, { bs: 16, dropLast: true }),
      valid: new TensorLoader(valid.images, valid.labels, { bs: 32 }),
      vocab: ['a', 'b', 'c', 'd'],
    };
    const learn = new Learner(dls, model, { log: null });
    const rows = await learn.fineTune(1);
    assert.equal(rows.length, 2);
    rows.forEach((row, e) => {
      t.diagnostic(`epoch ${e}: ours ${[row.train_loss, row.valid_loss, row.error_rate].map((v) => v.toFixed(6))} ` +
        `PyTorch ${ref[e].map((v) => v.toFixed(6))}`);
      for (const [k, name] of ['train_loss', 'valid_loss'].entries()) {
        const rel = Math.abs(row[name] - ref[e][k]) / Math.abs(ref[e][k]);
        assert.ok(rel < 1e-3, `epoch ${e} ${name}: ${row[name]} vs PyTorch ${ref[e][k]} (relative difference ${rel})`);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
