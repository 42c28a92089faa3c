// The launcher (torchrun's role): starts this machine's ranks as child processes of the same
// command, each with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT) and its share of the cores, and watches them: a signal it receives is
// passed on once to every rank (a second one also kills what is left 5 s later); when a rank
// fails, the others get a grace period to stop on their own (their next collective names the lost
// rank) and are then killed, so none is left behind, stopped or hung ones included; when the
// launcher itself dies, the ranks see their IPC channel close and stop.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import os from 'node:os';

/** Set in each rank's environment: the rank is a worker of a launcher, not a launcher itself. */
export const WORKER_ENV = 'VISIONTUNE_WORKER';

export interface LaunchOptions {
  /** The script and its arguments, as process.argv.slice(1) (each rank runs the same). */
  argv: readonly string[];
  /** Processes on this machine. */
  nproc: number;
  /** Machines, and this one's index among them. Default 1 and 0. */
  nnodes?: number;
  nodeRank?: number;
  /** Rank 0's machine and port; default 127.0.0.1 and a free port (one machine). */
  masterAddr?: string;
  masterPort?: number;
  /** Intra-op threads of each rank; default the cores divided among the ranks. */
  threads?: number;
  /** Seconds the other ranks have to stop after one failed before they are killed. Default 10. */
  graceS?: number;
  /** Where the launcher's own lines go. Default stderr. */
  log?: (line: string) => void;
}

/** Resolves to whether `port` can be listened on at `host` now (false: another program holds it). */
export function portFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Returns a TCP port free on this machine now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Runs `nproc` ranks of the command on this machine (global ranks nodeRank·nproc …) and waits for
 * them. Resolves to the exit code the launcher should end with: 0 when every rank succeeded,
 * else the first failing rank's code (128 + signal number for a killed one).
 */
export async function launch(o: LaunchOptions): Promise<number> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const world = o.nproc * nnodes;
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? await freePort();
  const threads = o.threads ?? Math.max(1, Math.floor(os.availableParallelism() / o.nproc));
  const children: { rank: number; child: ChildProcess; code: number | null }[] = [];
  for (let local = 0; local < o.nproc; local++) {
    const rank = nodeRank * o.nproc + local;
    const env = {
      ...process.env, [WORKER_ENV]: '1', RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(o.nproc), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort), VISIONTUNE_THREADS: String(threads),
    };
    // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
    const child = fork(o.argv[0], o.argv.slice(1), { env, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push({ rank, child, code: null });
  }
  log(`visiontune: ${world} rank${world === 1 ? '' : 's'} (${o.nproc} on this machine, ${threads} thread${threads === 1 ? '' : 's'} each), ` +
    `rendezvous at ${masterAddr}:${masterPort}; pids ${children.map((c) => `${c.rank}:${c.child.pid}`).join(' ')}`);

  let failed: number | null = null;
  let signals = 0;
  const timers: NodeJS.Timeout[] = [];
  const alive = (): typeof children => children.filter((c) => c.code === null);
  const killLater = (seconds: number): void => {
    timers.push(setTimeout(() => { for (const c of alive()) c.child.kill('SIGKILL'); }, seconds * 1000));
  };
  const forward = (sig: NodeJS.Signals): void => {
    signals++;
    for (const c of alive()) c.child.kill(sig);
    // A second signal: what does not stop now (a stopped or hung rank) is killed.
    if (signals === 2) killLater(5);
  };
  const graceS = o.graceS ?? 10;
  const handled = ['SIGINT', 'SIGTERM'] as const;
  for (const sig of handled) process.on(sig, forward);
  try {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      c.child.on('exit', (code, signal) => {
        c.code = code ?? 128 + (signal ? os.constants.signals[signal] : 0);
        if (c.code !== 0 && failed === null) {
          failed = c.code;
          // A rank that exits with an error has said why; one killed by a signal could not.
          if (signal && signals === 0) log(`visiontune: rank ${c.rank} (pid ${c.child.pid}) was killed by ${signal}`);
          if (alive().length) killLater(graceS);
        }
        resolve();
      });
    })));
  } finally {
    for (const sig of handled) process.off(sig, forward);
    for (const t of timers) clearTimeout(t);
  }
  return failed ?? 0;
}

/**
 * In a rank: calls `onLost` once when the launcher is gone (its IPC channel closed), so the rank
 * stops instead of training on alone. Does nothing outside a launcher.
 */
export function watchLauncher(onLost: () => void): void {
  if (!process.env[WORKER_ENV] || !process.channel) return;
  process.channel.unref();
  process.once('disconnect', onLost);
}
