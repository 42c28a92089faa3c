// Optimizers with torch.optim's names, defaults and update rules.
export {
  Optimizer, OptimError,
  type ParamGroup, type GroupSpec, type Params, type ParamState, type OptimizerStateDict, type OptimizerSnapshot,
} from './optimizer.js';
export { SGD, SGD_DEFAULTS, type SGDOptions } from './sgd.js';
export { Adam, AdamW, ADAM_DEFAULTS, ADAMW_DEFAULTS, type AdamOptions, type AdamWOptions } from './adamw.js';
