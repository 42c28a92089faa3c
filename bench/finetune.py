# The Python side of bench/finetune.ts: fastai's fine_tune recipe written in PyTorch on the same
# generated folder and initial weights: PIL decode and presize once (shorter side to the item
# size, kept as uint8), per batch fastai's Resize crop (an item-size square at a random place in
# training, at the centre in validation) and fastai's aug_transforms as visiontune draws them
# (random resized crop, keystone warp, flip, rotation, zoom at a random centre as one grid_sample;
# brightness and contrast; validation only resizes, corners aligned), normalisation; torchvision's architecture with fastai's
# head, initialised as fastai initialises it; fastai's fine_tune: freeze_epochs (default 1) of one-cycle on the head, then epochs (default 1) unfrozen,
# with AdamW. Prints JSON: seconds of the first frozen and first unfrozen epoch, of every epoch and in all (with
# presizing), and the validation error of every epoch and of the last. bench/finetune.ts, bench/study.ts and bench/gpu.ts run it.
# Optional settings: device ('cuda': batches go through pinned memory with non-blocking copies and
# are augmented there), amp ('bf16' or 'fp16' autocast; fp16 with torch.amp.GradScaler), channels_last.
import json, math, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F, torchvision
from PIL import Image, ImageOps
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test', 'helpers'))
from fastai_recipe import Recipe, ConcatPool, init_head

c = json.loads(sys.argv[1])
dev = torch.device(c.get('device', 'cpu'))
amp = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(c.get('amp'))
fmt = torch.channels_last if c.get('channels_last') else torch.contiguous_format
torch.set_num_threads(c['threads'])
torch.manual_seed(c['seed'])
# The folder is split already (data/train/<class>/, data/valid/<class>/), as visiontune reads it.
classes = sorted(d for d in os.listdir(os.path.join(c['data'], 'train')) if not d.startswith('.'))
def listed(split):
    return [(os.path.join(c['data'], split, k, f), i) for i, k in enumerate(classes) for f in sorted(os.listdir(os.path.join(c['data'], split, k)))]
train, valid = listed('train'), listed('valid')

def presize(path):
    img = ImageOps.exif_transpose(Image.open(path)).convert('RGB')
    s = c['item_size'] / min(img.size)
    img = img.resize((max(c['item_size'], round(img.width * s)), max(c['item_size'], round(img.height * s))), Image.BILINEAR)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(img.height, img.width, 3).permute(2, 0, 1)

def crop(img, at_random):
    # fastai's Resize with ResizeMethod.Crop: a square of the shorter side, anywhere in training, centred otherwise.
    s = c['item_size']
    dy, dx = img.shape[1] - s, img.shape[2] - s
    top, left = (int(torch.randint(dy + 1, ())), int(torch.randint(dx + 1, ()))) if at_random else (dy // 2, dx // 2)
    return img[:, top:top + s, left:left + s]

start = time.perf_counter()
X = [presize(p) for p, _ in train]; Y = torch.tensor([y for _, y in train])
VX = torch.stack([crop(presize(p), False) for p, _ in valid]); VY = torch.tensor([y for _, y in valid])
presize_s = time.perf_counter() - start
mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

CORNERS = torch.tensor([[-1., -1.], [-1., 1.], [1., -1.], [1., 1.]], dtype=torch.float64)

def keystone(mx, my):
    # fastai's Warp: the homography moving each corner (x, y) to (x - my*x*y, y - mx*x*y), [n, 3, 3].
    n = mx.shape[0]
    x, y = CORNERS[:, 0], CORNERS[:, 1]
    tx = x - my.double().view(n, 1) * x * y
    ty = y - mx.double().view(n, 1) * x * y
    a = torch.zeros(n, 8, 8, dtype=torch.float64)
    a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = x, y, 1
    a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = x, y, 1
    a[:, 0::2, 6], a[:, 0::2, 7] = -x * tx, -y * tx
    a[:, 1::2, 6], a[:, 1::2, 7] = -x * ty, -y * ty
    b = torch.stack([tx, ty], 2).reshape(n, 8)
    h = torch.linalg.solve(a, b)
    return torch.cat([h, torch.ones(n, 1, dtype=torch.float64)], 1).view(n, 3, 3).float()

def batch(x, train):
    if dev.type == 'cuda':
        x = x.pin_memory().to(dev, non_blocking=True)
    x = x.float()
    n, size = x.shape[0], c['size']
    if train:
        # fastai's aug_transforms as visiontune draws them, per image: a random resized crop (area
        # 0.75-1), a keystone warp, flip (p 0.5), rotation and a zoom at a random centre (p 0.75
        # each) as one projective grid; then brightness and contrast in logit space (p 0.75 each).
        side = torch.sqrt(torch.empty(n).uniform_(0.75, 1))
        cx, cy = (torch.rand(n) * 2 - 1) * (1 - side), (torch.rand(n) * 2 - 1) * (1 - side)
        m = torch.zeros(n, 3, 3); m[:, 0, 0] = side; m[:, 1, 1] = side; m[:, 0, 2] = cx; m[:, 1, 2] = cy; m[:, 2, 2] = 1
        def on(p): return (torch.rand(n) < p).float()
        mx, my = (torch.rand(n) * 0.4 - 0.2) * on(0.75), (torch.rand(n) * 0.4 - 0.2) * on(0.75)
        warp = keystone(mx, my)
        flip = torch.diag_embed(torch.stack([torch.where(torch.rand(n) < 0.5, -1.0, 1.0), torch.ones(n), torch.ones(n)], 1))
        ang = (torch.rand(n) * 20 - 10) * math.pi / 180 * on(0.75)
        rot = torch.zeros(n, 3, 3)
        rot[:, 0, 0] = torch.cos(ang); rot[:, 0, 1] = -torch.sin(ang); rot[:, 1, 0] = torch.sin(ang); rot[:, 1, 1] = torch.cos(ang); rot[:, 2, 2] = 1
        inv = 1 / (1 + torch.rand(n) * 0.1 * on(0.75))
        col, row = torch.rand(n), torch.rand(n)
        zoom = torch.zeros(n, 3, 3); zoom[:, 0, 0] = inv; zoom[:, 1, 1] = inv; zoom[:, 2, 2] = 1
        zoom[:, 0, 2] = (1 - inv) * (2 * col - 1); zoom[:, 1, 2] = (1 - inv) * (2 * row - 1)
        m = m @ warp @ flip @ rot @ zoom
        m = m.to(dev)
        grid = F.affine_grid(m[:, :2], [n, 3, size, size], align_corners=True)
        u = torch.linspace(-1, 1, size, device=dev).view(1, 1, size); v = torch.linspace(-1, 1, size, device=dev).view(1, size, 1)
        z = m[:, 2, 0].view(n, 1, 1) * u + m[:, 2, 1].view(n, 1, 1) * v + m[:, 2, 2].view(n, 1, 1)
        x = F.grid_sample(x, grid / z.unsqueeze(3), mode='bilinear', padding_mode='reflection', align_corners=True)
        b = torch.logit(torch.empty(n).uniform_(0.4, 0.6)) * on(0.75)
        k = torch.exp(torch.empty(n).uniform_(math.log(0.8), -math.log(0.8)) * on(0.75))
        b, k = b.to(dev), k.to(dev)
        x = torch.sigmoid((torch.logit(x.clamp(1e-7 * 255, 255 - 1e-7 * 255) / 255) + b.view(n, 1, 1, 1)) * k.view(n, 1, 1, 1))
    else:
        # fastai's validation resize: the geometric step's bilinear resample, corners aligned.
        x = F.interpolate(x / 255, size=(size, size), mode='bilinear', align_corners=True)
    return ((x - mean) / std).contiguous(memory_format=fmt)

tv = getattr(torchvision.models, c['arch'])()
tv.load_state_dict(torch.load(c['weights']))
body = tv.features
nf = body[-1][0].out_channels
head = nn.Sequential(ConcatPool(), nn.Flatten(), nn.BatchNorm1d(2 * nf), nn.Dropout(0.25), nn.Linear(2 * nf, 512, bias=False),
                     nn.ReLU(), nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, len(classes), bias=False))
