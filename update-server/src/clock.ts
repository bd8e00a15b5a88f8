/** Time source of the server, Unix milliseconds; injectable so tests can drive time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
