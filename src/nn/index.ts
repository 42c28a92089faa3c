// Neural-network modules with torch.nn's names.
export { Module, StateDictError, type StateDict } from './module.js';
export * from './layers.js';
export * from './activation.js';
export { Sequential, ModuleList } from './container.js';
export * as init from './init.js';
