// `visiontune serve MODEL`: the model behind HTTP until SIGTERM or Ctrl-C, which let the requests
// in flight finish before the process ends.
import { loadModel } from '../learner/export.js';
import { setNumThreads } from '../torch/index.js';
import { createServer, type ServeOptions } from '../serve/server.js';
import { modelFileOf } from './predict.js';
import { cliDevice } from './device.js';
import { DEFAULT_DEVICE } from '../learner/defaults.js';

export interface ServeArgs extends Partial<ServeOptions> {
  model: string;
  host: string;
  port: number;
  threads?: number;
  /** cpu, cuda, cuda:N or auto (see resolveDevice); absent: auto. */
  device?: string;
}

/** Serves until a signal; resolves once the server has closed. `ready` gets the address it listens on. */
export async function serveCommand(a: ServeArgs, out: (s: string) => void, signals: Pick<NodeJS.Process, 'once' | 'off'> = process): Promise<void> {
  if (a.threads !== undefined) setNumThreads(a.threads);
  const device = cliDevice(a.device ?? DEFAULT_DEVICE, out);
  const model = loadModel(modelFileOf(a.model));
  model.model.to({ device });
  const { model: _m, host, port, threads: _t, device: _d, ...limits } = a;
  const app = await createServer(model, Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)));
  const address = await app.listen({ host, port });
  out(`Serving ${model.meta.architecture} (${model.classes.length} classes) on ${address}: POST /predict, GET /health, GET /model, the page at /`);
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      out(`${sig}: finishing the requests in flight, then stopping`);
      for (const s of ['SIGINT', 'SIGTERM'] as const) signals.off(s, stop);
      void app.close().then(() => resolve());
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) signals.once(s, stop);
  });
  model.model.dispose();
}
