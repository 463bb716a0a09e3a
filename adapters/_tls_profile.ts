// The TLS server profile of every runtime: Mozilla's "intermediate" configuration (v5.7), with
// the server's order of preference (which that profile leaves to the client; echogate's issue asks
// for the server's). Node's node:tls (also under Bun and Deno with the Node adapter's code) and
// Bun.listen take it; Deno's rustls offers this set already and has no option for it (docs/tls.md).

import { constants } from "node:crypto";

/**
 * Mozilla "intermediate" TLS 1.2 cipher suites (v5.7), most preferred first: ECDHE and DHE with
 * AEAD only (no CBC, CCM, ARIA or static RSA). Every TLS 1.3 suite stays allowed (the runtimes'
 * defaults). The DHE suites serve only where the runtime has DH parameters (Node and Bun have
 * none by default).
 *
 * @example
 * ```ts
 * import { INTERMEDIATE_TLS12_CIPHERS } from "./_tls_profile.ts";
 *
 * console.log(INTERMEDIATE_TLS12_CIPHERS.split(":")[0]); // "ECDHE-ECDSA-AES128-GCM-SHA256"
 * ```
 */
export const INTERMEDIATE_TLS12_CIPHERS: string = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
  "DHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * The profile as `node:tls` server options.
 *
 * @example
 * ```ts ignore
 * import * as tls from "node:tls";
 * import { NODE_TLS_SERVER_PROFILE } from "./_tls_profile.ts";
 *
 * tls.createServer({ ...NODE_TLS_SERVER_PROFILE, cert, key });
 * ```
 */
export const NODE_TLS_SERVER_PROFILE: { ciphers: string; honorCipherOrder: true; minVersion: "TLSv1.2" } = {
  ciphers: INTERMEDIATE_TLS12_CIPHERS,
  honorCipherOrder: true,
  minVersion: "TLSv1.2",
};

/**
 * The profile as `Bun.listen` TLS options. Bun.listen ignores `honorCipherOrder` (measured with
 * Bun 1.4.5: the client's order won); the OpenSSL option it stands for, given as `secureOptions`,
 * is applied. Bun.listen refuses TLS below 1.2 already.
 *
 * @example
 * ```ts ignore
 * import { BUN_TLS_SERVER_PROFILE } from "./_tls_profile.ts";
 *
 * Bun.listen({ hostname: "127.0.0.1", port: 0, socket, tls: { ...BUN_TLS_SERVER_PROFILE, cert, key } });
 * ```
 */
export const BUN_TLS_SERVER_PROFILE: { ciphers: string; secureOptions: number } = {
  ciphers: INTERMEDIATE_TLS12_CIPHERS,
  secureOptions: constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
};
