// --device for the commands that run a model: resolved once, said in the log when it is not the
// plain CPU default, and refused in one line when it cannot be had.
import { resolveDevice, DeviceError, type Device } from '../torch/index.js';
import { UsageError } from './errors.js';

/** Returns the device --device names (see resolveDevice); logs it unless auto found only the CPU. Throws UsageError for one this machine lacks. */
export function cliDevice(spec: string, log: (s: string) => void): Device {
  try {
    const { device, reason } = resolveDevice(spec);
    if (device !== 'cpu' || spec !== 'auto') log(`Device: ${device} (${reason})`);
    return device;
  } catch (e) {
    if (e instanceof DeviceError) throw new UsageError(`--device ${e.message}`);
    throw e;
  }
}
