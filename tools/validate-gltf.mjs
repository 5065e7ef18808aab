#!/usr/bin/env node
// Validate glTF/GLB files with the Khronos glTF validator; prints one JSON report line per file.
// Usage: node validate-gltf.mjs FILE...   (exit 1 when any file has errors)
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

let failed = false;
for (const file of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(file));
  const dir = path.dirname(file);
  const report = await validator.validateBytes(data, {
    uri: path.basename(file),
    maxIssues: 100,
    externalResourceFunction: async (uri) => new Uint8Array(await readFile(path.join(dir, decodeURIComponent(uri)))),
  });
  const { numErrors, numWarnings, numInfos, numHints } = report.issues;
  const messages = report.issues.messages.map((m) => `${m.severity}:${m.code}:${m.pointer ?? ""}:${m.message}`);
  console.log(JSON.stringify({ file, numErrors, numWarnings, numInfos, numHints, messages }));
  if (numErrors > 0) failed = true;
}
process.exit(failed ? 1 : 0);
