// Trains the small example CNN on generated pattern images and prints fastai's per-epoch table.
// This is what `npm run demo` runs until the learner lands; it uses only the engine layers
// (tensors, modules, AdamW), so it also reads as a tour of them.
import { performance } from 'node:perf_hooks';
import { F, arange, randperm, manualSeed, noGrad, tidy, getNumThreads, libtorchVersion, type Tensor } from '../src/torch/index.js';
import { AdamW } from '../src/optim/index.js';
import { SimpleCNN } from '../src/models/simple-cnn.js';
import { syntheticImages, SYNTHETIC_CLASSES } from '../src/data/synthetic.js';

const SIZE = 48;
const BATCH = 32;
const EPOCHS = Number(process.env.EPOCHS ?? 6);

manualSeed(42);
const train = syntheticImages(512, SIZE, { seed: 1 });
const valid = syntheticImages(128, SIZE, { seed: 2 });
const model = new SimpleCNN({ numClasses: SYNTHETIC_CLASSES.length, width: 16 });
const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.01 });

// Batch i of a set, in the order given by `order` (a permutation of the items).
function batch(set: { images: Tensor; labels: Tensor }, order: Tensor, i: number): [Tensor, Tensor] {
  const idx = order.narrow(0, i * BATCH, Math.min(BATCH, order.size(0) - i * BATCH));
  return [set.images.indexSelect(0, idx), set.labels.indexSelect(0, idx)];
}

console.log(`visiontune engine demo: libtorch ${libtorchVersion().torch}, ${getNumThreads()} threads`);
console.log(`SimpleCNN (${model.numParameters()} parameters) on ${train.labels.size(0)} generated ${SIZE} px images of ` +
  `${SYNTHETIC_CLASSES.length} patterns (${SYNTHETIC_CLASSES.join(', ')}), ${valid.labels.size(0)} for validation\n`);
console.log('epoch  train_loss  valid_loss  error_rate  time');
for (let epoch = 0; epoch < EPOCHS; epoch++) {
  const start = performance.now();
  model.train();
  let trainLoss = 0;
  const nTrain = train.labels.size(0);
  const steps = Math.floor(nTrain / BATCH);
  tidy(() => {
    const order = randperm(nTrain);
    for (let i = 0; i < steps; i++) {
      trainLoss += tidy(() => {
        const [x, y] = batch(train, order, i);
        const loss = F.crossEntropy(model.forward(x), y);
        opt.zeroGrad();
        loss.backward();
        opt.step();
        return loss.item();
      });
    }
  });
  model.eval();
  let validLoss = 0;
  let wrong = 0;
  const nValid = valid.labels.size(0);
  noGrad(() => tidy(() => {
    const order = arange(nValid);
    for (let i = 0; i * BATCH < nValid; i++) {
      tidy(() => {
        const [x, y] = batch(valid, order, i);
        const logits = model.forward(x);
        validLoss += F.crossEntropy(logits, y, { reduction: 'sum' }).item();
        wrong += logits.argmax(1).ne(y).sum().item();
      });
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  console.log(`${String(epoch).padEnd(5)}  ${(trainLoss / steps).toFixed(6).padEnd(10)}  ${(validLoss / nValid).toFixed(6).padEnd(10)}  ` +
    `${(wrong / nValid).toFixed(6).padEnd(10)}  ${seconds.toFixed(1)}s`);
}
