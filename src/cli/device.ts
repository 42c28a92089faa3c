// --device for the commands that run a model, and --precision for those that train (train,
// lr-find): each resolved once, said in the log (the device when it is not the plain CPU default),
// and refused in one line when it cannot be had.
import { resolveDevice, DeviceError, type Device } from '../torch/index.js';
import { choosePrecision, type Precision, type PrecisionChoice } from '../learner/precision.js';
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

/**
 * Returns the precision --precision names on `device` (see choosePrecision) and logs it with the
 * reason, unless fp32 was asked for. Throws UsageError for one the device cannot run (fp16 on the CPU).
 */
export function cliPrecision(choice: PrecisionChoice, device: Device, log: (s: string) => void): Precision {
  try {
    const { precision, reason } = choosePrecision(choice, { cuda: device.startsWith('cuda') });
    if (choice !== 'fp32') log(`Precision: ${precision === 'fp32' ? 'fp32' : `${precision} autocast`} (${reason})`);
    return precision;
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}
