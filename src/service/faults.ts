// Failure injection for tests: multi-step writes announce each step boundary, and a test's `Faults` may
// throw there to prove that a failure at any step leaves nothing half-written. The server passes none.

export interface Faults {
  /** Called between the steps of a write; throwing aborts it there. */
  at(step: string): void | Promise<void>;
}

export async function step(faults: Faults | undefined, name: string): Promise<void> {
  if (faults) await faults.at(name);
}
