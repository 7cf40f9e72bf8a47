"""An independent Python FHIR client (fhirpy) against `secure-ehr serve`'s /fhir: a search
paged through its `next` links, a search by code, a read, and Patient/$everything.
Prints one JSON object of what it saw.

Usage: python fhir_client.py BASE_URL TOKEN PATIENT_ID
"""
import json
import sys

from fhirpy import SyncFHIRClient

base, token, patient_id = sys.argv[1:4]
client = SyncFHIRClient(base, authorization=f"Bearer {token}")
observations = client.resources("Observation").search(patient=patient_id).limit(2).fetch_all()
labs = client.resources("Observation").search(code="http://loinc.org|4548-4").fetch()
patient = client.reference("Patient", patient_id).to_resource()
everything = client.execute(f"Patient/{patient_id}/$everything", method="get")
print(json.dumps({
    "observations": [o["id"] for o in observations],
    "labs": [o["id"] for o in labs],
    "lab_subject": labs[0]["subject"]["reference"],
    "family": patient["name"][0]["family"],
    "everything": everything["total"],
}))
