/**
 * `@fetchback/simulator`: fleets of virtual devices on the real agent code, with fault
 * injection, live progress and a report. `fetchback-sim` is its CLI; `Simulation` is the API
 * the demo, the tests and the benchmarks drive.
 */
export {
  DEFAULT_SIMULATION,
  type EndCondition,
  type EndReason,
  SIM_LIMITS,
  Simulation,
  type SimulationOptions,
} from './simulation.js';
export {
  FAULTS,
  FAULT_NAMES,
  type FaultName,
  type FaultRates,
  PROFILES,
  activeFaults,
  resolveFaults,
} from './faults/profiles.js';
export { type DevicePlan, type ExpectedEnd, expectedEnd, planFaults } from './faults/plan.js';
export { FaultyTransport, type LinkFaults, type LinkObserver } from './faults/faulty-transport.js';
export { SlowSlots } from './faults/slow-slots.js';
export { ContentPool, SharedSlots } from './device/shared-slots.js';
export {
  type DeviceAckRecord,
  type DeviceEnvironment,
  type DeviceIdentity,
  type DeviceState,
  VirtualDevice,
} from './device/virtual-device.js';
export { Fleet, type FleetOptions, type StorageKind, factoryImage } from './fleet/fleet.js';
export { FleetTracker, type TimelineSample } from './fleet/tracker.js';
export { type FleetCredentials, deviceIds, registerFleet } from './fleet/credentials.js';
export { type FleetReport, buildReport, commitTimes, formatReport } from './report/report.js';
export { renderHtml } from './report/html.js';
export { type LocalServer, startLocalServer, testImage, uploadRelease } from './local-server.js';
