// Fleet benchmark: N virtual devices (1,000 by default) each update from a 1 MiB image, on this
// machine, through one server with its embedded broker (a child process). Reports the wall time
// from the assignment to every device committed, the server's CPU, the server's (= broker's)
// and the simulator's memory, against raw MQTT moving the same bytes in the same run.
//
//   node bench/fleet.mjs [devices]          (or FLEET_DEVICES=N; build first: npx tsc -b)
import { rawMqttFleetTransfer, rawMqttTransfer } from './lib/baselines.mjs';
import { measureFleetUpdate, round, startServerProcess } from './fleet-lib.mjs';

const MiB = 1024 * 1024;

export async function fleetBenchmark({ devices = 1000, imageBytes = MiB } = {}) {
  const log = (line) => process.stderr.write(`${line}\n`);
  log(`fleet: ${devices} devices, ${imageBytes} byte image`);
  const server = await startServerProcess({});
  let fleet;
  try {
    fleet = await measureFleetUpdate({ server, devices, imageBytes, prefix: 'fleet', log });
  } finally {
    await server.stop();
  }
  log('  baselines: raw MQTT, one subscriber, then fleet-shaped');
  const totalBytes = devices * imageBytes;
  const rawSingle = await rawMqttTransfer(totalBytes, fleet.chunkBytes);
  const rawFleet = await rawMqttFleetTransfer(devices, imageBytes, fleet.chunkBytes);
  return {
    name: 'fleet',
    ...fleet,
    baselines: {
      rawMqttOneSubscriber: { seconds: round(rawSingle.seconds), mbPerS: round(rawSingle.mbPerS) },
      rawMqttFleetShaped: { seconds: round(rawFleet.seconds), mbPerS: round(rawFleet.mbPerS) },
    },
    ratios: {
      wallVsRawOneSubscriber: round(fleet.wallSeconds / rawSingle.seconds),
      wallVsRawFleetShaped: round(fleet.wallSeconds / rawFleet.seconds),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const devices = Number(process.argv[2] ?? process.env.FLEET_DEVICES ?? 1000);
  const result = await fleetBenchmark({ devices });
  console.log(JSON.stringify(result, null, 2));
}
