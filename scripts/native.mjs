// The native host in `npm test`:
//   node scripts/native.mjs build   every board's build/native/midge-<board> (host/native/build.sh)
//   node scripts/native.mjs test    the host suite and the conformance suite against midge-pi
// Both need wasm2c (Debian package wabt) and a C compiler on Linux. Without them a
// developer's `npm test` says so loudly and goes on; under CI (CI=true, where .ci/run
// installs them) a missing tool is a failure, so CI always runs these tests.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const which = (bin) => spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).status === 0;
const mode = process.argv[2];
if (mode !== "build" && mode !== "test") {
  console.error("usage: node scripts/native.mjs build|test");
  process.exit(2);
}

const missing = process.platform !== "linux" ? "not Linux (the native host uses epoll)"
  : !which("wasm2c") ? "wasm2c is missing (apt-get install wabt)"
  : !which(process.env.CC ?? "gcc") ? `${process.env.CC ?? "gcc"} is missing (apt-get install gcc)`
  : null;
if (missing !== null) {
  if (process.env.CI === "true") {
    console.error(`native: ${missing}; CI must run the native host's tests`);
    process.exit(1);
  }
  console.error(`native: SKIPPED ${mode}: ${missing}. The native host is optional; its tests did not run.`);
  process.exit(0);
}

const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (mode === "build") {
  run("sh", [path.join(root, "host/native/build.sh")]);
} else {
  if (!existsSync(path.join(root, "build/native/midge-pi"))) {
    console.error("native: build/native/midge-pi is missing: run npm run build:native");
    process.exit(1);
  }
  const env = { MIDGE_TEST_BROKER: "native" };
  console.log("native: the host suite against build/native/midge-pi");
  run(process.execPath, [
    "--test", "--test-concurrency=1",
    "--test-reporter=dot", "--test-reporter-destination=stdout",
    `--test-reporter=${path.join(root, "test/host/reporter.mjs")}`, "--test-reporter-destination=stdout", // "host: N passed, N failed"
    path.join(root, "build/test-host"),
  ], env);
  console.log("native: the conformance suite against build/native/midge-pi");
  run(process.execPath, [path.join(root, "scripts/conformance.mjs"), "--strict", "--no-report"], env);
}
