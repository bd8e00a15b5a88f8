/**
 * The simulated device's installer, health check, reboot and clock: the agent's own seams,
 * filled with behaviour a fault plan decides.
 */
import type {
  Clock,
  HealthCheck,
  InstallContext,
  Installer,
  Rebooter,
  SlotStorage,
} from '@fetchback/device-agent';
import { fbError } from '@fetchback/shared';

/** How the health check of the new image behaves on this device. */
export type HealthBehaviour = 'pass' | 'fail' | 'hang';

/**
 * A/B installer on the simulated slots: moves the slot pointer after `installMs`, as a real
 * installer takes time. `beforeInstall` lets a fault plan crash the device inside the step.
 */
export class SimInstaller implements Installer {
  private readonly slots: SlotStorage;
  private readonly installMs: number;
  private readonly beforeInstall: (context: InstallContext) => Promise<void>;

  constructor(
    slots: SlotStorage,
    installMs: number,
    beforeInstall: (context: InstallContext) => Promise<void> = async () => {},
  ) {
    this.slots = slots;
    this.installMs = installMs;
    this.beforeInstall = beforeInstall;
  }

  async install(context: InstallContext): Promise<void> {
    await delay(this.installMs);
    await this.beforeInstall(context);
    await this.slots.setActive(context.targetSlot);
  }

  // The pointer already names the new slot; a trial that ends without a rollback keeps it.
  async markGood(_context: InstallContext): Promise<void> {}

  rollback(context: InstallContext): Promise<void> {
    return this.slots.setActive(context.previousSlot);
  }
}

/** Passes after `checkMs`, fails, or never answers (the agent's own timeout then decides). */
export class SimHealthCheck implements HealthCheck {
  private readonly behaviour: HealthBehaviour;
  private readonly checkMs: number;

  constructor(behaviour: HealthBehaviour, checkMs: number) {
    this.behaviour = behaviour;
    this.checkMs = checkMs;
  }

  async check(_context: InstallContext, signal: AbortSignal): Promise<void> {
    if (this.behaviour === 'hang') {
      // Settles only when the agent gives up on it, as a hung process is killed.
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      return;
    }
    await delay(this.checkMs);
    if (this.behaviour === 'fail') {
      throw fbError('FB_ERR_HEALTH_CHECK_FAILED', 'simulated: the application did not start');
    }
  }
}

/** Hands the reboot to the virtual device, which restarts the agent with its storage kept. */
export class SimRebooter implements Rebooter {
  private readonly onReboot: () => void;

  constructor(onReboot: () => void) {
    this.onReboot = onReboot;
  }

  async reboot(): Promise<void> {
    this.onReboot();
  }
}

/** A clock `offsetMs` away from `base` (clock skew); timers keep real durations. */
export function skewedClock(base: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return base;
  return {
    now: () => base.now() + offsetMs,
    setTimeout: (callback, delayMs) => base.setTimeout(callback, delayMs),
    clearTimeout: (handle) => base.clearTimeout(handle),
  };
}

function delay(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
