// An independent FHIR client (fhir-kit-client) against `secure-ehr serve`'s /fhir: the
// capability statement, a transaction stored, a search paged with its `next` link, a read,
// and Patient/$everything. Writes every resource the server sent to OUT_DIR (one file
// each, for an independent validator) and prints one JSON object of what it saw.
//
// node fhir_client.mjs BASE_URL TOKEN BUNDLE_FILE OUT_DIR
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'fhir-kit-client';

const [baseUrl, token, bundleFile, outDir] = process.argv.slice(2);
const client = new Client({ baseUrl, bearerToken: token });
let written = 0;
const keep = (resource) => {
  writeFileSync(join(outDir, `${written++}-${resource.resourceType}.json`), JSON.stringify(resource));
};

const cs = await client.capabilityStatement();
keep(cs);
const stored = await client.transaction({ body: JSON.parse(readFileSync(bundleFile, 'utf8')) });
const locations = stored.entry.map((e) => e.response.location);
const patientId = locations.find((l) => l.startsWith('Patient/')).split('/')[1];

const pages = [];
let page = await client.search({
  resourceType: 'Observation',
  searchParams: { patient: patientId, _count: 2 },
});
while (page) {
  pages.push(page.entry.map((e) => e.resource.id));
  keep(page);
  page = await client.nextPage({ bundle: page });
}
const labs = await client.search({
  resourceType: 'Observation',
  searchParams: { patient: patientId, code: 'http://loinc.org|4548-4' },
});
const read = await client.read({ resourceType: 'Observation', id: labs.entry[0].resource.id });
keep(read);
const patient = await client.read({ resourceType: 'Patient', id: patientId });
keep(patient);
const everything = await client.operation({
  name: 'everything', resourceType: 'Patient', id: patientId, method: 'GET',
});
keep(everything);
for (const e of everything.entry) keep(e.resource);

console.log(JSON.stringify({
  fhirVersion: cs.fhirVersion,
  responseType: stored.type,
  locations,
  patientId,
  pages,
  labTotal: labs.total,
  readId: read.id,
  readSubject: read.subject.reference,
  patientFamily: patient.name[0].family,
  everythingTotal: everything.total,
  everythingTypes: [...new Set(everything.entry.map((e) => e.resource.resourceType))].sort(),
  written,
}));
