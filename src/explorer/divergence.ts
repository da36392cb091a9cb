/**
 * Where an observed run leaves the explored graph: the first step of a real system's run that the model
 * does not allow, and what the model allowed there. Test generation's runner (src/testgen/runner.ts,
 * a device or system driven through a suite) and the QEMU conformance checker (src/qemu/conform.ts, a
 * recorded QEMU log) each report one, with what their kind of run shows besides.
 */
export interface RunDivergence<Allowed> {
  /** The step of the run where it diverges, 1-based (the runner's step 0 is the state right after reset). */
  readonly step: number;
  /** What the model allowed there. */
  readonly allowed: readonly Allowed[];
}
