# The torchvision side of bench/models.ts: one model, precision, memory format and mode per run.
# After its warm-up batches it prints {"ready": true}, then times one batch for each line read from
# stdin and prints {"seconds": s} for it, until stdin closes.
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

c = json.loads(sys.argv[1])
torch.set_num_threads(c['threads'])
torch.manual_seed(0)
model = getattr(torchvision.models, c['arch'])(num_classes=c['classes'])
bf16 = c['precision'] == 'bf16'


class ReLU6Clamp(nn.Module):
    def forward(self, x):
        return x.clamp(0, 6)


def clamp_relu6(m):
    # libtorch 1.13 has no bfloat16 hardtanh backward on CPU, so torchvision's ReLU6 cannot train
    # under bf16 autocast; clamp(0, 6) is how PyTorch 1.13 can (visiontune's bfloat16 relu6 is its
    # own kernel, with hardtanh's gradient).
    for name, child in m.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(m, name, ReLU6Clamp())
        else:
            clamp_relu6(child)


if bf16:
    clamp_relu6(model)
x = torch.rand(c['batch'], 3, c['size'], c['size'])
y = torch.randint(0, c['classes'], (c['batch'],))
if c['format'] == 'channels_last':
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

def step():
    if c['mode'] == 'eval':
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            model(x).float().sum().item()
    else:
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

model.train(c['mode'] == 'train')
for _ in range(c['warmup']):
    step()
# Lockstep with bench/models.ts: one timed batch per 'step' line, its seconds on one line each.
print(json.dumps({'ready': True}), flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    step()
    print(json.dumps({'seconds': time.perf_counter() - start}), flush=True)
