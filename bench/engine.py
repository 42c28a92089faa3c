# The Python PyTorch side of bench/engine.ts: the same CNN, batch, optimizer and thread count.
# Prints one JSON line: training-step images/s and the time of a tiny op in microseconds.
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test', 'helpers'))
import torch
import torch.nn.functional as F
from simple_cnn import SimpleCNN

args = json.loads(sys.argv[1])
torch.set_num_threads(args['threads'])
torch.manual_seed(0)
batch, size = args['batch'], args['size']
model = SimpleCNN(args['classes'], width=args['width'])
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.rand(batch, 3, size, size)
y = torch.randint(0, args['classes'], (batch,))

def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()

for _ in range(args['warmup']):
    step()
start = time.perf_counter()
for _ in range(args['steps']):
    step()
imgs_per_s = batch * args['steps'] / (time.perf_counter() - start)

a, b = torch.ones(1), torch.ones(1)
n = args['tiny_ops']
for _ in range(1000):
    torch.add(a, b)
start = time.perf_counter()
for _ in range(n):
    torch.add(a, b)
op_us = (time.perf_counter() - start) / n * 1e6
print(json.dumps({'imgs_per_s': imgs_per_s, 'op_us': op_us, 'torch': torch.__version__}))
