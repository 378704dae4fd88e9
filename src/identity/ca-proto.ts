// Where the CertificateService definition lives (shared by the server and the client, which load it differently).
import { fileURLToPath } from 'node:url';

/** Works from src/identity and dist/identity alike: both sit one level below the package root. */
export const CA_PROTO_FILE = fileURLToPath(new URL('../../proto/trellis/ca/v1/ca.proto', import.meta.url));
export const CA_SERVICE_NAME = 'trellis.ca.v1.CertificateService';
