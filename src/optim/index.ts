// Optimizers with torch.optim's names, defaults and update rules.
export { Optimizer, OptimError, type ParamGroup, type Params, type OptimizerSnapshot } from './optimizer.js';
export { SGD, SGD_DEFAULTS, type SGDOptions } from './sgd.js';
export { Adam, AdamW, ADAM_DEFAULTS, type AdamOptions } from './adamw.js';
