/**
 * `@fetchback/device-agent`: the update lifecycle on the device, with every side effect behind
 * an interface so that the CLI, the tests and the simulator run the same code.
 */
export * from './agent.js';
export * from './clock.js';
export * from './config.js';
export * from './limits.js';
export * from './node-agent.js';
export * from './download/download-context.js';
export * from './download/held-chunks.js';
export * from './download/object-fetcher.js';
export * from './install/command-installer.js';
export * from './install/health-check.js';
export * from './install/installer.js';
export * from './install/rebooter.js';
export * from './install/run-command.js';
export * from './lifecycle/agent-state.js';
export * from './lifecycle/machine.js';
export * from './lifecycle/reporter.js';
export * from './lifecycle/transitions.js';
export * from './outbox/outbox.js';
export * from './device-key.js';
export * from './storage/atomic-file.js';
export * from './storage/dir-slots.js';
export * from './storage/memory-slots.js';
export * from './storage/slot-storage.js';
export * from './storage/state-store.js';
export * from './transport/memory-transport.js';
export * from './transport/mqtt-transport.js';
export * from './transport/transport.js';