init_head(head)  # fastai's, as visiontune's
model = nn.Sequential(body, head).to(dev, memory_format=fmt)
recipe = Recipe([[body], [head]])
scaler = torch.amp.GradScaler('cuda') if amp == torch.float16 else None

def forward(x):
    if amp is None:
        return model(x)
    with torch.autocast(dev.type, dtype=amp):
        return model(x).float()

def train_step(x, y):
    # The loss read every batch, as fastai's progress bar and visiontune's recorder read it.
    loss = F.cross_entropy(forward(x), y)
    loss.item()
    if scaler is None:
        recipe.step(loss)
        return
    scaler.scale(loss).backward()
    scaler.step(recipe.opt)
    scaler.update()
    recipe.opt.zero_grad(set_to_none=True)

bs = c['bs']
seconds = []
errors = []
def fit_one_cycle(n_epochs, peaks, pct, div):
    nb = len(Y) // bs
    for e in range(n_epochs):
        t = time.perf_counter()
        model.train()
        order = torch.randperm(len(Y))
        for i in range(nb):
            recipe.schedule(peaks, pct, div, (e * nb + i) / (n_epochs * nb))
            idx = order[i * bs:(i + 1) * bs]
            train_step(batch(torch.stack([crop(X[j], True) for j in idx.tolist()]), True), Y[idx].to(dev))
        model.eval()
        wrong = 0
        with torch.no_grad():
            for i in range(0, len(VY), bs):
                out = forward(batch(VX[i:i + bs], False))
                vy = VY[i:i + bs].to(dev)
                F.cross_entropy(out, vy).item()
                wrong += (out.argmax(1) != vy).sum().item()
        errors.append(wrong / max(1, len(VY)))
        if dev.type == 'cuda':
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t)

freeze_epochs, epochs = c.get('freeze_epochs', 1), c.get('epochs', 1)
base = c['lr']
if freeze_epochs:
    recipe.freeze_to(1); fit_one_cycle(freeze_epochs, [base / 10, base], 0.99, 25)
base /= 2
recipe.freeze_to(0); fit_one_cycle(epochs, [base / 100, base], 0.3, 5)
print(json.dumps({'presize_s': presize_s, 'frozen_s': seconds[0], 'unfrozen_s': seconds[freeze_epochs], 'epochs_s': seconds,
                  'total_s': time.perf_counter() - start, 'error': errors[-1], 'errors': errors, 'torch': torch.__version__,
                  'device': torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}))
