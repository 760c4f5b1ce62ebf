// Bundles every test/host/*.test.ts into build/test-host/*.test.mjs, because Node 20
// cannot run TypeScript. Each test file becomes one self-contained ES module;
// packages (mqtt, ...) stay external and load from node_modules at run time.
// Run the result with: node --test --test-concurrency=1 build/test-host/
// `bundleTests` is shared with scripts/conformance.mjs.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Bundle the given .test.ts files into `outDir` (emptied first, so a deleted test
 *  does not keep running from a stale bundle). */
export async function bundleTests(entries, outDir) {
  // the tests import the host, which imports the core's vocabulary (host/generated/)
  execFileSync(process.execPath, [path.join(root, "scripts", "vocab.mjs")], { stdio: "inherit" });
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: entries,
    outdir: outDir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "inline",
    logLevel: "warning",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const srcDir = path.join(root, "test", "host");
  const outDir = path.join(root, "build", "test-host");
  const entries = readdirSync(srcDir)
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => path.join(srcDir, f));
  if (entries.length === 0) {
    console.error(`build-tests: no *.test.ts files in ${path.relative(root, srcDir)}`);
    process.exit(1);
  }
  await bundleTests(entries, outDir);
  console.log(`build-tests: ${entries.length} test files -> ${path.relative(root, outDir)}/`);
}
