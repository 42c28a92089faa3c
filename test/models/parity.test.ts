// Acceptance: every zoo architecture is torchvision's, number for number. Python builds the
// torchvision model with seeded random weights (batch-norm statistics and layer scales randomised
// too, so that no layer is a no-op), saves its state_dict with torch.save and, for one input, the
// eval logits, the train-mode loss (dropout and stochastic depth off) and the gradients of the
// first and last layers; visiontune loads the file into its own model and must agree.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { F, noGrad, tidy, type Tensor } from '../../src/torch/index.js';
import { Dropout, StochasticDepth } from '../../src/nn/index.js';
import { loadTorchCheckpoint } from '../../src/io/index.js';
import { ZOO } from '../../src/models/registry.js';
import { python, assertClose } from '../helpers/python.js';

const SIZE = 64;

const MAKE_REFERENCE = `
import torchvision
from torchvision.ops import StochasticDepth
torch.manual_seed(0)
m = getattr(torchvision.models, inp['arch'])(num_classes=1000)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    for name, p in m.named_parameters():
        if name.endswith('layer_scale'):
            p.uniform_(0.1, 0.5)
torch.save(m.state_dict(), inp['dir'] + '/state.pt')
x = torch.randn(2, 3, inp['size'], inp['size'])
y = torch.tensor([3, 997])
m.eval()
with torch.no_grad():
    logits = m(x)
for mod in m.modules():
    if isinstance(mod, (nn.Dropout, StochasticDepth)):
        mod.p = 0.0
m.train()
loss = F.cross_entropy(m(x), y)
loss.backward()
names = [n for n, p in m.named_parameters()]
first = next(n for n, p in m.named_parameters() if p.dim() == 4)
last = [n for n, p in m.named_parameters() if p.dim() == 2][-1]
params = dict(m.named_parameters())
torch.save({'x': x, 'y': y, 'logits': logits, 'loss': loss.detach().reshape(1),
            'grad_first': params[first].grad, 'grad_last': params[last].grad}, inp['dir'] + '/ref.pt')
out = {'first': first, 'last': last, 'num_params': sum(p.numel() for p in m.parameters())}
`;

// Elementwise tolerance relative to the tensor's scale: rtol·|ref| + rtol·max|ref|.
function assertNear(actual: Tensor, expected: Tensor, what: string, rtol: number): void {
  const scale = expected.abs().max() as Tensor;
  assertClose(actual, { shape: expected.shape, dtype: expected.dtype, data: expected.toArray() }, what,
    { rtol, atol: rtol * scale.item() });
}

for (const [arch, entry] of ZOO) {
  test(`${arch} matches torchvision: eval logits, train loss, first and last gradients`, (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), `vt-${arch}-`));
    try {
      const info = python<{ first: string; last: string; num_params: number }>(MAKE_REFERENCE, { arch, dir, size: SIZE });
      const model = entry.build();
      assert.equal(model.numParameters(), info.num_params, 'parameter count');
      assert.equal(model.numParameters(), entry.weights.numParams, 'parameter count in the registry');
      model.loadStateDict(loadTorchCheckpoint(path.join(dir, 'state.pt')));
      const ref = loadTorchCheckpoint(path.join(dir, 'ref.pt'));
      const x = ref.get('x')!;
      model.eval();
      tidy(() => assertNear(noGrad(() => model.forward(x)), ref.get('logits')!, `${arch} eval logits`, 1e-4));

      for (const m of model.modules()) if (m instanceof Dropout || m instanceof StochasticDepth) m.p = 0;
      model.train();
      const loss = F.crossEntropy(model.forward(x), ref.get('y')!);
      loss.backward();
      const params = new Map(model.namedParameters());
      assertNear(loss, ref.get('loss')!.reshape(), `${arch} train loss`, 1e-3);
      assertNear(params.get(info.first)!.grad!, ref.get('grad_first')!, `${arch} gradient of ${info.first}`, 1e-3);
      assertNear(params.get(info.last)!.grad!, ref.get('grad_last')!, `${arch} gradient of ${info.last}`, 1e-3);
      t.diagnostic(`${model.numParameters()} parameters; loss ${loss.item().toFixed(5)}`);
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
