// The time of the current call from the host (milliseconds, the host's monotonic
// clock). The core has no clock of its own: every ABI entry point sets this first.

export let now: f64 = 0;

export function setNow(t: f64): void { now = t; }
