// A throwaway test PKI made with openssl at test time (EC P-256, SHA-256): a CA, a server leaf
// for localhost / 127.0.0.1 / ::1, a client leaf, and a second, unrelated CA with its own server
// leaf. Leaves are CA:FALSE with a SAN (rustls, under Deno, rejects CA:TRUE leaves and CN-only names).

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect } from "vitest";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { waitUntil } from "./_wait.ts";
import { argv, type Child } from "./_child.ts";

/** PEM strings and the files they were read from. */
export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed neither leaf above. */
  otherCaCert: string;
  /** A server leaf (localhost) signed by the other CA. */
  otherServerCert: string;
  otherServerKey: string;
  /** A client leaf signed by the other CA. */
  otherClientCert: string;
  otherClientKey: string;
  /** Paths of the files above, by the same names. */
  files: Record<
    | "caCert"
    | "serverCert"
    | "serverKey"
    | "clientCert"
    | "clientKey"
    | "otherCaCert"
    | "otherServerCert"
    | "otherServerKey"
    | "otherClientCert"
    | "otherClientKey",
    string
  >;
  remove(): void;
}

/** True when openssl can be run. */
export function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`]);
  openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-key",
    `${name}.key`,
    "-sha256",
    "-days",
    "2",
    "-subj",
    `/CN=echogate test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    `${name}.crt`,
  ]);
}

// `subject` in openssl's "/CN=…/O=…" form, read as UTF-8 (any bytes a name may hold, controls too).
function makeLeaf(dir: string, ca: string, name: string, cn: string, extensions: string, subject?: string): void {
  openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.ec.key`]);
  // PKCS#8: the form every runtime's TLS stack reads.
  openssl(dir, ["pkcs8", "-topk8", "-nocrypt", "-in", `${name}.ec.key`, "-out", `${name}.key`]);
  const subjectArgs = subject === undefined ? ["-subj", `/CN=${cn}`] : ["-utf8", "-subj", subject];
  openssl(dir, ["req", "-new", "-key", `${name}.key`, ...subjectArgs, "-out", `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    argv`x509 -req -in ${name}.csr -CA ${ca}.crt -CAkey ${ca}.key -CAcreateserial -sha256 -days 2
      -extfile ${name}.ext -out ${name}.crt`,
  );
}

const SERVER_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
  "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n";
const CLIENT_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
  "extendedKeyUsage=clientAuth\n";

/** Makes a fresh PKI in a temp folder (about a tenth of a second of openssl). */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "echogate-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  makeLeaf(dir, "ca", "server", "localhost", SERVER_EXT);
  makeLeaf(dir, "ca", "client", "echogate test client", CLIENT_EXT);
  makeLeaf(dir, "other-ca", "other-server", "localhost", SERVER_EXT);
  makeLeaf(dir, "other-ca", "other-client", "echogate stranger", CLIENT_EXT);
  const files = {
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    otherCaCert: join(dir, "other-ca.crt"),
    otherServerCert: join(dir, "other-server.crt"),
    otherServerKey: join(dir, "other-server.key"),
    otherClientCert: join(dir, "other-client.crt"),
    otherClientKey: join(dir, "other-client.key"),
  };
  const read = (path: string) => readFileSync(path, "utf8");
  return {
    dir,
    caCert: read(files.caCert),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
    otherCaCert: read(files.otherCaCert),
    otherServerCert: read(files.otherServerCert),
    otherServerKey: read(files.otherServerKey),
    otherClientCert: read(files.otherClientCert),
    otherClientKey: read(files.otherClientKey),
    files,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A client leaf signed by `pki`'s CA whose subject is `subject` ("/CN=…/L=…", UTF-8, any
 * characters but "/" and the backslash; each attribute within its X.509 length: CN 64, L 128): PEM strings.
 */
export function makeClientLeaf(pki: TestPki, name: string, subject: string): { cert: string; key: string } {
  makeLeaf(pki.dir, "ca", name, "", CLIENT_EXT, subject);
  return {
    cert: readFileSync(join(pki.dir, `${name}.crt`), "utf8"),
    key: readFileSync(join(pki.dir, `${name}.key`), "utf8"),
  };
}

/** A PKI made before the enclosing suite's tests and removed after them; its fields fill in at `beforeAll`. */
export function usePki(): TestPki {
  const pki = {} as TestPki;
  beforeAll(() => void Object.assign(pki, makePki()));
  afterAll(() => pki.remove?.());
  return pki;
}

/**
 * SIGHUP to a CLI TLS server whose certificate and key are the files `live`: a bad file keeps the
 * old certificate (and is reported), then the other CA's files replace it for new connections.
 * `trusts(ca)` says whether a connection verified against `ca` gets through.
 */
export async function expectSighupReload(
  server: Child,
  live: { cert: string; key: string },
  pki: TestPki,
  trusts: (ca: string) => Promise<boolean>,
): Promise<void> {
  expect(await trusts(pki.caCert)).toBe(true);
  writeFileSync(live.cert, "garbage");
  process.kill(server.process.pid!, "SIGHUP");
  await waitUntil(() => /TLS reload failed/.test(server.stderr()), {
    timeoutMs: 5000,
    what: "the failed reload logged",
  });
  expect(await trusts(pki.caCert)).toBe(true);
  copyFileSync(pki.files.otherServerCert, live.cert);
  copyFileSync(pki.files.otherServerKey, live.key);
  process.kill(server.process.pid!, "SIGHUP");
  await waitUntil(() => /TLS certificate reloaded/.test(server.stdout()), {
    timeoutMs: 5000,
    what: "the reload logged",
  });
  expect(await trusts(pki.otherCaCert)).toBe(true);
  expect(await trusts(pki.caCert)).toBe(false);
}
