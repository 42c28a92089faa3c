// The distributed defaults, in a module that loads nothing heavy, so the command line can declare
// its flags with them before libtorch is loaded.

/** torch.distributed's default rendezvous port, used between machines when none is given (one machine takes a free one). */
export const DEFAULT_MASTER_PORT = 29500;
/** Rank 0's address when none is given: this machine. */
export const DEFAULT_MASTER_ADDR = '127.0.0.1';
/** Seconds a rendezvous or a collective may wait before it fails (PyTorch's is 30 minutes; a fine-tune's step takes seconds). */
export const DEFAULT_DIST_TIMEOUT_S = 300;
/** Processes on this machine and machines when not told: one, no distribution. */
export const DEFAULT_NPROC = 1;
export const DEFAULT_NNODES = 1;
/** This machine's index among them when not told. */
export const DEFAULT_NODE_RANK = 0;
/** The most processes per machine `--nproc` takes. */
export const MAX_NPROC = 256;
