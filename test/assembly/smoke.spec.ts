// Proves the as-pect setup (as-pect.config.js, test/assembly/asconfig.json, the
// reporter) works. Specs for the core import it from "../../assembly/...".
describe("as-pect smoke", () => {
  it("adds", () => {
    expect(1 + 1).toBe(2);
  });

  it("compiles under the stub runtime, so heap probes mean something", () => {
    // ASC_RUNTIME: 0 = stub, 1 = minimal, 2 = incremental
    expect(ASC_RUNTIME).toBe(0);
  });
});
